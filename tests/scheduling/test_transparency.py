"""TRANSP on native events: transparent events are shown but never make an agent busy.

Availability, find-meeting-time (batched path, series expansion cache included), the hold
overlap check and agent context each see a transparent event next to an opaque one.
"""

from __future__ import annotations

from typing import Any

from tests.scheduling.conftest import err

MON = "2026-03-23"  # a Monday after T0 (Friday 2026-03-20 06:00Z)
FIND = "/v1/availability/find-meeting-time"


def busy(api: Any, agent_id: str, start: str, end: str) -> list[tuple[str, str]]:
    r = api.get(f"/v1/agents/{agent_id}/availability", params={"start": start, "end": end})
    assert r.status_code == 200, r.text
    return [(b["start"], b["end"]) for b in r.json()["busy"]]


def slots(api: Any, agent_ids: list[str], start: str, end: str) -> list[str]:
    r = api.post(
        FIND,
        json={
            "agent_ids": agent_ids,
            "start": start,
            "end": end,
            "duration_minutes": 60,
            "slot_step_minutes": 60,
            "limit": 100,
        },
    )
    assert r.status_code == 200, r.text
    return [s["start"] for s in r.json()["slots"]]


def test_create_default_patch_and_output(sapi: Any) -> None:
    cal = sapi.calendar(sapi.agent("A")["id"])
    plain = sapi.event(cal["id"], f"{MON}T10:00:00Z", f"{MON}T11:00:00Z")
    assert plain["transparency"] == "opaque"
    wfh = sapi.event(cal["id"], MON, "2026-03-24", title="Working from home", all_day=True, transparency="transparent")
    assert wfh["transparency"] == "transparent"
    assert sapi.get(f"/v1/calendars/{cal['id']}/events/{wfh['id']}").json()["transparency"] == "transparent"
    r = sapi.patch(f"/v1/calendars/{cal['id']}/events/{plain['id']}", json={"transparency": "transparent"})
    assert r.status_code == 200 and r.json()["transparency"] == "transparent", r.text
    assert (
        err(sapi.patch(f"/v1/calendars/{cal['id']}/events/{plain['id']}", json={"transparency": None}))["param"]
        == "transparency"
    )
    assert (
        err(sapi.patch(f"/v1/calendars/{cal['id']}/events/{plain['id']}", json={"transparency": "see-through"}))["param"]
        == "transparency"
    )
    schema = sapi.get("/schema/openapi.json").json()["components"]["schemas"]
    described = [s["properties"]["transparency"] for s in schema.values() if "transparency" in s.get("properties", {})]
    assert described and any("never block" in str(d) for d in described)  # the field is documented


def test_holds_are_always_opaque(sapi: Any) -> None:
    cal = sapi.calendar(sapi.agent("A")["id"])
    bad = sapi.post(
        f"/v1/calendars/{cal['id']}/events",
        json={
            "title": "Hold",
            "start_time": f"{MON}T10:00:00Z",
            "end_time": f"{MON}T11:00:00Z",
            "status": "hold",
            "transparency": "transparent",
        },
    )
    assert err(bad)["param"] == "transparency"
    h = sapi.event(cal["id"], f"{MON}T10:00:00Z", f"{MON}T11:00:00Z", status="hold")
    assert h["transparency"] == "opaque"
    r = sapi.patch(f"/v1/calendars/{cal['id']}/events/{h['id']}", json={"transparency": "transparent"})
    assert err(r)["param"] == "transparency"
    marker = sapi.event(cal["id"], f"{MON}T12:00:00Z", f"{MON}T13:00:00Z", transparency="transparent")
    r = sapi.patch(f"/v1/calendars/{cal['id']}/events/{marker['id']}", json={"status": "hold"})
    assert err(r)["param"] == "transparency"
    r = sapi.patch(f"/v1/calendars/{cal['id']}/events/{marker['id']}", json={"status": "hold", "transparency": "opaque"})
    assert r.status_code == 200 and r.json()["status"] == "hold", r.text


def test_transparent_event_does_not_block_availability_or_meetings_but_opaque_does(sapi: Any) -> None:
    a, b = sapi.agent("A"), sapi.agent("B")
    cal = sapi.calendar(a["id"])
    sapi.event(cal["id"], MON, "2026-03-24", title="Holiday", all_day=True, transparency="transparent")
    sapi.event(cal["id"], f"{MON}T09:00:00Z", f"{MON}T17:00:00Z", title="WFH", transparency="transparent")
    opaque = sapi.event(cal["id"], f"{MON}T10:00:00Z", f"{MON}T11:00:00Z")
    assert busy(sapi, a["id"], f"{MON}T08:00:00Z", f"{MON}T12:00:00Z") == [(f"{MON}T10:00:00Z", f"{MON}T11:00:00Z")]
    starts = slots(sapi, [a["id"], b["id"]], f"{MON}T08:00:00Z", f"{MON}T12:00:00Z")
    assert starts == [f"{MON}T08:00:00Z", f"{MON}T09:00:00Z", f"{MON}T11:00:00Z"]
    # flipping the opaque one to transparent frees its hour; flipping back blocks it again
    url = f"/v1/calendars/{cal['id']}/events/{opaque['id']}"
    assert sapi.patch(url, json={"transparency": "transparent"}).status_code == 200
    assert busy(sapi, a["id"], f"{MON}T08:00:00Z", f"{MON}T12:00:00Z") == []
    assert f"{MON}T10:00:00Z" in slots(sapi, [a["id"], b["id"]], f"{MON}T08:00:00Z", f"{MON}T12:00:00Z")
    assert sapi.patch(url, json={"transparency": "opaque"}).status_code == 200
    assert f"{MON}T10:00:00Z" not in slots(sapi, [a["id"], b["id"]], f"{MON}T08:00:00Z", f"{MON}T12:00:00Z")


def test_transparent_series_occurrences_inherit_and_exceptions_keep_their_own(sapi: Any) -> None:
    a, b = sapi.agent("A"), sapi.agent("B")
    cal = sapi.calendar(a["id"])
    series = sapi.event(
        cal["id"],
        f"{MON}T09:00:00Z",
        f"{MON}T10:00:00Z",
        title="Focus (free)",
        recurrence=["RRULE:FREQ=DAILY;COUNT=3"],
        transparency="transparent",
    )
    window = (f"{MON}T00:00:00Z", "2026-03-26T00:00:00Z")
    listed = sapi.get(
        f"/v1/calendars/{cal['id']}/events", params={"start_after": window[0], "start_before": window[1]}
    ).json()["data"]
    assert [e["transparency"] for e in listed] == ["transparent"] * 3
    assert busy(sapi, a["id"], *window) == []
    before = slots(sapi, [a["id"], b["id"]], *window)
    assert f"{MON}T09:00:00Z" in before and "2026-03-24T09:00:00Z" in before  # series cache warmed here
    occ = f"{series['id']}_20260324T090000Z"
    r = sapi.patch(f"/v1/calendars/{cal['id']}/events/{occ}", json={"transparency": "opaque"})
    assert r.status_code == 200 and r.json()["transparency"] == "opaque", r.text
    assert busy(sapi, a["id"], *window) == [("2026-03-24T09:00:00Z", "2026-03-24T10:00:00Z")]
    after = slots(sapi, [a["id"], b["id"]], *window)
    assert "2026-03-24T09:00:00Z" not in after and f"{MON}T09:00:00Z" in after and "2026-03-25T09:00:00Z" in after
    # the series turning opaque blocks the others too; the exception keeps its own value
    r = sapi.patch(f"/v1/calendars/{cal['id']}/events/{series['id']}", json={"transparency": "opaque"})
    assert r.status_code == 200, r.text
    assert len(busy(sapi, a["id"], *window)) == 3
    assert not {f"{MON}T09:00:00Z", "2026-03-24T09:00:00Z", "2026-03-25T09:00:00Z"} & set(
        slots(sapi, [a["id"], b["id"]], *window)
    )


def test_holds_may_sit_on_transparent_events_but_not_on_opaque_ones(sapi: Any) -> None:
    cal = sapi.calendar(sapi.agent("A")["id"])
    sapi.event(cal["id"], f"{MON}T09:00:00Z", f"{MON}T17:00:00Z", title="WFH", transparency="transparent")
    sapi.event(
        cal["id"],
        "2026-03-24T09:00:00Z",
        "2026-03-24T10:00:00Z",
        title="Daily free",
        recurrence=["RRULE:FREQ=DAILY;COUNT=2"],
        transparency="transparent",
    )
    ok = sapi.post(
        f"/v1/calendars/{cal['id']}/events",
        json={"title": "Hold", "start_time": f"{MON}T10:00:00Z", "end_time": f"{MON}T11:00:00Z", "status": "hold"},
    )
    assert ok.status_code == 201, ok.text
    ok2 = sapi.post(
        f"/v1/calendars/{cal['id']}/events",
        json={"title": "Hold", "start_time": "2026-03-25T09:00:00Z", "end_time": "2026-03-25T09:30:00Z", "status": "hold"},
    )
    assert ok2.status_code == 201, ok2.text
    sapi.event(cal["id"], f"{MON}T13:00:00Z", f"{MON}T14:00:00Z", title="Real meeting")
    clash = sapi.post(
        f"/v1/calendars/{cal['id']}/events",
        json={"title": "Hold", "start_time": f"{MON}T13:30:00Z", "end_time": f"{MON}T14:30:00Z", "status": "hold"},
    )
    assert err(clash, 409)["param"] == "start_time"


def test_context_lists_transparent_events_but_prefers_an_opaque_current_one(sapi: Any, sclock: Any) -> None:
    a = sapi.agent("A")
    cal = sapi.calendar(a["id"])
    sclock.set(sclock.now().replace(day=23, hour=10, minute=30))
    wfh = sapi.event(cal["id"], f"{MON}T09:00:00Z", f"{MON}T17:00:00Z", title="WFH", transparency="transparent")
    meeting = sapi.event(cal["id"], f"{MON}T10:00:00Z", f"{MON}T11:00:00Z", title="Meeting")
    later = sapi.event(cal["id"], f"{MON}T12:00:00Z", f"{MON}T13:00:00Z", title="Free lunch", transparency="transparent")
    body = sapi.get(f"/v1/agents/{a['id']}/context").json()
    assert body["current_event"]["id"] == meeting["id"]
    assert later["id"] in [e["id"] for e in body["upcoming"]]
    sclock.set(sclock.now().replace(hour=11, minute=30))
    body = sapi.get(f"/v1/agents/{a['id']}/context").json()
    assert body["current_event"]["id"] == wfh["id"]  # only a transparent one is going on: still shown
    assert body["current_event"]["transparency"] == "transparent"
