"""Holds under an injected clock: expiry by the worker, confirm, release, overlap rules."""

from __future__ import annotations

import time
from typing import Any

from chronary.workers.holds import HoldExpiryWorker
from tests.scheduling.conftest import err, outbox_payloads, outbox_types, run

MON = "2026-03-23"


def hold(api: Any, cal_id: str, start: str, end: str, **fields: Any) -> Any:
    return api.post(
        f"/v1/calendars/{cal_id}/events",
        json={"title": "Hold", "start_time": start, "end_time": end, "status": "hold", **fields},
    )


def test_default_expiry_is_15_minutes_and_the_sweep_expires_on_time(sapi: Any, sclock: Any) -> None:
    sapi.receive_webhooks()  # holds' changes logged with their payloads
    a = sapi.agent("A")
    cal = sapi.calendar(a["id"])
    r = hold(sapi, cal["id"], f"{MON}T10:00:00Z", f"{MON}T11:00:00Z", priority=7)
    assert r.status_code == 201, r.text
    h = r.json()
    assert h["status"] == "hold" and h["priority"] == 7 and h["hold_expires_at"] == "2026-03-20T06:15:00Z"
    worker = HoldExpiryWorker(sapi.runtime)
    sclock.advance(minutes=14, seconds=59)
    assert run(worker.sweep()) == []
    assert sapi.get(f"/v1/calendars/{cal['id']}/events/{h['id']}").status_code == 200
    sclock.advance(seconds=1)
    assert run(worker.sweep()) == [h["id"]]
    assert sapi.get(f"/v1/calendars/{cal['id']}/events/{h['id']}").status_code == 404
    expired = outbox_payloads(sapi, "event.hold_expired")
    assert [p["data"]["object"]["id"] for p in expired] == [h["id"]]
    assert run(worker.sweep()) == []  # once only


def test_explicit_expiry_and_bounds(sapi: Any, sclock: Any) -> None:
    a = sapi.agent("A")
    cal = sapi.calendar(a["id"])
    ok = hold(sapi, cal["id"], f"{MON}T10:00:00Z", f"{MON}T11:00:00Z", hold_expires_at="2026-03-27T06:00:00Z")
    assert ok.status_code == 201 and ok.json()["hold_expires_at"] == "2026-03-27T06:00:00Z"  # exactly 7 days
    too_long = hold(sapi, cal["id"], f"{MON}T12:00:00Z", f"{MON}T13:00:00Z", hold_expires_at="2026-03-27T06:00:01Z")
    assert err(too_long)["param"] == "hold_expires_at"
    past = hold(sapi, cal["id"], f"{MON}T12:00:00Z", f"{MON}T13:00:00Z", hold_expires_at="2026-03-20T06:00:00Z")
    assert err(past)["param"] == "hold_expires_at"
    assert err(hold(sapi, cal["id"], f"{MON}T12:00:00Z", f"{MON}T13:00:00Z", priority=11))["param"] == "priority"
    not_hold = sapi.post(
        f"/v1/calendars/{cal['id']}/events",
        json={
            "title": "x",
            "start_time": f"{MON}T12:00:00Z",
            "end_time": f"{MON}T13:00:00Z",
            "hold_expires_at": "2026-03-21T00:00:00Z",
        },
    )
    assert err(not_hold)["param"] == "hold_expires_at"
    worker = HoldExpiryWorker(sapi.runtime)
    sclock.advance(days=6, hours=23)
    assert run(worker.sweep()) == []
    sclock.advance(hours=1)
    assert run(worker.sweep()) == [ok.json()["id"]]


def test_confirm_makes_it_permanent_and_release_deletes(sapi: Any, sclock: Any) -> None:
    sapi.receive_webhooks()  # holds' changes logged with their payloads
    a = sapi.agent("A")
    cal = sapi.calendar(a["id"])
    h1 = hold(sapi, cal["id"], f"{MON}T10:00:00Z", f"{MON}T11:00:00Z").json()
    h2 = hold(sapi, cal["id"], f"{MON}T12:00:00Z", f"{MON}T13:00:00Z").json()
    r = sapi.post(f"/v1/calendars/{cal['id']}/events/{h1['id']}/confirm")
    assert r.status_code == 200 and r.json()["status"] == "confirmed" and r.json()["hold_expires_at"] is None
    assert err(sapi.post(f"/v1/calendars/{cal['id']}/events/{h1['id']}/confirm"), 409)["type"] == "conflict"
    assert sapi.post(f"/v1/calendars/{cal['id']}/events/{h2['id']}/release").status_code == 204
    assert sapi.get(f"/v1/calendars/{cal['id']}/events/{h2['id']}").status_code == 404
    sclock.advance(hours=1)
    assert run(HoldExpiryWorker(sapi.runtime).sweep()) == []
    assert sapi.get(f"/v1/calendars/{cal['id']}/events/{h1['id']}").json()["status"] == "confirmed"
    types = outbox_types(sapi)
    assert types.count("event.hold_created") == 2
    assert "event.hold_confirmed" in types and "event.hold_released" in types


def test_hold_over_a_confirmed_event_of_the_same_agent_is_409_unless_allowed(sapi: Any) -> None:
    a, b = sapi.agent("A"), sapi.agent("B")
    cal1, cal2 = sapi.calendar(a["id"], name="One"), sapi.calendar(a["id"], name="Two")
    sapi.event(cal1["id"], f"{MON}T10:00:00Z", f"{MON}T11:00:00Z")
    e = err(hold(sapi, cal2["id"], f"{MON}T10:30:00Z", f"{MON}T11:30:00Z"), 409)
    assert e["type"] == "conflict"
    assert hold(sapi, cal2["id"], f"{MON}T10:30:00Z", f"{MON}T11:30:00Z", allow_overlap=True).status_code == 201
    assert hold(sapi, cal2["id"], f"{MON}T11:00:00Z", f"{MON}T12:00:00Z").status_code == 201  # touching is fine
    sapi.event(cal1["id"], f"{MON}T14:00:00Z", f"{MON}T15:00:00Z", status="tentative")
    assert hold(sapi, cal2["id"], f"{MON}T14:00:00Z", f"{MON}T15:00:00Z").status_code == 201  # only confirmed blocks
    other = sapi.calendar(b["id"])
    assert hold(sapi, other["id"], f"{MON}T10:00:00Z", f"{MON}T11:00:00Z").status_code == 201  # another agent


def test_running_worker_expires_holds_when_the_clock_moves(make_api: Any, sclock: Any) -> None:
    api = make_api(clock=sclock, workers=True)
    api.receive_webhooks()  # the expiry's change logged with its payload (deliveries to it just fail)
    a = api.agent("A")
    cal = api.calendar(a["id"])
    h = hold(api, cal["id"], f"{MON}T10:00:00Z", f"{MON}T11:00:00Z", hold_expires_at="2026-03-20T07:00:00Z").json()
    sclock.advance(hours=1, seconds=1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if api.get(f"/v1/calendars/{cal['id']}/events/{h['id']}").status_code == 404:
            break
        time.sleep(0.05)
    assert api.get(f"/v1/calendars/{cal['id']}/events/{h['id']}").status_code == 404
    assert "event.hold_expired" in outbox_types(api)
