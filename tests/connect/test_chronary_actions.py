"""The chronary provider's Connect actions (services/connect/chronary_actions.py) on the real app.

Every action runs as an org key or an agent key's Principal (built the way the /v1 guard builds
it), its inputs checked against the catalogue's input schema first (as the Connect front door
does) and its answer against the output schema; its effect is read back through the REST API,
and refusals are the chronary errors REST answers with, naming the field.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from chronary import catalogue
from chronary.catalogue.chronary import EVENT
from chronary.catalogue.smtp import _inline_event
from chronary.clock import ManualClock
from chronary.errors import ChronaryError, Conflict, Forbidden, NotFound, ValidationError
from chronary.runtime import Runtime
from chronary.services import keys as key_service
from chronary.services.connect import chronary_actions
from chronary.services.context import Ctx
from chronary.store import changes as change_store
from tests.conftest import Api

# the ManualClock starts on Monday 2026-01-05 09:00 UTC; these are the next day
T9, T10, T11, T12 = (f"2026-01-06T{h}:00:00Z" for h in ("09", "10", "11", "12"))
T1030 = "2026-01-06T10:30:00Z"


@dataclass
class Env:
    api: Api
    clock: ManualClock
    runtime: Runtime
    org: Ctx
    agent: Ctx  # agent A's key
    agent_api: Api  # the same key over REST
    a: dict[str, Any]
    b: dict[str, Any]
    cal_a: dict[str, Any]
    cal_b: dict[str, Any]
    cal_org: dict[str, Any]


def _ctx(runtime: Runtime, key: str) -> Ctx:
    principal = runtime.db.read_sync(lambda tx: key_service.authenticate(tx, key))
    return Ctx(principal=principal, base_url=runtime.settings.base_url)


@pytest.fixture
def env(make_api: Any) -> Env:
    clock = ManualClock()
    api = make_api(clock=clock)
    runtime: Runtime = api.runtime
    a, b = api.agent("A"), api.agent("B")
    cal_a, cal_b = api.calendar(a["id"], name="A work"), api.calendar(b["id"], name="B work")
    cal_org = api.calendar(None, name="Org rooms")
    key_a = api.agent_key(a["id"])
    return Env(
        api=api,
        clock=clock,
        runtime=runtime,
        org=_ctx(runtime, api.key),
        agent=_ctx(runtime, key_a),
        agent_api=api.as_key(key_a),
        a=a,
        b=b,
        cal_a=cal_a,
        cal_b=cal_b,
        cal_org=cal_org,
    )


def _action(name: str) -> catalogue.Action:
    action = catalogue.action("chronary", name)
    assert action is not None, name
    return action


def _valid_input(name: str, inputs: dict[str, Any]) -> None:
    """The check the Connect front door makes before running an action."""
    Draft202012Validator(_action(name).input_schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(inputs)


def _valid_output(schema: dict[str, Any], out: Any) -> None:
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(out)
    json.dumps(out)  # JSON-ready as it is


def act(env: Env, ctx: Ctx, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    _valid_input(name, inputs)
    sent = json.loads(json.dumps(inputs))
    out = asyncio.run(chronary_actions.run(env.runtime, ctx, name, inputs))
    assert inputs == sent  # the caller's dict is left as it was
    _valid_output(_action(name).output_schema, out)
    for event in out.get("data", []):
        _valid_output(EVENT, event)
    return out


def refused(env: Env, ctx: Ctx, name: str, inputs: dict[str, Any], kind: type[ChronaryError], *, schema_ok: bool = True):
    """The action refuses inputs (that its schema allows, unless `schema_ok` is False) with `kind`."""
    if schema_ok:
        _valid_input(name, inputs)
    with pytest.raises(kind) as info:
        asyncio.run(chronary_actions.run(env.runtime, ctx, name, inputs))
    assert type(info.value) is kind
    return info.value


def rest_error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()["error"]


def change_types(env: Env) -> list[str]:
    rows = env.runtime.db.read_sync(lambda tx: change_store.recent(tx.conn, 10_000))
    return [r["type"] for r in reversed(rows) if r["type"]]


def busy(api: Api, agent_id: str) -> list[dict[str, Any]]:
    r = api.get(f"/v1/agents/{agent_id}/availability", params={"start": T9, "end": T12})
    assert r.status_code == 200, r.text
    return r.json()["busy"]


def rest_event(api: Api, calendar_id: str, event_id: str) -> dict[str, Any]:
    r = api.get(f"/v1/calendars/{calendar_id}/events/{event_id}")
    assert r.status_code == 200, r.text
    return r.json()


# --- every action, with its effect read back through REST ------------------------------------


def test_create_event_answers_the_event_rest_stores(env: Env) -> None:
    inputs = {
        "calendar_id": env.cal_a["id"],
        "title": "Design review",
        "start_time": T9,
        "end_time": T10,
        "location": "Room 4.01",
        "reminders": [10],
        "attendees": [{"email": "ada@example.com", "name": "Ada"}],
        "metadata": {"ticket": "OPS-42"},
    }
    out = act(env, env.org, "create_event", inputs)
    assert out["id"].startswith("evt_") and out["calendar_id"] == env.cal_a["id"] and out["agent_id"] == env.a["id"]
    assert (out["status"], out["transparency"], out["source"], out["sequence"]) == ("confirmed", "opaque", "internal", 0)
    assert out["attendees"] == [{"email": "ada@example.com", "name": "Ada", "agent_id": None}]
    assert rest_event(env.api, env.cal_a["id"], out["id"]) == out
    assert busy(env.api, env.a["id"]) == [{"start": T9, "end": T10, "event_id": out["id"]}]
    assert change_types(env)[-1] == "event.created"  # the webhook the REST create records


def test_create_event_all_day_and_recurring_like_rest(env: Env) -> None:
    cal = env.api.calendar(env.a["id"], name="Berlin", timezone="Europe/Berlin")
    out = act(
        env,
        env.agent,
        "create_event",
        {"calendar_id": cal["id"], "title": "Off", "start_time": "2026-01-10", "end_time": "2026-01-11", "all_day": True},
    )
    assert (out["start_date"], out["end_date"], out["start_time"]) == ("2026-01-10", "2026-01-11", "2026-01-09T23:00:00Z")
    assert rest_event(env.api, cal["id"], out["id"]) == out
    series = act(
        env,
        env.agent,
        "create_event",
        {
            "calendar_id": env.cal_a["id"],
            "title": "Standup",
            "start_time": "2026-01-06T08:00:00Z",
            "end_time": "2026-01-06T08:15:00Z",
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
        },
    )
    assert series["recurrence"] == ["RRULE:FREQ=DAILY;COUNT=3"]
    assert rest_event(env.api, env.cal_a["id"], series["id"]) == series


def test_update_event_changes_the_given_fields(env: Env) -> None:
    event = env.api.event(env.cal_a["id"], T9, T10, description="agenda", location="Room 1")
    out = act(
        env,
        env.org,
        "update_event",
        {
            "calendar_id": env.cal_a["id"],
            "event_id": event["id"],
            "title": "Moved",
            "start_time": T10,
            "end_time": T11,
            "description": None,
        },
    )
    assert (out["title"], out["start_time"], out["end_time"], out["description"]) == ("Moved", T10, T11, None)
    assert out["location"] == "Room 1" and out["sequence"] == 1
    assert rest_event(env.api, env.cal_a["id"], event["id"]) == out
    assert busy(env.api, env.a["id"]) == [{"start": T10, "end": T11, "event_id": event["id"]}]
    assert change_types(env)[-1] == "event.updated"


def test_cancel_event_keeps_it_listed_as_cancelled(env: Env) -> None:
    event = env.api.event(env.cal_a["id"], T9, T10)
    ref = {"calendar_id": env.cal_a["id"], "event_id": event["id"]}
    out = act(env, env.agent, "cancel_event", ref)
    assert out["status"] == "cancelled" and out["id"] == event["id"]
    assert rest_event(env.api, env.cal_a["id"], event["id"]) == out
    assert busy(env.api, env.a["id"]) == []
    assert change_types(env)[-1] == "event.cancelled"
    again = refused(env, env.agent, "cancel_event", ref, Conflict)
    rest = rest_error(env.api.post(f"/v1/calendars/{env.cal_a['id']}/events/{event['id']}/cancel"), 409)
    assert (again.message, again.param) == (rest["message"], rest["param"]) == (again.message, "status")


def test_hold_placed_confirmed_and_released(env: Env) -> None:
    hold = act(
        env, env.agent, "create_hold", {"calendar_id": env.cal_a["id"], "title": "Held", "start_time": T9, "end_time": T10}
    )
    assert hold["status"] == "hold" and hold["transparency"] == "opaque"
    assert hold["hold_expires_at"] == "2026-01-05T09:15:00Z"  # the default: 15 minutes from now
    assert rest_event(env.api, env.cal_a["id"], hold["id"]) == hold
    assert busy(env.api, env.a["id"]) == [{"start": T9, "end": T10, "event_id": hold["id"]}]

    confirmed = act(env, env.agent, "confirm_hold", {"calendar_id": env.cal_a["id"], "event_id": hold["id"]})
    assert confirmed["status"] == "confirmed" and confirmed["hold_expires_at"] is None
    assert rest_event(env.api, env.cal_a["id"], hold["id"]) == confirmed

    second = act(
        env,
        env.agent,
        "create_hold",
        {
            "calendar_id": env.cal_a["id"],
            "title": "Held too",
            "start_time": T1030,
            "end_time": T11,
            "hold_expires_at": "2026-01-05T17:00:00Z",
            "priority": 5,
        },
    )
    assert (second["hold_expires_at"], second["priority"]) == ("2026-01-05T17:00:00Z", 5)
    assert [b["event_id"] for b in busy(env.api, env.a["id"])] == [hold["id"], second["id"]]
    out = act(env, env.agent, "release_hold", {"calendar_id": env.cal_a["id"], "event_id": second["id"]})
    assert out == {"event_id": second["id"], "released": True}
    assert env.api.get(f"/v1/calendars/{env.cal_a['id']}/events/{second['id']}").status_code == 404
    assert busy(env.api, env.a["id"]) == [{"start": T9, "end": T10, "event_id": hold["id"]}]
    types = change_types(env)
    assert types.count("event.hold_created") == 2
    assert "event.hold_confirmed" in types and types[-1] == "event.hold_released"


def test_hold_rules_are_the_rest_ones(env: Env) -> None:
    event = env.api.event(env.cal_a["id"], T9, T10)
    inputs = {"calendar_id": env.cal_a["id"], "title": "Held", "start_time": T9, "end_time": T10}
    clash = refused(env, env.agent, "create_hold", inputs, Conflict)
    assert clash.param == "start_time" and event["id"] in clash.message
    placed = act(env, env.agent, "create_hold", {**inputs, "allow_overlap": True})
    assert placed["status"] == "hold"
    # releasing or confirming what is not a hold, confirming a lapsed hold: 409 as over REST
    not_hold = refused(env, env.agent, "release_hold", {"calendar_id": env.cal_a["id"], "event_id": event["id"]}, Conflict)
    assert not_hold.param == "status"
    refused(env, env.agent, "confirm_hold", {"calendar_id": env.cal_a["id"], "event_id": event["id"]}, Conflict)
    env.clock.advance(minutes=16)
    lapsed = refused(env, env.agent, "confirm_hold", {"calendar_id": env.cal_a["id"], "event_id": placed["id"]}, Conflict)
    assert lapsed.param == "hold_expires_at"
    too_late = refused(env, env.agent, "create_hold", {**inputs, "hold_expires_at": "2026-01-05T09:00:00Z"}, ValidationError)
    assert too_late.param == "hold_expires_at"


def test_find_meeting_time_answers_what_rest_answers(env: Env) -> None:
    env.api.event(env.cal_a["id"], T9, T10)
    env.api.post(
        f"/v1/calendars/{env.cal_b['id']}/events",
        json={"title": "B hold", "start_time": T10, "end_time": T1030, "status": "hold"},
    )
    inputs = {"agent_ids": [env.a["id"], env.b["id"]], "start": T9, "end": T12, "duration_minutes": 30, "limit": 3}
    out = act(env, env.agent, "find_meeting_time", inputs)
    assert [s["start"] for s in out["slots"]] == [T1030, "2026-01-06T10:45:00Z", T11]
    assert out == env.agent_api.post("/v1/availability/find-meeting-time", json=inputs).json()
    # the defaults (limit 10, step 15) are REST's
    defaults = {k: v for k, v in inputs.items() if k != "limit"}
    out = act(env, env.org, "find_meeting_time", defaults)
    assert len(out["slots"]) == 5 and out == env.api.post("/v1/availability/find-meeting-time", json=defaults).json()
    # explain: an input here, REST's ?explain=true there; the same answer, with the rejected candidates
    explained = act(env, env.agent, "find_meeting_time", {**inputs, "explain": True})
    rest = env.agent_api.post("/v1/availability/find-meeting-time?explain=true", json=inputs).json()
    assert explained == rest and explained["explanation"]["rejected"]


def test_list_events_of_a_calendar_and_of_an_agent(env: Env) -> None:
    env.api.event(env.cal_a["id"], T9, T10, title="one")
    env.api.event(env.cal_a["id"], T11, T12, title="two", status="tentative")
    env.api.event(
        env.cal_a["id"],
        "2026-01-06T08:00:00Z",
        "2026-01-06T08:15:00Z",
        title="daily",
        recurrence=["RRULE:FREQ=DAILY;COUNT=3"],
    )
    other_cal = env.api.calendar(env.a["id"], name="A private")
    env.api.event(other_cal["id"], T10, T11, title="private")
    env.api.event(env.cal_b["id"], T10, T11, title="B's")

    out = act(env, env.agent, "list_events", {"calendar_id": env.cal_a["id"]})
    assert (out["total"], out["limit"], out["offset"]) == (3, 50, 0)
    assert out == env.api.get(f"/v1/calendars/{env.cal_a['id']}/events").json()

    window = {"start_after": "2026-01-06T00:00:00Z", "start_before": "2026-01-09T00:00:00Z"}
    out = act(env, env.agent, "list_events", {"calendar_id": env.cal_a["id"], **window})
    assert out["total"] == 5 and sum(e["recurring_event_id"] is not None for e in out["data"]) == 3
    assert out == env.api.get(f"/v1/calendars/{env.cal_a['id']}/events", params=window).json()

    query = {"status": "confirmed", "source": "internal", "limit": 2, "offset": 1, **window}
    out = act(env, env.agent, "list_events", {"agent_id": env.a["id"], **query})
    rest = env.api.get(f"/v1/agents/{env.a['id']}/events", params=query).json()
    assert out == rest and (out["total"], len(out["data"])) == (5, 2)
    assert {e["agent_id"] for e in out["data"]} == {env.a["id"]}
    titles = [e["title"] for e in act(env, env.org, "list_events", {"agent_id": env.a["id"], **window})["data"]]
    assert "private" in titles and "B's" not in titles and "two" in titles
    assert act(env, env.org, "list_events", {"calendar_id": env.cal_a["id"], "status": "tentative"})["data"][0]["title"] == (
        "two"
    )


# --- an agent key stays with its agent -------------------------------------------------------


def test_an_agent_key_cannot_reach_another_agents_calendar(env: Env) -> None:
    theirs = env.api.event(env.cal_b["id"], T9, T10)
    rest_create = rest_error(
        env.agent_api.post(
            f"/v1/calendars/{env.cal_b['id']}/events", json={"title": "x", "start_time": T9, "end_time": T10}
        ),
        404,
    )
    create = {"calendar_id": env.cal_b["id"], "title": "x", "start_time": T9, "end_time": T10}
    for name in ("create_event", "create_hold"):
        err = refused(env, env.agent, name, create, NotFound)
        assert (err.message, err.param) == (rest_create["message"], "calendar_id")
    ref = {"calendar_id": env.cal_b["id"], "event_id": theirs["id"]}
    for name, inputs in (
        ("update_event", {**ref, "title": "mine now"}),
        ("cancel_event", ref),
        ("confirm_hold", ref),
        ("release_hold", ref),
        ("list_events", {"calendar_id": env.cal_b["id"]}),
    ):
        err = refused(env, env.agent, name, inputs, NotFound)
        assert (err.message, err.param) == (rest_create["message"], "calendar_id"), name
    # their event through my own calendar: the event is not found, as over REST
    mine_ref = {"calendar_id": env.cal_a["id"], "event_id": theirs["id"]}
    rest_cancel = rest_error(env.agent_api.post(f"/v1/calendars/{env.cal_a['id']}/events/{theirs['id']}/cancel"), 404)
    err = refused(env, env.agent, "cancel_event", mine_ref, NotFound)
    assert (err.message, err.param) == (rest_cancel["message"], "event_id")
    # another agent's events, an org-level calendar
    rest_list = rest_error(env.agent_api.get(f"/v1/agents/{env.b['id']}/events"), 404)
    err = refused(env, env.agent, "list_events", {"agent_id": env.b["id"]}, NotFound)
    assert (err.message, err.param) == (rest_list["message"], "agent_id")
    err = refused(env, env.agent, "create_event", {**create, "calendar_id": env.cal_org["id"]}, NotFound)
    assert err.param == "calendar_id"
    # meeting times without its own agent: 403 as over REST
    search = {"agent_ids": [env.b["id"], env.api.agent("C")["id"]], "start": T9, "end": T12, "duration_minutes": 30}
    rest_search = rest_error(env.agent_api.post("/v1/availability/find-meeting-time", json=search), 403)
    err = refused(env, env.agent, "find_meeting_time", search, Forbidden)
    assert err.message == rest_search["message"]
    # nothing of B's changed; the org key reaches both
    assert rest_event(env.api, env.cal_b["id"], theirs["id"]) == theirs
    assert act(env, env.org, "cancel_event", ref)["status"] == "cancelled"
    assert act(env, env.org, "create_event", {**create, "calendar_id": env.cal_org["id"]})["agent_id"] is None


# --- refusals: inputs the schema allows that the services refuse -----------------------------


def test_inputs_the_services_refuse_name_the_field(env: Env) -> None:
    cal = env.cal_a["id"]
    base = {"calendar_id": cal, "title": "x", "start_time": T10, "end_time": T9}
    rest = rest_error(
        env.api.post(f"/v1/calendars/{cal}/events", json={k: v for k, v in base.items() if k != "calendar_id"}), 400
    )
    err = refused(env, env.org, "create_event", base, ValidationError)
    assert (err.message, err.param) == (rest["message"], rest["param"]) == (err.message, "end_time")
    ok = {**base, "end_time": T11}
    search = {"agent_ids": [env.a["id"], env.b["id"]], "start": T9, "end": T12, "duration_minutes": 30}
    cases: list[tuple[str, dict[str, Any], type[ChronaryError], str | None]] = [
        ("create_event", {**ok, "calendar_id": "cal_nope"}, NotFound, "calendar_id"),
        ("create_hold", {**ok, "calendar_id": "cal_nope"}, NotFound, "calendar_id"),
        ("create_hold", base, ValidationError, "end_time"),
        ("create_event", {**ok, "hold_expires_at": "2026-01-05T10:00:00Z"}, ValidationError, "hold_expires_at"),
        ("create_event", {**ok, "status": "hold", "transparency": "transparent"}, ValidationError, "transparency"),
        ("create_event", {**ok, "recurrence": ["FREQ=DAILY"]}, ValidationError, "recurrence[0]"),
        ("create_event", {**ok, "attendees": [{"email": "ada@localhost"}]}, ValidationError, "attendees[0].email"),
        ("create_event", {**ok, "start_time": "tomorrow"}, ValidationError, "start_time"),
        ("update_event", {"calendar_id": cal, "event_id": "evt_nope", "title": "y"}, NotFound, "event_id"),
        ("cancel_event", {"calendar_id": "cal_nope", "event_id": "evt_nope"}, NotFound, "calendar_id"),
        ("confirm_hold", {"calendar_id": cal, "event_id": "evt_nope"}, NotFound, "event_id"),
        ("release_hold", {"calendar_id": cal, "event_id": "evt_nope"}, NotFound, "event_id"),
        ("find_meeting_time", {**search, "start": T12, "end": T9}, ValidationError, "end"),
        ("find_meeting_time", {**search, "agent_ids": [env.a["id"], "agt_nope"]}, ValidationError, "agent_ids[1]"),
        ("find_meeting_time", {**search, "agent_ids": [env.a["id"], env.a["id"]]}, ValidationError, "agent_ids[1]"),
        ("list_events", {"calendar_id": cal, "start_after": T12, "start_before": T9}, ValidationError, "start_before"),
        ("list_events", {"calendar_id": "cal_nope"}, NotFound, "calendar_id"),
        ("list_events", {"agent_id": "agt_nope"}, NotFound, "agent_id"),
    ]
    for name, inputs, kind, param in cases:
        err = refused(env, env.org, name, inputs, kind)
        assert err.param == param, (name, inputs, err.message)
    event = env.api.event(cal, T9, T10)
    bad_move = {"calendar_id": cal, "event_id": event["id"], "end_time": "2026-01-06T08:00:00Z"}
    assert refused(env, env.org, "update_event", bad_move, ValidationError).param == "end_time"
    # allow_overlap alone passes the schema's minProperties but changes nothing: REST's 400
    nothing = {"calendar_id": cal, "event_id": event["id"], "allow_overlap": True}
    err = refused(env, env.org, "update_event", nothing, ValidationError)
    rest = rest_error(env.api.patch(f"/v1/calendars/{cal}/events/{event['id']}", json={"allow_overlap": True}), 400)
    assert (err.message, err.param) == (rest["message"], rest["param"]) == (err.message, None)
    assert rest_event(env.api, cal, event["id"]) == event


def test_inputs_outside_the_schema_are_validation_errors_not_crashes(env: Env) -> None:
    """Should a caller skip the schema check, msgspec's refusal still names the field (never a 500)."""
    cal = env.cal_a["id"]
    base = {"calendar_id": cal, "title": "x", "start_time": T9, "end_time": T10}
    event = env.api.event(cal, T9, T10)
    cases: list[tuple[str, dict[str, Any], str | None]] = [
        ("create_event", {**base, "title": 5}, "title"),
        ("create_event", {**base, "title": ""}, "title"),
        ("create_event", {k: v for k, v in base.items() if k != "title"}, "title"),
        ("create_event", {**base, "colour": "red"}, "colour"),
        ("create_event", {**base, "attendees": [{"name": "Ada"}]}, "attendees[0].email"),
        ("create_event", {**base, "attendees": [{"email": "a@example.com", "role": "chair"}]}, "attendees[0].role"),
        ("create_event", {**base, "reminders": [1, 2, 3, 4, 5, 6]}, "reminders"),
        ("create_event", {k: v for k, v in base.items() if k != "calendar_id"}, "calendar_id"),
        ("create_hold", {**base, "status": "confirmed"}, "status"),
        ("create_hold", {**base, "transparency": "transparent"}, "transparency"),
        ("update_event", {"calendar_id": cal, "event_id": event["id"], "title": None}, "title"),
        ("update_event", {"calendar_id": cal, "event_id": 7, "title": "y"}, "event_id"),
        ("cancel_event", {"calendar_id": cal, "event_id": event["id"], "reason": "x"}, "reason"),
        ("find_meeting_time", {"agent_ids": [env.a["id"]], "start": T9, "end": T12, "duration_minutes": 30}, "agent_ids"),
        ("find_meeting_time", {"agent_ids": [env.a["id"], env.b["id"]], "start": T9, "end": T12}, "duration_minutes"),
        ("list_events", {"calendar_id": cal, "limit": 0}, "limit"),
        ("list_events", {"calendar_id": cal, "status": "gone"}, "status"),
        ("list_events", {}, "calendar_id"),
        ("list_events", {"calendar_id": cal, "agent_id": env.a["id"]}, "agent_id"),
    ]
    for name, inputs, param in cases:
        err = refused(env, env.org, name, inputs, ValidationError, schema_ok=False)
        assert err.param == param, (name, inputs, err.message)
        assert err.message
    assert rest_event(env.api, cal, event["id"]) == event
    assert env.api.get(f"/v1/calendars/{cal}/events").json()["total"] == 1


def test_an_unknown_action_is_not_found(env: Env) -> None:
    for name in ("delete_event", "chronary.create_event", ""):
        with pytest.raises(NotFound) as info:
            asyncio.run(chronary_actions.run(env.runtime, env.org, name, {}))
        assert (info.value.message, info.value.param) == ("Action not found", "actionName")


def test_every_catalogue_action_has_a_runner() -> None:
    provider = catalogue.get("chronary")
    assert provider is not None
    assert sorted(a.name for a in provider.actions) == sorted(chronary_actions.ACTIONS)


# --- the inline event of smtp.send_invitation ------------------------------------------------


def _invitation(env: Env, ctx: Ctx, calendar_id: str, event_id: str) -> dict[str, Any]:
    return env.runtime.db.read_sync(lambda tx: chronary_actions.invitation_event(tx, ctx.principal, calendar_id, event_id))


def test_invitation_event(env: Env) -> None:
    event = env.api.event(env.cal_a["id"], T9, T10, title="Review", location="Room 4.01")
    got = _invitation(env, env.agent, env.cal_a["id"], event["id"])
    assert got == {
        "uid": event["ical_uid"],
        "sequence": 0,
        "title": "Review",
        "start_time": T9,
        "end_time": T10,
        "all_day": False,
        "timezone": "UTC",
        "location": "Room 4.01",
    }  # no description: None values are left out
    _valid_output(_inline_event, got)
    act(env, env.org, "update_event", {"calendar_id": env.cal_a["id"], "event_id": event["id"], "description": "Agenda"})
    got = _invitation(env, env.org, env.cal_a["id"], event["id"])
    assert (got["sequence"], got["description"]) == (1, "Agenda")

    berlin = env.api.calendar(env.a["id"], name="Berlin", timezone="Europe/Berlin")
    day = env.api.event(berlin["id"], "2026-01-10", "2026-01-12", title="Trip", all_day=True)
    got = _invitation(env, env.org, berlin["id"], day["id"])
    assert (got["start_time"], got["end_time"], got["all_day"], got["timezone"]) == (
        "2026-01-10",
        "2026-01-12",
        True,
        "Europe/Berlin",
    )
    _valid_output(_inline_event, got)

    series = env.api.event(env.cal_a["id"], T9, T10, title="Weekly", recurrence=["RRULE:FREQ=WEEKLY;COUNT=3"])
    occurrence = f"{series['id']}_20260113T090000Z"
    got = _invitation(env, env.org, env.cal_a["id"], occurrence)
    assert (got["title"], got["start_time"]) == ("Weekly", "2026-01-13T09:00:00Z")


def test_invitation_event_only_for_what_the_key_may_see(env: Env) -> None:
    theirs = env.api.event(env.cal_b["id"], T9, T10)
    mine = env.api.event(env.cal_a["id"], T9, T10)
    for ctx, calendar_id, event_id in (
        (env.agent, env.cal_b["id"], theirs["id"]),  # another agent's
        (env.agent, env.cal_a["id"], theirs["id"]),  # not in that calendar
        (env.org, env.cal_a["id"], theirs["id"]),
        (env.org, env.cal_a["id"], "evt_nope"),
        (env.org, "cal_nope", mine["id"]),
    ):
        with pytest.raises(NotFound):
            _invitation(env, ctx, calendar_id, event_id)
    assert _invitation(env, env.org, env.cal_b["id"], theirs["id"])["uid"] == theirs["ical_uid"]
