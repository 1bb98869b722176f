"""GET /v1/agents/{id}/context: now, current event, upcoming, recent, status."""

from __future__ import annotations

from typing import Any

import pytest

from tests.scheduling.conftest import err

# now (T0) is 2026-03-20T06:00:00Z


def ctx_of(api: Any, agent_id: str, **params: Any) -> dict[str, Any]:
    r = api.get(f"/v1/agents/{agent_id}/context", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_empty_agent(sapi: Any) -> None:
    a = sapi.agent("A")
    body = ctx_of(sapi, a["id"])
    assert body["now"] == "2026-03-20T06:00:00Z"
    assert body["current_event"] is None and body["upcoming"] == [] and body["recent"] == []
    assert body["agent_status"] == "idle" and body["agent_status_calendar_id"] is None
    assert body["agent"] == {"id": a["id"], "name": "A", "status": "active", "timezone": "UTC"}


def test_current_upcoming_recent_in_order(sapi: Any, sclock: Any) -> None:
    a, b = sapi.agent("A"), sapi.agent("B")
    cal1, cal2 = sapi.calendar(a["id"], name="One"), sapi.calendar(a["id"], name="Two")
    past1 = sapi.event(cal1["id"], "2026-03-19T08:00:00Z", "2026-03-19T09:00:00Z", title="past1")
    past2 = sapi.event(cal2["id"], "2026-03-20T04:00:00Z", "2026-03-20T05:00:00Z", title="past2")
    sapi.event(cal1["id"], "2026-03-20T05:00:00Z", "2026-03-20T05:30:00Z", title="cancelled", status="cancelled")
    old = sapi.event(cal1["id"], "2025-06-01T08:00:00Z", "2025-06-01T09:00:00Z", title="old")
    sapi.event(cal2["id"], "2026-03-20T05:30:00Z", "2026-03-20T07:00:00Z", title="held", status="hold", allow_overlap=True)
    now_ev = sapi.event(cal1["id"], "2026-03-20T05:45:00Z", "2026-03-20T06:30:00Z", title="now")
    series = sapi.event(
        cal2["id"], "2026-03-20T09:00:00Z", "2026-03-20T09:15:00Z", title="standup", recurrence=["RRULE:FREQ=DAILY;COUNT=10"]
    )
    far = sapi.event(cal1["id"], "2026-09-01T09:00:00Z", "2026-09-01T10:00:00Z", title="far")
    sapi.event(sapi.calendar(b["id"])["id"], "2026-03-20T06:10:00Z", "2026-03-20T06:20:00Z", title="not mine")

    body = ctx_of(sapi, a["id"], upcoming=3, recent=3)
    assert body["current_event"]["id"] == now_ev["id"]  # a real event beats the hold running now
    assert [e["title"] for e in body["upcoming"]] == ["standup"] * 3
    assert body["upcoming"][1]["id"] == f"{series['id']}_20260321T090000Z"
    assert [e["id"] for e in body["recent"]] == [past2["id"], past1["id"], old["id"]]  # latest end first

    body = ctx_of(sapi, a["id"], upcoming=11, recent=0)
    assert body["upcoming"][-1]["id"] == far["id"] and len(body["upcoming"]) == 11
    assert body["recent"] == []
    sclock.advance(hours=1)  # the hold lapses, "now" has ended
    body = ctx_of(sapi, a["id"], upcoming=0, recent=1)
    assert body["current_event"] is None and body["upcoming"] == []
    assert [e["id"] for e in body["recent"]] == [now_ev["id"]]


def test_agent_status_comes_from_the_most_recently_updated_calendar(sapi: Any, sclock: Any) -> None:
    a = sapi.agent("A")
    cal1, cal2 = sapi.calendar(a["id"], name="One"), sapi.calendar(a["id"], name="Two")
    assert ctx_of(sapi, a["id"])["agent_status_calendar_id"] == cal2["id"]
    sclock.advance(seconds=1)
    assert sapi.patch(f"/v1/calendars/{cal1['id']}", json={"agent_status": "working"}).status_code == 200
    body = ctx_of(sapi, a["id"])
    assert body["agent_status"] == "working" and body["agent_status_calendar_id"] == cal1["id"]
    sapi.patch(f"/v1/agents/{a['id']}", json={"status": "paused"})
    assert ctx_of(sapi, a["id"])["agent"]["status"] == "paused"


def test_agent_keys_and_bad_counts(sapi: Any) -> None:
    a, b = sapi.agent("A"), sapi.agent("B")
    as_a = sapi.as_key(sapi.agent_key(a["id"]))
    assert as_a.get(f"/v1/agents/{a['id']}/context").status_code == 200
    err(as_a.get(f"/v1/agents/{b['id']}/context"), 404)
    err(sapi.get("/v1/agents/agt_nope/context"), 404)
    for params, param in (({"upcoming": -1}, "upcoming"), ({"recent": 51}, "recent"), ({"upcoming": "x"}, "upcoming")):
        assert err(sapi.get(f"/v1/agents/{a['id']}/context", params=params))["param"] == param


@pytest.mark.parametrize("n", [0, 50])
def test_count_bounds_are_inclusive(vapi: Any, n: int) -> None:
    a = vapi.agent("A")
    assert vapi.get(f"/v1/agents/{a['id']}/context", params={"upcoming": n, "recent": n}).status_code == 200
