"""Free/busy for one agent: statuses, calendars, recurrences, all-day days, buffers, notice."""

from __future__ import annotations

from typing import Any

import pytest

from tests.scheduling.conftest import err

MON = "2026-03-23"  # a Monday after T0 (Friday 2026-03-20 06:00Z)


def avail(api: Any, agent_id: str, start: str, end: str, **params: Any) -> dict[str, Any]:
    r = api.get(f"/v1/agents/{agent_id}/availability", params={"start": start, "end": end, **params})
    assert r.status_code == 200, r.text
    return r.json()


def spans(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(i["start"], i["end"]) for i in items]


def test_no_rules_means_free_except_busy_across_all_calendars(sapi: Any) -> None:
    a = sapi.agent("A")
    c1, c2 = sapi.calendar(a["id"], name="One"), sapi.calendar(a["id"], name="Two")
    e1 = sapi.event(c1["id"], f"{MON}T10:00:00Z", f"{MON}T11:00:00Z")
    sapi.event(c2["id"], f"{MON}T10:30:00Z", f"{MON}T12:00:00Z", status="tentative")
    e3 = sapi.event(
        c2["id"],
        f"{MON}T14:00:00Z",
        f"{MON}T15:00:00Z",
        status="hold",
        allow_overlap=True,
        hold_expires_at="2026-03-25T00:00:00Z",
    )
    sapi.event(c1["id"], f"{MON}T16:00:00Z", f"{MON}T17:00:00Z", status="cancelled")
    body = avail(sapi, a["id"], f"{MON}T08:00:00Z", f"{MON}T18:00:00Z")
    assert body["busy"] == [
        {"start": f"{MON}T10:00:00Z", "end": f"{MON}T12:00:00Z", "event_id": None},  # merged: two events
        {"start": f"{MON}T14:00:00Z", "end": f"{MON}T15:00:00Z", "event_id": e3["id"]},
    ]
    assert spans(body["free"]) == [
        (f"{MON}T08:00:00Z", f"{MON}T10:00:00Z"),
        (f"{MON}T12:00:00Z", f"{MON}T14:00:00Z"),
        (f"{MON}T15:00:00Z", f"{MON}T18:00:00Z"),
    ]
    assert e1["id"] not in {b["event_id"] for b in body["busy"]}


def test_other_agents_events_do_not_count(sapi: Any) -> None:
    a, b = sapi.agent("A"), sapi.agent("B")
    sapi.event(sapi.calendar(b["id"])["id"], f"{MON}T10:00:00Z", f"{MON}T11:00:00Z")
    body = avail(sapi, a["id"], f"{MON}T08:00:00Z", f"{MON}T18:00:00Z")
    assert body["busy"] == [] and spans(body["free"]) == [(f"{MON}T08:00:00Z", f"{MON}T18:00:00Z")]


def test_recurring_series_and_exceptions_block(sapi: Any) -> None:
    a = sapi.agent("A")
    cal = sapi.calendar(a["id"])
    series = sapi.event(cal["id"], f"{MON}T09:00:00Z", f"{MON}T09:30:00Z", recurrence=["RRULE:FREQ=DAILY;COUNT=3"])
    body = avail(sapi, a["id"], f"{MON}T00:00:00Z", "2026-03-27T00:00:00Z")
    assert spans(body["busy"]) == [
        (f"{MON}T09:00:00Z", f"{MON}T09:30:00Z"),
        ("2026-03-24T09:00:00Z", "2026-03-24T09:30:00Z"),
        ("2026-03-25T09:00:00Z", "2026-03-25T09:30:00Z"),
    ]
    assert body["busy"][1]["event_id"] == f"{series['id']}_20260324T090000Z"


def test_all_day_event_blocks_its_local_day(sapi: Any) -> None:
    a = sapi.agent("A", timezone="Europe/Berlin")
    cal = sapi.calendar(a["id"], timezone="Europe/Berlin")
    sapi.event(cal["id"], "2026-03-24", "2026-03-25", all_day=True)
    body = avail(sapi, a["id"], f"{MON}T00:00:00Z", "2026-03-26T00:00:00Z")
    # Berlin is UTC+1 in March before the 29th: the local day is 23:00Z..23:00Z
    assert spans(body["busy"]) == [(f"{MON}T23:00:00Z", "2026-03-24T23:00:00Z")]


def test_working_hours_buffers_and_timezone(sapi: Any) -> None:
    a = sapi.agent("A", timezone="America/New_York")
    cal = sapi.calendar(a["id"])
    sapi.put(
        f"/v1/agents/{a['id']}/availability-rules",
        json={
            "working_hours": {
                d: [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}]
                for d in ("mon", "tue", "wed", "thu", "fri")
            },
            "buffer_before_minutes": 15,
            "buffer_after_minutes": 30,
        },
    )
    # 10:00-10:30 New York (EDT, UTC-4) = 14:00-14:30Z; buffered 13:45-15:00Z
    ev = sapi.event(cal["id"], f"{MON}T14:00:00Z", f"{MON}T14:30:00Z")
    body = avail(sapi, a["id"], f"{MON}T00:00:00Z", "2026-03-24T00:00:00Z")
    assert body["timezone"] == "America/New_York"
    assert body["busy"] == [{"start": f"{MON}T13:45:00Z", "end": f"{MON}T15:00:00Z", "event_id": ev["id"]}]
    # working 09-12 and 13-17 local = 13-16Z and 17-21Z, minus the buffered event
    assert spans(body["free"]) == [
        (f"{MON}T13:00:00Z", f"{MON}T13:45:00Z"),
        (f"{MON}T15:00:00Z", f"{MON}T16:00:00Z"),
        (f"{MON}T17:00:00Z", f"{MON}T21:00:00Z"),
    ]
    # shorter intervals than slot_minutes are dropped
    long = avail(sapi, a["id"], f"{MON}T00:00:00Z", "2026-03-24T00:00:00Z", slot_minutes=61)
    assert spans(long["free"]) == [(f"{MON}T17:00:00Z", f"{MON}T21:00:00Z")]


def test_buffer_of_an_event_outside_the_window_reaches_in(sapi: Any) -> None:
    a = sapi.agent("A")
    cal = sapi.calendar(a["id"])
    sapi.put(
        f"/v1/agents/{a['id']}/availability-rules",
        json={"working_hours": {"mon": [{"start": "00:00", "end": "24:00"}]}, "buffer_after_minutes": 30},
    )
    sapi.event(cal["id"], f"{MON}T09:00:00Z", f"{MON}T10:00:00Z")
    body = avail(sapi, a["id"], f"{MON}T10:00:00Z", f"{MON}T12:00:00Z")
    assert spans(body["busy"]) == [(f"{MON}T10:00:00Z", f"{MON}T10:30:00Z")]
    assert spans(body["free"]) == [(f"{MON}T10:30:00Z", f"{MON}T12:00:00Z")]


def test_minimum_notice_and_the_past_are_never_free(sapi: Any, sclock: Any) -> None:
    a = sapi.agent("A")
    body = avail(sapi, a["id"], "2026-03-19T00:00:00Z", "2026-03-21T00:00:00Z")
    assert spans(body["free"]) == [("2026-03-20T06:00:00Z", "2026-03-21T00:00:00Z")]  # from now on
    sapi.put(
        f"/v1/agents/{a['id']}/availability-rules",
        json={
            "working_hours": {d: [{"start": "00:00", "end": "24:00"}] for d in ("mon", "fri", "sat")},
            "minimum_notice_minutes": 120,
        },
    )
    body = avail(sapi, a["id"], "2026-03-19T00:00:00Z", "2026-03-21T00:00:00Z")
    assert spans(body["free"]) == [("2026-03-20T08:00:00Z", "2026-03-21T00:00:00Z")]
    sclock.advance(hours=1)
    body = avail(sapi, a["id"], "2026-03-19T00:00:00Z", "2026-03-21T00:00:00Z")
    assert spans(body["free"]) == [("2026-03-20T09:00:00Z", "2026-03-21T00:00:00Z")]


def test_overrides_replace_a_weekday(sapi: Any) -> None:
    a = sapi.agent("A")
    sapi.put(
        f"/v1/agents/{a['id']}/availability-rules",
        json={
            "working_hours": {"mon": [{"start": "09:00", "end": "17:00"}], "tue": [{"start": "09:00", "end": "17:00"}]},
            "overrides": [
                {"date": MON, "hours": []},
                {"date": "2026-03-24", "hours": [{"start": "07:00", "end": "08:00"}]},
                {"date": "2026-03-28", "hours": [{"start": "10:00", "end": "11:00"}]},
            ],
        },
    )
    body = avail(sapi, a["id"], f"{MON}T00:00:00Z", "2026-03-30T00:00:00Z")
    assert spans(body["free"]) == [
        ("2026-03-24T07:00:00Z", "2026-03-24T08:00:00Z"),
        ("2026-03-28T10:00:00Z", "2026-03-28T11:00:00Z"),
    ]


def test_lapsed_hold_stops_blocking_before_the_sweep(sapi: Any, sclock: Any) -> None:
    a = sapi.agent("A")
    cal = sapi.calendar(a["id"])
    sapi.event(cal["id"], f"{MON}T10:00:00Z", f"{MON}T11:00:00Z", status="hold")  # expires in 15 min
    assert len(avail(sapi, a["id"], f"{MON}T00:00:00Z", "2026-03-24T00:00:00Z")["busy"]) == 1
    sclock.advance(minutes=16)
    assert avail(sapi, a["id"], f"{MON}T00:00:00Z", "2026-03-24T00:00:00Z")["busy"] == []


def test_agent_key_sees_only_its_own_availability(sapi: Any) -> None:
    a, b = sapi.agent("A"), sapi.agent("B")
    as_a = sapi.as_key(sapi.agent_key(a["id"]))
    assert (
        as_a.get(
            f"/v1/agents/{a['id']}/availability", params={"start": f"{MON}T00:00:00Z", "end": "2026-03-24T00:00:00Z"}
        ).status_code
        == 200
    )
    err(
        as_a.get(f"/v1/agents/{b['id']}/availability", params={"start": f"{MON}T00:00:00Z", "end": "2026-03-24T00:00:00Z"}),
        404,
    )


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"end": "2026-03-24T00:00:00Z"}, "start"),
        ({"start": "2026-03-24T00:00:00Z"}, "end"),
        ({"start": "2026-03-24T00:00:00Z", "end": "2026-03-23T00:00:00Z"}, "end"),
        ({"start": "2026-03-24T00:00:00Z", "end": "2026-03-24T00:00:00Z"}, "end"),
        ({"start": "2026-03-01T00:00:00Z", "end": "2026-05-02T00:00:01Z"}, "end"),
        ({"start": "2026-03-24T00:00:00", "end": "2026-03-25T00:00:00Z"}, "start"),
        ({"start": "yesterday", "end": "2026-03-25T00:00:00Z"}, "start"),
        ({"start": "2026-03-24T00:00:00Z", "end": "2026-03-25T00:00:00Z", "slot_minutes": 0}, "slot_minutes"),
        ({"start": "2026-03-24T00:00:00Z", "end": "2026-03-25T00:00:00Z", "slot_minutes": -30}, "slot_minutes"),
        ({"start": "2026-03-24T00:00:00Z", "end": "2026-03-25T00:00:00Z", "slot_minutes": "x"}, "slot_minutes"),
    ],
)
def test_availability_validation(vapi: Any, params: dict[str, Any], param: str) -> None:
    a = vapi.agent("A")
    e = err(vapi.get(f"/v1/agents/{a['id']}/availability", params=params))
    assert e["param"] == param, e


def test_window_of_exactly_62_days_is_allowed_and_unknown_agent_is_404(sapi: Any) -> None:
    a = sapi.agent("A")
    assert (
        sapi.get(
            f"/v1/agents/{a['id']}/availability", params={"start": "2026-03-01T00:00:00Z", "end": "2026-05-02T00:00:00Z"}
        ).status_code
        == 200
    )
    err(
        sapi.get(
            "/v1/agents/agt_nope/availability", params={"start": "2026-03-01T00:00:00Z", "end": "2026-03-02T00:00:00Z"}
        ),
        404,
    )
