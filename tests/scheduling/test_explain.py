"""explain=true on availability and find-meeting-time: each busy interval, closed stretch and
rejected candidate names what made it (events with their source and its last sync, working
hours, date overrides, buffers, minimum notice), checked against the rules that produced it;
events synced from a real CalDAV server (Radicale) and from an iCal feed carry their source."""

from __future__ import annotations

from typing import Any

from chronary.clock import ManualClock
from tests.conftest import Api
from tests.ical.conftest import feed_server  # noqa: F401 - fixture
from tests.ical.feedserver import FeedServer, vcalendar, vevent
from tests.ical.subsync import run_subscription_worker
from tests.scheduling.conftest import T0
from tests.sync.conftest import Radicale, connect, enable, radicale, sync  # noqa: F401 - fixture
from tests.sync.conftest import vevent as dav_vevent

MON, TUE = "2026-03-23", "2026-03-24"
FIND = "/v1/availability/find-meeting-time"
# Europe/Berlin is UTC+1 until 2026-03-29: local 09:00 is 08:00Z
RULES = {
    "timezone": "Europe/Berlin",
    "working_hours": {d: [{"start": "09:00", "end": "17:00"}] for d in ("mon", "tue", "wed")},
    "buffer_before_minutes": 15,
    "buffer_after_minutes": 10,
    "minimum_notice_minutes": 3 * 24 * 60 + 4 * 60,  # from T0 (Fri 06:00Z): bookable from Mon 10:00Z
    "overrides": [
        {"date": TUE, "hours": [{"start": "10:00", "end": "12:00"}]},
        {"date": "2026-03-25", "hours": []},
    ],
}


def _z(day: str, hhmm: str) -> str:
    return f"{day}T{hhmm}:00Z"


def _availability(api: Any, agent_id: str, start: str, end: str, **params: Any) -> dict[str, Any]:
    r = api.get(f"/v1/agents/{agent_id}/availability", params={"start": start, "end": end, **params})
    assert r.status_code == 200, r.text
    return r.json()


def _why(blockers: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """A blocker as a short tuple: (kind, rule or event id, date)."""
    return [(b["kind"], b.get("rule") or b.get("event_id"), b.get("date")) for b in blockers]


def _setup(api: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]:
    agent = api.agent("A", timezone="Europe/Berlin")
    cal = api.calendar(agent["id"], timezone="Europe/Berlin")
    r = api.put(f"/v1/agents/{agent['id']}/availability-rules", json=RULES)
    assert r.status_code == 200, r.text
    ev = {
        "e1": api.event(cal["id"], _z(MON, "13:00"), _z(MON, "14:00"), title="One"),
        "e2": api.event(cal["id"], _z(MON, "14:30"), _z(MON, "15:00"), title="Two"),
        "e3": api.event(cal["id"], _z(TUE, "09:30"), _z(TUE, "10:00"), title="Three", status="tentative"),
        "e4": api.event(cal["id"], _z(TUE, "10:05"), _z(TUE, "10:30"), title="Four", status="hold"),
    }
    api.event(cal["id"], _z(MON, "10:00"), _z(MON, "11:00"), title="Free marker", transparency="transparent")
    return agent, r.json(), ev


def test_availability_explains_busy_and_closed_time_by_the_rules(sapi: Api) -> None:
    agent, rules, ev = _setup(sapi)
    start, end = _z(MON, "00:00"), "2026-03-26T00:00:00Z"
    plain = _availability(sapi, agent["id"], start, end)
    assert "explanation" not in plain  # explain=false answers exactly as before
    out = _availability(sapi, agent["id"], start, end, explain="true")
    why = out.pop("explanation")
    assert out == plain
    assert [(f["start"], f["end"]) for f in out["free"]] == [
        (_z(MON, "10:00"), _z(MON, "12:45")),  # minimum notice until 10:00Z, e1's buffer from 12:45Z
        (_z(MON, "15:10"), _z(MON, "16:00")),  # e2's buffer until 15:10Z, 17:00 local is 16:00Z
    ]

    # one entry per busy interval: its events (with their own times) and the buffer rule
    assert [(b["start"], b["end"]) for b in why["busy"]] == [(b["start"], b["end"]) for b in out["busy"]]
    assert [_why(b["blocked_by"]) for b in why["busy"]] == [
        [("event", ev["e1"]["id"], None), ("rule", "buffer", None)],
        [("event", ev["e2"]["id"], None), ("rule", "buffer", None)],
        [("event", ev["e3"]["id"], None), ("event", ev["e4"]["id"], None), ("rule", "buffer", None)],  # merged
    ]
    assert out["busy"][2]["event_id"] is None and why["busy"][2]["start"] == _z(TUE, "09:15")
    first = why["busy"][0]["blocked_by"][0]
    assert first == {
        "kind": "event",
        "agent_id": agent["id"],
        "event_id": ev["e1"]["id"],
        "calendar_id": ev["e1"]["calendar_id"],
        "title": "One",
        "status": "confirmed",
        "start_time": _z(MON, "13:00"),
        "end_time": _z(MON, "14:00"),
        "source": {"kind": "local", "provider": "internal"},
    }
    assert [b["status"] for b in why["busy"][2]["blocked_by"][:2]] == ["tentative", "hold"]
    buffer = why["busy"][0]["blocked_by"][1]
    assert buffer["rule_id"] == rules["id"] and "15 min before and 10 min after" in buffer["detail"]

    # the rest: notice, working hours and overrides per local day, and free gaps under slot_minutes
    assert [(c["start"], c["end"], _why(c["blocked_by"])) for c in why["closed"]] == [
        (_z(MON, "00:00"), _z(MON, "08:00"), [("rule", "minimum_notice", None), ("rule", "working_hours", MON)]),
        (_z(MON, "08:00"), _z(MON, "10:00"), [("rule", "minimum_notice", None)]),
        (_z(MON, "14:10"), _z(MON, "14:15"), [("too_short", None, None)]),
        (_z(MON, "16:00"), _z(MON, "23:00"), [("rule", "working_hours", MON)]),
        (_z(MON, "23:00"), _z(TUE, "09:00"), [("rule", "date_override", TUE)]),
        (_z(TUE, "09:00"), _z(TUE, "09:15"), [("too_short", None, None)]),
        (_z(TUE, "10:40"), _z(TUE, "11:00"), [("too_short", None, None)]),
        (_z(TUE, "11:00"), _z(TUE, "23:00"), [("rule", "date_override", TUE)]),
        (_z(TUE, "23:00"), "2026-03-25T23:00:00Z", [("rule", "date_override", "2026-03-25")]),
        ("2026-03-25T23:00:00Z", end, [("rule", "working_hours", "2026-03-26")]),
    ]
    details = {(b.get("rule"), b.get("date")): b["detail"] for c in why["closed"] for b in c["blocked_by"]}
    assert details[("minimum_notice", None)] == "minimum notice 4560 min: bookable from 2026-03-23T10:00:00Z"
    assert details[("working_hours", MON)] == "outside working hours (mon: 09:00–17:00)"
    assert details[("working_hours", "2026-03-26")] == "no working hours on thu"
    assert details[("date_override", TUE)] == f"date override for {TUE}: outside 10:00–12:00"
    assert details[("date_override", "2026-03-25")] == "date override for 2026-03-25: day off"
    assert all(b["rule_id"] == rules["id"] for c in why["closed"] for b in c["blocked_by"] if b["kind"] == "rule")
    assert why["sources"] == []

    # free, busy and closed together cover the whole window
    spans = sorted((x["start"], x["end"]) for x in [*out["free"], *out["busy"], *why["closed"]])
    reach = start
    for a, b in spans:
        assert a <= reach, (a, reach)
        reach = max(reach, b)
    assert reach == end


def test_availability_before_now_is_past(sapi: Api) -> None:
    agent = sapi.agent("B")
    out = _availability(sapi, agent["id"], "2026-03-20T04:00:00Z", "2026-03-20T08:00:00Z", explain="true")
    assert [(f["start"], f["end"]) for f in out["free"]] == [("2026-03-20T06:00:00Z", "2026-03-20T08:00:00Z")]
    closed = out["explanation"]["closed"]
    assert [(c["start"], c["end"], _why(c["blocked_by"])) for c in closed] == [
        ("2026-03-20T04:00:00Z", "2026-03-20T06:00:00Z", [("past", None, None)])
    ]


def _find(api: Any, agent_ids: list[str], start: str, end: str, **body: Any) -> dict[str, Any]:
    payload = {"agent_ids": agent_ids, "start": start, "end": end, "duration_minutes": 60, "slot_step_minutes": 60}
    r = api.post(FIND, params={"explain": "true"}, json={**payload, **body})
    assert r.status_code == 200, r.text
    plain = api.post(FIND, json={**payload, **body})
    assert plain.status_code == 200 and "explanation" not in plain.json()
    assert plain.json()["slots"] == r.json()["slots"]
    return r.json()


def test_find_meeting_time_explains_each_rejected_candidate(sapi: Api) -> None:
    agent, rules, ev = _setup(sapi)
    other = sapi.agent("Other")
    theirs = sapi.event(sapi.calendar(other["id"])["id"], _z(MON, "15:00"), _z(MON, "16:00"), title="Theirs")
    out = _find(sapi, [agent["id"], other["id"]], _z(MON, "06:00"), _z(MON, "18:00"), limit=10)
    assert [s["start"] for s in out["slots"]] == [_z(MON, "10:00"), _z(MON, "11:00")]
    why = out["explanation"]
    rejected = [(r["start"], r["end"], r["candidates"], _why(r["reasons"])) for r in why["rejected"]]
    assert rejected == [
        (_z(MON, "06:00"), _z(MON, "08:00"), 2, [("rule", "minimum_notice", None), ("rule", "working_hours", MON)]),
        (_z(MON, "08:00"), _z(MON, "10:00"), 2, [("rule", "minimum_notice", None)]),
        (_z(MON, "12:00"), _z(MON, "13:00"), 1, [("event", ev["e1"]["id"], None), ("rule", "buffer", None)]),
        (_z(MON, "13:00"), _z(MON, "14:00"), 1, [("event", ev["e1"]["id"], None)]),
        (
            _z(MON, "14:00"),
            _z(MON, "15:00"),
            1,
            [
                ("event", ev["e1"]["id"], None),
                ("event", ev["e2"]["id"], None),
                ("rule", "buffer", None),  # e1's 10 min after
                ("rule", "buffer", None),  # e2's 15 min before
            ],
        ),
        (
            _z(MON, "15:00"),
            _z(MON, "16:00"),
            1,
            [("event", ev["e2"]["id"], None), ("event", theirs["id"], None), ("rule", "buffer", None)],
        ),
        (_z(MON, "16:00"), _z(MON, "18:00"), 2, [("rule", "working_hours", MON)]),  # 17:00 local is 16:00Z
    ]
    assert why["rejected_total"] == 10 and why["truncated"] is False  # 12 candidates 06:00…17:00, 2 slots
    assert sum(r["candidates"] for r in why["rejected"]) == why["rejected_total"]
    padded = [b["event_id"] for b in why["rejected"][4]["reasons"] if b.get("rule") == "buffer"]
    assert padded == [ev["e1"]["id"], ev["e2"]["id"]]
    agents = {b["agent_id"] for r in why["rejected"] for b in r["reasons"]}
    assert agents == {agent["id"], other["id"]}

    # an agent key sees its own reasons in full, another agent's event only as busy time
    as_agent = sapi.as_key(sapi.agent_key(agent["id"]))
    mine = _find(as_agent, [agent["id"], other["id"]], _z(MON, "15:00"), _z(MON, "16:00"))["explanation"]
    reasons = mine["rejected"][0]["reasons"]
    assert reasons[0]["event_id"] == ev["e2"]["id"] and reasons[0]["title"] == "Two"
    assert reasons[1] == {
        "kind": "event",
        "agent_id": other["id"],
        "start_time": _z(MON, "15:00"),
        "end_time": _z(MON, "16:00"),
        "private": True,
    }


def test_rejected_candidates_are_bounded(sapi: Api) -> None:
    a, b = sapi.agent("A"), sapi.agent("B")
    cal = sapi.calendar(a["id"])
    series = sapi.event(cal["id"], _z(MON, "00:00"), _z(MON, "00:50"), recurrence=["RRULE:FREQ=HOURLY;COUNT=200"])
    out = _find(sapi, [a["id"], b["id"]], _z(MON, "00:00"), "2026-04-01T00:00:00Z", duration_minutes=30, limit=1)
    why = out["explanation"]
    assert out["slots"] == [{"start": "2026-03-31T08:00:00Z", "end": "2026-03-31T08:30:00Z"}]  # after 200 hours
    assert len(why["rejected"]) == 100 and why["truncated"] is True
    assert [r["candidates"] for r in why["rejected"]] == [1] * 100  # each hour: a different occurrence
    assert why["rejected"][5]["reasons"][0]["event_id"] == f"{series['id']}_20260323T050000Z"
    assert why["rejected_total"] == 200  # every hour of the series, up to the slot


def test_events_name_their_synced_sources_and_last_sync(make_api: Any, radicale: Radicale, feed_server: FeedServer) -> None:  # noqa: F811
    api = make_api(clock=ManualClock(T0))
    agent = api.agent("Synced")
    local = api.calendar(agent["id"], name="Local")
    mine = api.event(local["id"], _z(MON, "08:00"), _z(MON, "09:00"), title="Local")

    user = radicale.new_user()
    dav = radicale.make_calendar(user)
    dav.save_event(dav_vevent("phone-1", "Dentist", "20260323T100000Z", "20260323T110000Z"))
    con = connect(api, agent["id"], user, radicale.url)
    mapped = enable(api, con, f"/{user}/work/")
    summary = sync(api, con["id"])
    assert summary and summary["pulled"] == 1, summary

    feed_server.serve("/team.ics", vcalendar(vevent("feed-1@test", "20260323T120000Z", "20260323T130000Z", "Offsite")))
    feed_cal = api.calendar(agent["id"], name="Team feed")
    r = api.post(
        f"/v1/agents/{agent['id']}/ical-subscriptions",
        json={"calendar_id": feed_cal["id"], "url": feed_server.url("/team.ics"), "label": "Team"},
    )
    assert r.status_code == 201, r.text
    sub_id = r.json()["id"]
    assert run_subscription_worker(api) == 1

    con_now = api.get(f"/v1/connections/{con['id']}").json()
    sub_now = api.get(f"/v1/ical-subscriptions/{sub_id}").json()
    assert con_now["last_synced_at"] and sub_now["last_synced_at"]
    out = _availability(api, agent["id"], _z(MON, "00:00"), _z(TUE, "00:00"), explain="true")
    why = out["explanation"]
    blockers = [b for interval in why["busy"] for b in interval["blocked_by"]]
    assert [(b["title"], b["calendar_id"]) for b in blockers] == [
        ("Local", local["id"]),
        ("Dentist", mapped["calendar_id"]),
        ("Offsite", feed_cal["id"]),
    ]
    assert blockers[0]["event_id"] == mine["id"] and blockers[0]["source"] == {"kind": "local", "provider": "internal"}
    assert blockers[1]["source"] == {
        "kind": "connection",
        "provider": "caldav",
        "id": con["id"],
        "agent_id": agent["id"],
        "status": con_now["status"],
        "last_synced_at": con_now["last_synced_at"],
    }
    assert blockers[2]["source"] == {
        "kind": "subscription",
        "provider": "external_ical",
        "id": sub_id,
        "agent_id": agent["id"],
        "label": "Team",
        "status": "active",
        "last_synced_at": sub_now["last_synced_at"],
    }
    listed = {s["id"]: s for s in why["sources"]}
    assert set(listed) == {con["id"], sub_id}
    assert listed[con["id"]]["calendar_ids"] == [mapped["calendar_id"]]
    assert listed[sub_id]["calendar_ids"] == [feed_cal["id"]]
    assert listed[con["id"]]["last_synced_at"] == con_now["last_synced_at"]

    # find-meeting-time names the same sources for its rejected candidates
    other = api.agent("Free")
    found = _find(api, [agent["id"], other["id"]], _z(MON, "10:00"), _z(MON, "13:00"))["explanation"]
    kinds = [[b["source"]["kind"] for b in r["reasons"]] for r in found["rejected"]]
    assert kinds == [["connection"], ["subscription"]]
    assert found["rejected"][1]["reasons"][0]["source"]["last_synced_at"] == sub_now["last_synced_at"]
    assert {s["id"] for s in found["sources"]} == {con["id"], sub_id}


def test_explain_is_documented(sapi: Api) -> None:
    schema = sapi.get("/schema/openapi.json").json()
    for path, method in (("/v1/agents/{agent_id}/availability", "get"), ("/v1/availability/find-meeting-time", "post")):
        params = {p["name"]: p for p in schema["paths"][path][method]["parameters"]}
        assert "last_synced_at" in params["explain"]["description"], path
    components = schema["components"]["schemas"]
    assert "explanation" in components["Availability"]["properties"]
    assert "explanation" in components["MeetingSlots"]["properties"]
    assert "working_hours" in str(components["Blocker"])
