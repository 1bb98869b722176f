"""Book if free: `if_free: true` on event and hold creation checks the agent's whole busy time
inside the write transaction (every calendar, synced and subscribed ones, holds, buffers) and
answers 409 conflict listing what is in the way; 20 concurrent bookings of one slot against a
live server have exactly one winner."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from chronary.clock import ManualClock
from tests.api._helpers import assert_error
from tests.conftest import Api
from tests.ical.conftest import feed_server  # noqa: F401 - fixture
from tests.ical.feedserver import FeedServer, vcalendar, vevent
from tests.ical.subsync import run_subscription_worker
from tests.scheduling.conftest import T0
from tests.sync.conftest import Radicale, connect, enable, radicale, sync  # noqa: F401 - fixture
from tests.sync.conftest import vevent as dav_vevent

MON = "2026-03-23"


def _z(hhmm: str, day: str = MON) -> str:
    return f"{day}T{hhmm}:00Z"


def _book(api: Any, cal_id: str, start: str, end: str, **fields: Any) -> httpx.Response:
    body = {"title": "Booked", "start_time": start, "end_time": end, "if_free": True, **fields}
    return api.post(f"/v1/calendars/{cal_id}/events", json=body)


def _conflicts(r: httpx.Response) -> list[dict[str, Any]]:
    """A 409 conflict: the four envelope keys plus `conflicts`."""
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert set(error) == {"type", "message", "param", "request_id", "conflicts"}, error
    assert error["type"] == "conflict" and error["request_id"].startswith("req_")
    return error["conflicts"]


def _count(api: Any, cal_id: str) -> int:
    return int(api.get(f"/v1/calendars/{cal_id}/events").json()["total"])


def test_if_free_refuses_busy_time_of_every_calendar_with_buffers(sapi: Api) -> None:
    agent = sapi.agent("A")
    work, private = sapi.calendar(agent["id"], name="Work"), sapi.calendar(agent["id"], name="Private")
    rules = {"working_hours": {"mon": [{"start": "09:00", "end": "17:00"}]}, "buffer_after_minutes": 10}
    assert sapi.put(f"/v1/agents/{agent['id']}/availability-rules", json=rules).status_code == 200
    dentist = sapi.event(private["id"], _z("10:00"), _z("11:00"), title="Dentist")

    conflicts = _conflicts(_book(sapi, work["id"], _z("10:30"), _z("11:30")))
    assert conflicts == [
        {
            "event_id": dentist["id"],
            "calendar_id": private["id"],
            "title": "Dentist",
            "status": "confirmed",
            "start_time": _z("10:00"),
            "end_time": _z("11:00"),
            "source": "internal",
            "source_id": None,
            "reason": "overlaps",
        }
    ]
    assert [c["reason"] for c in _conflicts(_book(sapi, work["id"], _z("11:05"), _z("12:00")))] == ["buffer"]
    assert _count(sapi, work["id"]) == 0  # nothing written
    assert _book(sapi, work["id"], _z("11:10"), _z("12:00")).status_code == 201  # after the buffer
    assert _book(sapi, work["id"], _z("08:00"), _z("09:00")).status_code == 201  # working hours are not checked
    # without if_free a double booking is still allowed, as always
    r = sapi.post(
        f"/v1/calendars/{work['id']}/events", json={"title": "x", "start_time": _z("10:00"), "end_time": _z("11:00")}
    )
    assert r.status_code == 201
    # every other error keeps exactly the four keys
    assert_error(_book(sapi, "cal_missing", _z("13:00"), _z("14:00")), 404, "not_found")
    assert_error(sapi.get(f"/v1/calendars/{work['id']}/events/evt_missing"), 404, "not_found")
    hold_on_event = sapi.post(
        f"/v1/calendars/{work['id']}/events",
        json={"title": "h", "start_time": _z("10:00"), "end_time": _z("11:00"), "status": "hold"},
    )
    assert_error(hold_on_event, 409, "conflict")


def test_what_blocks_if_free_is_what_availability_calls_busy(sapi: Api, sclock: ManualClock) -> None:
    agent = sapi.agent("A")
    cal = sapi.calendar(agent["id"])
    tentative = sapi.event(cal["id"], _z("09:00"), _z("10:00"), status="tentative")
    hold = sapi.event(cal["id"], _z("11:00"), _z("12:00"), status="hold", hold_expires_at="2026-03-27T00:00:00Z")
    sapi.event(cal["id"], _z("13:00"), _z("14:00"), transparency="transparent")
    gone = sapi.event(cal["id"], _z("15:00"), _z("16:00"))
    assert sapi.post(f"/v1/calendars/{cal['id']}/events/{gone['id']}/cancel").status_code == 200
    lapsing = sapi.event(cal["id"], _z("16:00"), _z("17:00"), status="hold", hold_expires_at="2026-03-20T07:00:00Z")

    assert [c["event_id"] for c in _conflicts(_book(sapi, cal["id"], _z("09:30"), _z("11:30")))] == [
        tentative["id"],
        hold["id"],
    ]
    assert _book(sapi, cal["id"], _z("13:00"), _z("14:00"), title="over transparent").status_code == 201
    assert _book(sapi, cal["id"], _z("15:00"), _z("16:00"), title="over cancelled").status_code == 201
    assert [c["event_id"] for c in _conflicts(_book(sapi, cal["id"], _z("16:00"), _z("17:00")))] == [lapsing["id"]]
    sclock.advance(hours=1)  # the hold lapses (the worker has not swept it yet): the time is free
    assert _book(sapi, cal["id"], _z("16:00"), _z("17:00"), title="after lapse").status_code == 201


def test_holds_and_series_with_if_free(sapi: Api) -> None:
    agent = sapi.agent("A")
    cal = sapi.calendar(agent["id"])
    first = sapi.event(cal["id"], _z("10:00"), _z("11:00"), status="hold")
    # a hold on a hold was always allowed (only confirmed events stop a hold); if_free refuses it,
    # and allow_overlap does not weaken it
    for extra in ({}, {"allow_overlap": True}):
        r = _book(sapi, cal["id"], _z("10:00"), _z("11:00"), status="hold", **extra)
        assert [c["event_id"] for c in _conflicts(r)] == [first["id"]]
    r = _book(sapi, cal["id"], _z("11:00"), _z("12:00"), status="hold")
    assert r.status_code == 201 and r.json()["status"] == "hold"

    # a series: its occurrences (first 62 days) are checked; the clash is an occurrence of it
    weekly = sapi.event(cal["id"], _z("14:00", "2026-03-25"), _z("15:00", "2026-03-25"), recurrence=["RRULE:FREQ=WEEKLY"])
    daily = ["RRULE:FREQ=DAILY;COUNT=5"]
    conflicts = _conflicts(_book(sapi, cal["id"], _z("14:30"), _z("15:30"), recurrence=daily))
    assert [(c["event_id"], c["start_time"]) for c in conflicts] == [
        (f"{weekly['id']}_20260325T140000Z", _z("14:00", "2026-03-25"))
    ]
    assert _book(sapi, cal["id"], _z("15:00"), _z("16:00"), recurrence=daily).status_code == 201


def test_synced_and_subscribed_events_block(make_api: Any, radicale: Radicale, feed_server: FeedServer) -> None:  # noqa: F811
    api = make_api(clock=ManualClock(T0))
    agent = api.agent("Synced")
    work = api.calendar(agent["id"], name="Work")
    user = radicale.new_user()
    radicale.make_calendar(user).save_event(dav_vevent("phone-1", "Dentist", "20260323T100000Z", "20260323T110000Z"))
    con = connect(api, agent["id"], user, radicale.url)
    mapped = enable(api, con, f"/{user}/work/")
    assert sync(api, con["id"])["pulled"] == 1  # type: ignore[index]
    feed_server.serve("/team.ics", vcalendar(vevent("feed-1@test", "20260323T120000Z", "20260323T130000Z", "Offsite")))
    feed_cal = api.calendar(agent["id"], name="Team feed")
    r = api.post(
        f"/v1/agents/{agent['id']}/ical-subscriptions",
        json={"calendar_id": feed_cal["id"], "url": feed_server.url("/team.ics")},
    )
    assert r.status_code == 201, r.text
    run_subscription_worker(api)

    conflicts = _conflicts(_book(api, work["id"], _z("10:30"), _z("12:30")))
    assert [(c["title"], c["calendar_id"], c["source"], c["source_id"]) for c in conflicts] == [
        ("Dentist", mapped["calendar_id"], "caldav", con["id"]),
        ("Offsite", feed_cal["id"], "external_ical", r.json()["id"]),
    ]
    assert _book(api, work["id"], _z("11:00"), _z("12:00")).status_code == 201


@pytest.mark.parametrize("status", ["confirmed", "hold"])
def test_twenty_concurrent_bookings_of_one_slot_have_one_winner(live_server: Any, status: str) -> None:
    server = live_server()
    with server.client() as c:
        agent = c.post("/v1/agents", json={"name": "Busy"}).json()
        cals = [
            c.post(f"/v1/agents/{agent['id']}/calendars", json={"name": f"C{i}", "timezone": "UTC"}).json() for i in range(2)
        ]
    barrier = threading.Barrier(20)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def book(i: int) -> None:
        body = {
            "title": f"Try {i}",
            "start_time": "2030-01-07T10:00:00Z",
            "end_time": "2030-01-07T11:00:00Z",
            "status": status,
            "if_free": True,
        }
        with server.client() as client:
            barrier.wait()
            r = client.post(f"/v1/calendars/{cals[i % 2]['id']}/events", json=body)  # both of the agent's calendars
        with lock:
            answers.append(r)

    threads = [threading.Thread(target=book, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(r.status_code for r in answers) == [201] + [409] * 19, [r.text for r in answers if r.status_code != 409]
    winner = next(r.json() for r in answers if r.status_code == 201)
    for r in answers:
        if r.status_code == 409:
            assert [x["event_id"] for x in _conflicts(r)] == [winner["id"]]
    with server.client() as c:
        listed = c.get(f"/v1/agents/{agent['id']}/events").json()
        assert listed["total"] == 1 and listed["data"][0]["id"] == winner["id"]


def test_if_free_and_its_conflict_are_documented(sapi: Api) -> None:
    schema = sapi.get("/schema/openapi.json").json()
    components = schema["components"]["schemas"]
    assert "409 conflict" in components["EventCreate"]["properties"]["if_free"]["description"]
    op = schema["paths"]["/v1/calendars/{calendar_id}/events"]["post"]
    assert "if_free" in op["description"]
    assert "error.conflicts" in op["responses"]["409"]["description"]
    conflicts = components["ErrorBody"]["properties"]["conflicts"]
    assert "if_free" in conflicts["description"] and "conflicts" not in components["ErrorBody"].get("required", [])
    item = components["EventConflict"]["properties"]
    assert {"event_id", "calendar_id", "start_time", "end_time", "source", "source_id", "reason"} <= set(item)
