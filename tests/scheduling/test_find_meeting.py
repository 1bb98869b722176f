"""Find-meeting-time: common free slots, step grid, limit, rules per agent, and bad input."""

from __future__ import annotations

from typing import Any

import pytest

from tests.scheduling.conftest import err

MON = "2026-03-23"
URL = "/v1/availability/find-meeting-time"


def find(api: Any, **body: Any) -> list[dict[str, str]]:
    r = api.post(URL, json=body)
    assert r.status_code == 200, r.text
    return r.json()["slots"]


def test_common_slots_earliest_first_with_step_and_limit(sapi: Any) -> None:
    a, b, c = sapi.agent("A"), sapi.agent("B"), sapi.agent("C")
    sapi.event(sapi.calendar(a["id"])["id"], f"{MON}T09:00:00Z", f"{MON}T10:00:00Z")
    sapi.event(sapi.calendar(b["id"])["id"], f"{MON}T10:10:00Z", f"{MON}T11:00:00Z")
    sapi.put(
        f"/v1/agents/{c['id']}/availability-rules", json={"working_hours": {"mon": [{"start": "08:00", "end": "12:00"}]}}
    )
    slots = find(
        sapi,
        agent_ids=[a["id"], b["id"], c["id"]],
        start=f"{MON}T08:00:00Z",
        end=f"{MON}T18:00:00Z",
        duration_minutes=30,
        limit=50,
    )
    assert [(s["start"][11:16], s["end"][11:16]) for s in slots] == [
        ("08:00", "08:30"),
        ("08:15", "08:45"),
        ("08:30", "09:00"),
        ("11:00", "11:30"),
        ("11:15", "11:45"),
        ("11:30", "12:00"),
    ]
    two = find(
        sapi,
        agent_ids=[a["id"], b["id"], c["id"]],
        start=f"{MON}T08:00:00Z",
        end=f"{MON}T18:00:00Z",
        duration_minutes=30,
        limit=2,
    )
    assert two == slots[:2]
    hourly = find(
        sapi,
        agent_ids=[a["id"], b["id"]],
        start=f"{MON}T08:05:00Z",
        end=f"{MON}T13:00:00Z",
        duration_minutes=60,
        slot_step_minutes=60,
    )
    assert [s["start"][11:16] for s in hourly] == ["11:00", "12:00"]  # 08:05 → first grid point 09:00 is busy


def test_no_common_time_gives_empty_list(sapi: Any) -> None:
    a, b = sapi.agent("A"), sapi.agent("B")
    for agent, hours in ((a, {"start": "08:00", "end": "10:00"}), (b, {"start": "10:00", "end": "12:00"})):
        sapi.put(f"/v1/agents/{agent['id']}/availability-rules", json={"working_hours": {"mon": [hours]}})
    assert (
        find(sapi, agent_ids=[a["id"], b["id"]], start=f"{MON}T00:00:00Z", end="2026-03-24T00:00:00Z", duration_minutes=15)
        == []
    )


def test_recurring_and_all_day_events_block_meetings(sapi: Any) -> None:
    a, b = sapi.agent("A"), sapi.agent("B")
    cal = sapi.calendar(a["id"])
    sapi.event(cal["id"], f"{MON}T00:00:00Z", f"{MON}T12:00:00Z", recurrence=["RRULE:FREQ=DAILY;COUNT=2"])
    sapi.event(sapi.calendar(b["id"])["id"], "2026-03-24", "2026-03-25", all_day=True)
    slots = find(
        sapi,
        agent_ids=[a["id"], b["id"]],
        start=f"{MON}T00:00:00Z",
        end="2026-03-25T06:00:00Z",
        duration_minutes=60,
        slot_step_minutes=60,
        limit=100,
    )
    days = {s["start"][:10] for s in slots}
    assert days == {MON, "2026-03-25"}
    assert min(s["start"] for s in slots if s["start"].startswith(MON)) == f"{MON}T12:00:00Z"


def test_agent_key_must_include_itself(sapi: Any) -> None:
    a, b, c = sapi.agent("A"), sapi.agent("B"), sapi.agent("C")
    as_a = sapi.as_key(sapi.agent_key(a["id"]))
    body = {"start": f"{MON}T08:00:00Z", "end": f"{MON}T18:00:00Z", "duration_minutes": 30}
    assert as_a.post(URL, json={"agent_ids": [a["id"], b["id"]], **body}).status_code == 200
    assert err(as_a.post(URL, json={"agent_ids": [b["id"], c["id"]], **body}), 403)["type"] == "forbidden"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"agent_ids": ["A"]}, "agent_ids"),
        ({"agent_ids": ["A"] * 51}, "agent_ids"),
        ({"agent_ids": ["A", "A"]}, "agent_ids[1]"),
        ({"agent_ids": ["A", "agt_unknown"]}, "agent_ids[1]"),
        ({"duration_minutes": 0}, "duration_minutes"),
        ({"duration_minutes": -15}, "duration_minutes"),
        ({"slot_step_minutes": 0}, "slot_step_minutes"),
        ({"limit": 0}, "limit"),
        ({"end": "2026-03-22T00:00:00Z"}, "end"),
        ({"end": "2026-06-01T00:00:00Z"}, "end"),
        ({"start": "not a time"}, "start"),
        ({"start": None}, "start"),
        ({"duration": 30}, "duration"),
    ],
)
def test_find_meeting_validation(vapi: Any, change: dict[str, Any], param: str) -> None:
    a, b = vapi.agent("A"), vapi.agent("B")
    body = {
        "agent_ids": [a["id"], b["id"]],
        "start": f"{MON}T00:00:00Z",
        "end": "2026-03-24T00:00:00Z",
        "duration_minutes": 30,
        **change,
    }
    body["agent_ids"] = [{"A": a["id"]}.get(x, x) for x in body["agent_ids"]]
    if body["start"] is None:
        del body["start"]
    e = err(vapi.post(URL, json=body))
    assert e["param"] == param, e


def test_series_edits_and_cancelled_occurrences_show_up_at_once(sapi: Any) -> None:
    """The expansion cache is keyed by content: edits must never serve a stale answer."""
    a, b = sapi.agent("A"), sapi.agent("B")
    cal = sapi.calendar(a["id"])
    series = sapi.event(cal["id"], f"{MON}T00:00:00Z", f"{MON}T12:00:00Z", recurrence=["RRULE:FREQ=DAILY;COUNT=3"])
    body = {
        "agent_ids": [a["id"], b["id"]],
        "start": f"{MON}T00:00:00Z",
        "end": "2026-03-24T00:00:00Z",
        "duration_minutes": 60,
        "slot_step_minutes": 60,
        "limit": 1,
    }
    assert [s["start"] for s in find(sapi, **body)] == [f"{MON}T12:00:00Z"]
    r = sapi.post(f"/v1/calendars/{cal['id']}/events/{series['id']}_{MON.replace('-', '')}T000000Z/cancel")
    assert r.status_code == 200, r.text
    assert [s["start"] for s in find(sapi, **body)] == [f"{MON}T00:00:00Z"]
    r = sapi.patch(
        f"/v1/calendars/{cal['id']}/events/{series['id']}",
        json={"start_time": f"{MON}T01:00:00Z", "end_time": f"{MON}T05:00:00Z"},
    )
    assert r.status_code == 200, r.text
    first = find(sapi, **{**body, "limit": 2})
    assert [s["start"] for s in first] == [f"{MON}T00:00:00Z", f"{MON}T05:00:00Z"]
    assert sapi.delete(f"/v1/calendars/{cal['id']}/events/{series['id']}").status_code == 204
    assert len(find(sapi, **{**body, "limit": 24})) == 24
