"""Limits of the events service that once had holes: expired holds and runaway recurrences."""

from __future__ import annotations

from chronary.clock import ManualClock
from tests.api._helpers import assert_error


def test_patching_an_expired_hold_to_confirmed_is_409(make_api):
    """POST …/confirm refuses an expired (not yet swept) hold with 409; PATCH {"status":
    "confirmed"} must not be a way around that rule."""
    clock = ManualClock()
    api = make_api(clock=clock)
    cal = api.calendar(api.agent()["id"])
    base = f"/v1/calendars/{cal['id']}/events"
    hold = api.post(
        base, json={"title": "h", "start_time": "2026-01-06T09:00:00Z", "end_time": "2026-01-06T10:00:00Z", "status": "hold"}
    ).json()
    clock.advance(minutes=16)
    assert_error(api.patch(f"{base}/{hold['id']}", json={"status": "confirmed"}), 409, "conflict")
    assert api.get(f"{base}/{hold['id']}").json()["status"] == "hold"


def test_unbounded_secondly_rule_is_refused(api):
    """RRULE:FREQ=SECONDLY once stalled the single writer thread for 93 s (every hold overlap
    check expanded millions of occurrences); sub-hourly rules are refused, naming the line."""
    cal = api.calendar(api.agent()["id"])
    r = api.post(
        f"/v1/calendars/{cal['id']}/events",
        json={
            "title": "s",
            "start_time": "2026-01-06T09:00:00Z",
            "end_time": "2026-01-06T09:00:01Z",
            "recurrence": ["RRULE:FREQ=SECONDLY"],
        },
    )
    assert_error(r, 400, "validation_error", "recurrence[0]")


def test_minutely_rule_is_refused_too_but_hourly_works(api):
    cal = api.calendar(api.agent()["id"])
    base = f"/v1/calendars/{cal['id']}/events"
    times = {"start_time": "2026-01-06T09:00:00Z", "end_time": "2026-01-06T09:10:00Z"}
    r = api.post(
        base, json={"title": "m", **times, "recurrence": ["EXDATE:20260107T090000Z", "RRULE:FREQ=MINUTELY;INTERVAL=30"]}
    )
    assert_error(r, 400, "validation_error", "recurrence[1]")
    hourly = api.post(base, json={"title": "h", **times, "recurrence": ["RRULE:FREQ=HOURLY;INTERVAL=8"]})
    assert hourly.status_code == 201, hourly.text
    listed = api.get(base, params={"start_after": "2026-01-06T00:00:00Z", "start_before": "2026-01-07T00:00:00Z"})
    assert [e["start_time"] for e in listed.json()["data"]] == ["2026-01-06T09:00:00Z", "2026-01-06T17:00:00Z"]
