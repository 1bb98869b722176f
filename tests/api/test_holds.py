"""Hold basics through the API: expiry defaults and limits, shortcuts, overlap with confirmed events."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chronary.clock import ManualClock
from tests.api._helpers import assert_error

T0, T1 = "2026-01-06T09:00:00Z", "2026-01-06T10:00:00Z"  # the day after the ManualClock's start


@pytest.fixture
def setup(make_api):
    clock = ManualClock()
    api = make_api(clock=clock)
    agent = api.agent()
    cal = api.calendar(agent["id"])
    return api, clock, cal


def _hold(api, cal, start=T0, end=T1, **fields):
    return api.post(
        f"/v1/calendars/{cal['id']}/events",
        json={"title": "hold", "start_time": start, "end_time": end, "status": "hold", **fields},
    )


def _iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_hold_defaults_to_15_minutes(setup):
    api, clock, cal = setup
    r = _hold(api, cal)
    assert r.status_code == 201, r.text
    h = r.json()
    assert h["status"] == "hold" and h["hold_expires_at"] == _iso(clock.now() + timedelta(minutes=15))


def test_hold_expiry_limits(setup):
    api, clock, cal = setup
    now = clock.now()
    ok = _hold(api, cal, hold_expires_at=_iso(now + timedelta(days=7)))
    assert ok.status_code == 201 and ok.json()["hold_expires_at"] == _iso(now + timedelta(days=7))
    for bad in (now + timedelta(days=7, seconds=1), now - timedelta(minutes=1), now):
        assert_error(
            _hold(api, cal, start="2026-02-01T09:00:00Z", end="2026-02-01T10:00:00Z", hold_expires_at=_iso(bad)),
            400,
            "validation_error",
            "hold_expires_at",
        )
    assert_error(_hold(api, cal, hold_expires_at="soon"), 400, "validation_error", "hold_expires_at")


def test_hold_expires_at_only_with_status_hold(setup):
    api, clock, cal = setup
    later = _iso(clock.now() + timedelta(hours=1))
    for status in ("confirmed", "tentative", "cancelled"):
        r = api.post(
            f"/v1/calendars/{cal['id']}/events",
            json={"title": "t", "start_time": T0, "end_time": T1, "status": status, "hold_expires_at": later},
        )
        assert_error(r, 400, "validation_error", "hold_expires_at")
    e = api.event(cal["id"], "2026-03-01T09:00:00Z", "2026-03-01T10:00:00Z")
    r = api.patch(f"/v1/calendars/{cal['id']}/events/{e['id']}", json={"hold_expires_at": later})
    assert_error(r, 400, "validation_error", "hold_expires_at")


def test_confirm_release_cancel(setup):
    api, clock, cal = setup
    base = f"/v1/calendars/{cal['id']}/events"
    h = _hold(api, cal).json()
    r = api.post(f"{base}/{h['id']}/confirm")
    assert r.status_code == 200
    c = r.json()
    assert c["status"] == "confirmed" and c["hold_expires_at"] is None
    assert_error(api.post(f"{base}/{h['id']}/confirm"), 409, "conflict")  # no longer a hold
    assert_error(api.post(f"{base}/{h['id']}/release"), 409, "conflict")

    r = api.post(f"{base}/{h['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert_error(api.post(f"{base}/{h['id']}/cancel"), 409, "conflict")

    h2 = _hold(api, cal, start="2026-01-07T09:00:00Z", end="2026-01-07T10:00:00Z").json()
    r = api.post(f"{base}/{h2['id']}/release")
    assert r.status_code == 204 and r.content == b""
    assert_error(api.get(f"{base}/{h2['id']}"), 404, "not_found")
    for action in ("confirm", "release", "cancel"):
        assert_error(api.post(f"{base}/evt_nope/{action}"), 404, "not_found")


def test_hold_may_not_overlap_a_confirmed_event(setup):
    api, clock, cal = setup
    confirmed = api.event(cal["id"], T0, T1)
    r = _hold(api, cal, start="2026-01-06T09:30:00Z", end="2026-01-06T10:30:00Z")
    err = assert_error(r, 409, "conflict")
    assert confirmed["id"] in err["message"]
    # same agent, another calendar: still a clash
    other_cal = api.calendar(cal["agent_id"], name="Second")
    assert_error(_hold(api, other_cal), 409, "conflict")
    # touching is not overlapping
    assert _hold(api, cal, start=T1, end="2026-01-06T11:00:00Z").status_code == 201
    # allow_overlap places it anyway
    assert _hold(api, cal, allow_overlap=True).status_code == 201
    # tentative events and other agents' events do not block
    api.patch(f"/v1/calendars/{cal['id']}/events/{confirmed['id']}", json={"status": "tentative"})
    assert _hold(api, cal, start="2026-01-06T09:10:00Z", end="2026-01-06T09:20:00Z").status_code == 201


def test_moving_a_hold_onto_a_confirmed_event_is_409(setup):
    api, clock, cal = setup
    api.event(cal["id"], T0, T1)
    h = _hold(api, cal, start="2026-01-06T12:00:00Z", end="2026-01-06T13:00:00Z").json()
    url = f"/v1/calendars/{cal['id']}/events/{h['id']}"
    assert_error(
        api.patch(url, json={"start_time": "2026-01-06T09:30:00Z", "end_time": "2026-01-06T10:30:00Z"}), 409, "conflict"
    )
    assert api.get(url).json()["start_time"] == "2026-01-06T12:00:00Z"
    r = api.patch(
        url, json={"start_time": "2026-01-06T09:30:00Z", "end_time": "2026-01-06T10:30:00Z", "allow_overlap": True}
    )
    assert r.status_code == 200


def test_patch_into_a_hold_gets_the_default_expiry(setup):
    api, clock, cal = setup
    e = api.event(cal["id"], T0, T1, status="tentative")
    f = api.patch(f"/v1/calendars/{cal['id']}/events/{e['id']}", json={"status": "hold"}).json()
    assert f["status"] == "hold" and f["hold_expires_at"] == _iso(clock.now() + timedelta(minutes=15))
    g = api.patch(f"/v1/calendars/{cal['id']}/events/{e['id']}", json={"status": "confirmed"}).json()
    assert g["hold_expires_at"] is None


def test_holds_filter_by_status(setup):
    api, clock, cal = setup
    _hold(api, cal)
    api.event(cal["id"], "2026-01-08T09:00:00Z", "2026-01-08T10:00:00Z")
    listed = api.get(f"/v1/calendars/{cal['id']}/events", params={"status": "hold"}).json()
    assert listed["total"] == 1 and listed["data"][0]["status"] == "hold"


def test_patch_hold_expiry_limits(setup):
    api, clock, cal = setup
    h = _hold(api, cal).json()
    url = f"/v1/calendars/{cal['id']}/events/{h['id']}"
    later = clock.now() + timedelta(days=2)
    r = api.patch(url, json={"hold_expires_at": _iso(later)})
    assert r.status_code == 200 and r.json()["hold_expires_at"] == _iso(later)
    for bad in (clock.now() + timedelta(days=8), clock.now() - timedelta(seconds=1)):
        assert_error(api.patch(url, json={"hold_expires_at": _iso(bad)}), 400, "validation_error", "hold_expires_at")
    assert api.get(url).json()["hold_expires_at"] == _iso(later)


def test_expired_holds_are_deleted_by_the_worker(setup):
    import asyncio
    import json

    from chronary.workers.holds import HoldExpiryWorker

    api, clock, cal = setup
    api.receive_webhooks()  # the expiry's change is logged with its payload
    h = _hold(api, cal).json()
    keep = _hold(
        api,
        cal,
        start="2026-01-07T09:00:00Z",
        end="2026-01-07T10:00:00Z",
        hold_expires_at=_iso(clock.now() + timedelta(hours=1)),
    ).json()
    worker = HoldExpiryWorker(api.runtime)
    assert asyncio.run(worker.sweep()) == []
    clock.advance(minutes=15)
    assert asyncio.run(worker.sweep()) == [h["id"]]
    assert_error(api.get(f"/v1/calendars/{cal['id']}/events/{h['id']}"), 404, "not_found")
    assert api.get(f"/v1/calendars/{cal['id']}/events/{keep['id']}").status_code == 200
    types = api.runtime.db.read_sync(
        lambda tx: [
            (r["type"], json.loads(r["payload"])["data"]["object"]["id"])
            for r in tx.conn.execute("SELECT type, payload FROM outbox WHERE type = 'event.hold_expired'")
        ]
    )
    assert types == [("event.hold_expired", h["id"])]


def test_confirming_an_expired_hold_is_409(setup):
    """Expired but not yet swept by the worker: gone in all but storage."""
    api, clock, cal = setup
    base = f"/v1/calendars/{cal['id']}/events"
    hold = _hold(api, cal).json()
    clock.advance(minutes=16)
    assert_error(api.post(f"{base}/{hold['id']}/confirm"), 409, "conflict")
    assert api.get(f"{base}/{hold['id']}").json()["status"] == "hold"
