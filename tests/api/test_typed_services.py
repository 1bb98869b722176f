"""The typed service boundary: agents, calendars, keys, rules, availability, context and
proposals answer with the msgspec structs of chronary.schemas (lists as `Page[Struct]`), called
directly inside real transactions on a real database — what the REST API, MCP tools and
automation actions all share. The helpers other modules use (`load`, `calendars.present`) stay
store-row dicts, and webhook payloads stay the JSON they always were."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from litestar import Litestar, get
from litestar.testing import TestClient

from chronary.api._common import ClockDep, RuntimeDep, app_dependencies, page_body
from chronary.clock import ManualClock
from chronary.config import Settings
from chronary.crypto import SecretBox
from chronary.schemas.agents import Agent, AgentCreate, AgentList, AgentUpdate
from chronary.schemas.calendars import Calendar, CalendarCreate, CalendarUpdate
from chronary.schemas.events import Event
from chronary.schemas.keys import ApiKey, ApiKeyWithSecret
from chronary.schemas.proposals import (
    Participant,
    Proposal,
    ProposalCreate,
    ProposalHold,
    ProposalRespond,
    ProposalSlot,
    SlotInput,
)
from chronary.schemas.scheduling import (
    Availability,
    BusyInterval,
    Context,
    ContextAgent,
    DateOverride,
    FindMeetingTime,
    Interval,
    MeetingSlots,
    Range,
    Rules,
    RulesInput,
    TimeRange,
    WorkingHours,
)
from chronary.services import agent_context, agents, availability, calendars, keys, outbox, proposals, rules
from chronary.services.context import Ctx, Page, Principal
from chronary.store import outbox as outbox_store
from chronary.store.db import Database

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
STAMP = "2026-01-05T09:00:00.000Z"


@pytest.fixture
def tapi(make_api: Any) -> Any:
    api = make_api(clock=ManualClock(T0))
    api.receive_webhooks()  # changes are logged with the payloads an endpoint gets
    return api


def org_ctx(api: Any) -> Ctx:
    rt = api.runtime
    return Ctx(Principal(org_id=rt.org_id, key_id="key_test"), rt.settings.base_url)


def write(api: Any, fn: Any) -> Any:
    return api.runtime.db.write_sync(fn)


def read(api: Any, fn: Any) -> Any:
    return api.runtime.db.read_sync(fn)


def payloads(api: Any, type_: str) -> list[dict[str, Any]]:
    rows = read(api, lambda tx: outbox_store.recent(tx.conn, 10_000))
    return [json.loads(r["payload"]) for r in reversed(rows) if r["type"] == type_]


def test_agents_answer_agent_structs(tapi: Any) -> None:
    ctx = org_ctx(tapi)
    p = ctx.principal
    created = write(tapi, lambda tx: agents.create(tx, p, AgentCreate(name="Ada", timezone="Europe/Berlin")))
    assert type(created) is Agent
    assert created == Agent(
        id=created.id,
        name="Ada",
        type="ai",
        status="active",
        email=None,
        timezone="Europe/Berlin",
        metadata={},
        created_at=STAMP,
        updated_at=STAMP,
    )
    assert created.id.startswith("agt_")
    assert read(tapi, lambda tx: agents.get(tx, p, created.id)) == created

    page = read(tapi, lambda tx: agents.list_(tx, p, None, None, 10, 0))
    assert isinstance(page, Page) and (page.total, page.limit, page.offset) == (1, 10, 0)
    assert page.items == [created] and all(type(a) is Agent for a in page.items)
    body = page_body(AgentList, page)
    assert type(body) is AgentList and body.data == [created] and body.total == 1

    updated = write(tapi, lambda tx: agents.update(tx, p, created.id, AgentUpdate(name="Ada L.", email="ada@example.com")))
    assert type(updated) is Agent
    assert (updated.name, updated.email, updated.timezone) == ("Ada L.", "ada@example.com", "Europe/Berlin")
    # the webhook payload is the struct's JSON, with the old values as `previous`
    (payload,) = payloads(tapi, "agent.updated")
    assert payload["data"]["object"] == msgspec.to_builtins(updated)
    assert list(payload["data"]["object"]) == list(Agent.__struct_fields__)
    assert payload["data"]["previous"] == {"name": "Ada", "email": None}

    # the row helper other services use stays a store-row dict
    row = read(tapi, lambda tx: agents.load(tx, p, created.id))
    assert isinstance(row, dict) and row["org_id"] == p.org_id


def test_calendars_answer_calendar_structs(tapi: Any) -> None:
    ctx = org_ctx(tapi)
    agent = write(tapi, lambda tx: agents.create(tx, ctx.principal, AgentCreate(name="Ada")))
    cal = write(
        tapi,
        lambda tx: calendars.create(tx, ctx, agent.id, CalendarCreate(name="Work", timezone="UTC", default_reminders=[10])),
    )
    assert type(cal) is Calendar
    assert (cal.org_id, cal.agent_id, cal.name, cal.timezone, cal.agent_status) == (
        ctx.principal.org_id,
        agent.id,
        "Work",
        "UTC",
        "idle",
    )
    assert cal.default_reminders == [10] and cal.metadata == {}
    assert cal.ical_url.startswith(f"{ctx.base_url}/ical/") and cal.ical_url.endswith(".ics")
    assert (cal.created_at, cal.updated_at) == (STAMP, STAMP)
    assert read(tapi, lambda tx: calendars.get(tx, ctx, cal.id)) == cal

    page = read(tapi, lambda tx: calendars.list_(tx, ctx, agent.id, False, 50, 0))
    assert page.items == [cal] and type(page.items[0]) is Calendar

    moved = write(tapi, lambda tx: calendars.update(tx, ctx, cal.id, CalendarUpdate(timezone="Europe/Berlin")))
    assert type(moved) is Calendar and moved.timezone == "Europe/Berlin" and moved.ical_url == cal.ical_url

    # `load` and `present` keep their dict forms for services/feeds.py and others; the payload
    # is the dict form, keys in the order webhook consumers have always received
    row = read(tapi, lambda tx: calendars.load(tx, ctx.principal, cal.id))
    shown = calendars.present(row, ctx.base_url)
    assert isinstance(shown, dict) and shown == msgspec.to_builtins(moved)
    assert calendars.to_struct(row, ctx.base_url) == moved
    (created_payload,) = payloads(tapi, "calendar.created")
    assert list(created_payload["data"]["object"])[-1] == "ical_url"
    (updated_payload,) = payloads(tapi, "calendar.updated")
    assert updated_payload["data"]["previous"] == {"timezone": "UTC"}


def test_keys_answer_key_structs(tapi: Any) -> None:
    ctx = org_ctx(tapi)
    agent = write(tapi, lambda tx: agents.create(tx, ctx.principal, AgentCreate(name="Ada")))
    key = write(tapi, lambda tx: keys.create(tx, ctx.principal, "bot", agent.id))
    assert type(key) is ApiKeyWithSecret
    assert (key.name, key.agent_id, key.prefix, key.created_at) == ("bot", agent.id, "chr_ak_", STAMP)
    assert key.secret.startswith("chr_ak_") and key.last4 == key.secret[-4:]
    # the secret authenticates as that agent
    principal = read(tapi, lambda tx: keys.authenticate(tx, key.secret))
    assert (principal.agent_id, principal.key_id) == (agent.id, key.id)

    page = read(tapi, lambda tx: keys.list_(tx, ctx.principal, agent.id, 50, 0))
    assert [type(k) for k in page.items] == [ApiKey]
    assert page.items[0] == ApiKey(
        id=key.id, name="bot", agent_id=agent.id, prefix="chr_ak_", last4=key.last4, created_at=STAMP, permissions=[]
    )
    assert not hasattr(page.items[0], "secret")


def test_rules_and_availability_answer_scheduling_structs(tapi: Any) -> None:
    ctx = org_ctx(tapi)
    p = ctx.principal
    a = write(tapi, lambda tx: agents.create(tx, p, AgentCreate(name="A")))
    b = write(tapi, lambda tx: agents.create(tx, p, AgentCreate(name="B")))
    cal = write(tapi, lambda tx: calendars.create(tx, ctx, a.id, CalendarCreate(name="Work", timezone="UTC")))
    tapi.event(cal.id, "2026-01-05T10:00:00Z", "2026-01-05T11:00:00Z")
    body = RulesInput(
        working_hours=WorkingHours(mon=[TimeRange(start="09:00", end="12:00")], tue=[TimeRange(start="09:00", end="12:00")]),
        overrides=[DateOverride(date="2026-01-06", hours=[])],
    )
    stored = write(tapi, lambda tx: rules.put(tx, p, a.id, body))
    assert type(stored) is Rules and stored.id.startswith("rul_")
    assert (stored.agent_id, stored.timezone, stored.timezone_from_agent) == (a.id, "UTC", True)
    assert stored.working_hours["mon"] == [Range(start="09:00", end="12:00")] and stored.working_hours["sun"] == []
    assert stored.overrides == [{"date": "2026-01-06", "hours": []}]
    assert read(tapi, lambda tx: rules.get(tx, p, a.id)) == stored

    free_busy = read(
        tapi, lambda tx: availability.availability(tx, p, a.id, "2026-01-05T00:00:00Z", "2026-01-07T00:00:00Z", 30)
    )
    assert type(free_busy) is Availability
    assert (free_busy.agent_id, free_busy.timezone, free_busy.start, free_busy.end) == (
        a.id,
        "UTC",
        "2026-01-05T00:00:00Z",
        "2026-01-07T00:00:00Z",
    )
    assert [type(x) for x in free_busy.busy] == [BusyInterval]
    assert (free_busy.busy[0].start, free_busy.busy[0].end) == ("2026-01-05T10:00:00Z", "2026-01-05T11:00:00Z")
    assert free_busy.busy[0].event_id is not None
    # Monday 09:00–12:00 from now (09:00) minus the 10–11 event; Tuesday is overridden off
    assert free_busy.free == [
        Interval(start="2026-01-05T09:00:00Z", end="2026-01-05T10:00:00Z"),
        Interval(start="2026-01-05T11:00:00Z", end="2026-01-05T12:00:00Z"),
    ]

    query = FindMeetingTime(
        agent_ids=[a.id, b.id], start="2026-01-05T00:00:00Z", end="2026-01-07T00:00:00Z", duration_minutes=30, limit=2
    )
    slots = read(tapi, lambda tx: availability.find_meeting_time(tx, p, query))
    assert type(slots) is MeetingSlots
    assert slots.slots == [
        Interval(start="2026-01-05T09:00:00Z", end="2026-01-05T09:30:00Z"),
        Interval(start="2026-01-05T09:15:00Z", end="2026-01-05T09:45:00Z"),
    ]


def test_context_answers_context_struct_with_events(tapi: Any) -> None:
    ctx = org_ctx(tapi)
    a = write(tapi, lambda tx: agents.create(tx, ctx.principal, AgentCreate(name="A")))
    cal = write(tapi, lambda tx: calendars.create(tx, ctx, a.id, CalendarCreate(name="Work", timezone="UTC")))
    now_ev = tapi.event(cal.id, "2026-01-05T08:30:00Z", "2026-01-05T09:30:00Z", title="now")
    next_ev = tapi.event(cal.id, "2026-01-05T12:00:00Z", "2026-01-05T13:00:00Z", title="next")
    got = read(tapi, lambda tx: agent_context.context(tx, ctx.principal, a.id, 5, 5))
    assert type(got) is Context
    assert got.now == "2026-01-05T09:00:00Z"
    assert got.agent == ContextAgent(id=a.id, name="A", status="active", timezone="UTC")
    assert type(got.current_event) is Event and got.current_event.id == now_ev["id"]
    assert [type(e) for e in got.upcoming] == [Event] and got.upcoming[0].id == next_ev["id"]
    assert got.recent == []
    assert (got.agent_status, got.agent_status_calendar_id) == ("idle", cal.id)
    # the events inside are exactly what the events API answers
    assert msgspec.to_builtins(got.upcoming[0]) == tapi.get(f"/v1/calendars/{cal.id}/events/{next_ev['id']}").json()


def test_proposals_answer_proposal_structs(tapi: Any) -> None:
    ctx = org_ctx(tapi)
    p = ctx.principal
    a = write(tapi, lambda tx: agents.create(tx, p, AgentCreate(name="A")))
    b = write(tapi, lambda tx: agents.create(tx, p, AgentCreate(name="B")))
    cal_a = write(tapi, lambda tx: calendars.create(tx, ctx, a.id, CalendarCreate(name="A", timezone="UTC")))
    cal_b = write(tapi, lambda tx: calendars.create(tx, ctx, b.id, CalendarCreate(name="B", timezone="UTC")))
    data = ProposalCreate(
        title="Sync",
        organizer_agent_id=a.id,
        participant_agent_ids=[a.id, b.id],
        candidate_slots=[
            SlotInput(start="2026-01-06T10:00:00Z", end="2026-01-06T11:00:00Z"),
            SlotInput(start="2026-01-06T14:00:00Z", end="2026-01-06T15:00:00Z"),
        ],
        duration_minutes=30,
    )
    made = write(tapi, lambda tx: proposals.create(tx, ctx, data))
    assert type(made) is Proposal and made.id.startswith("prp_")
    assert (made.title, made.organizer_agent_id, made.status, made.duration_minutes) == ("Sync", a.id, "open", 30)
    assert made.candidate_slots == [
        ProposalSlot(index=0, start="2026-01-06T10:00:00Z", end="2026-01-06T11:00:00Z", proposed_by=a.id),
        ProposalSlot(index=1, start="2026-01-06T14:00:00Z", end="2026-01-06T15:00:00Z", proposed_by=a.id),
    ]
    assert [type(x) for x in made.participants] == [Participant, Participant]
    assert made.participants[0] == Participant(
        agent_id=a.id,
        calendar_id=cal_a.id,
        response="accept",
        accepted_slots=[0, 1],
        declined_slots=[],
        responded_at=STAMP,
        event_id=None,
    )
    assert (made.participants[1].calendar_id, made.participants[1].response) == (cal_b.id, "pending")
    assert made.participant_agent_ids == [a.id, b.id] and made.hold_slots is True
    assert len(made.holds) == 4 and all(type(h) is ProposalHold for h in made.holds)
    assert made.expires_at is None and made.resolved_slot is None and made.resolved_at is None
    (created_payload,) = payloads(tapi, "proposal.created")
    assert created_payload["data"]["object"] == msgspec.to_builtins(made)

    assert read(tapi, lambda tx: proposals.get(tx, p, made.id)) == made
    page = read(tapi, lambda tx: proposals.list_(tx, p, "open", None, 50, 0))
    assert page.items == [made] and type(page.items[0]) is Proposal

    answer = ProposalRespond(agent_id=b.id, response="accept", slot_index=1)
    resolved = write(tapi, lambda tx: proposals.respond(tx, ctx, made.id, answer))
    assert type(resolved) is Proposal and resolved.status == "resolved"
    assert resolved.resolved_slot_index == 1 and type(resolved.resolved_slot) is ProposalSlot
    assert resolved.resolved_slot.start == "2026-01-06T14:00:00Z" and resolved.holds == []
    assert all(part.event_id is not None for part in resolved.participants)


def test_outbox_takes_a_struct_or_a_dict_and_writes_the_same_payload(tapi: Any) -> None:
    ctx = org_ctx(tapi)
    agent = write(tapi, lambda tx: agents.create(tx, ctx.principal, AgentCreate(name="Ada", metadata={"k": [1, 2]})))
    as_dict = msgspec.to_builtins(agent)

    def emit_both(tx: Any) -> None:
        outbox.emit(tx, "test.struct", agent, agent_id=agent.id)
        outbox.emit(tx, "test.dict", as_dict, agent_id=agent.id)

    write(tapi, emit_both)
    rows = read(tapi, lambda tx: outbox_store.recent(tx.conn, 10))
    by_type = {r["type"]: r for r in rows}
    struct_row, dict_row = by_type["test.struct"], by_type["test.dict"]
    assert struct_row["resource_id"] == dict_row["resource_id"] == agent.id
    strip = lambda r: {**json.loads(r["payload"]), "id": None, "type": None}  # noqa: E731
    assert strip(struct_row) == strip(dict_row)
    assert json.loads(struct_row["payload"])["data"]["object"] == as_dict
    assert outbox.changed_fields(agent, msgspec.structs.replace(agent, name="B")) == {"name": "Ada"}


def test_handlers_get_runtime_settings_secrets_injected(tapi: Any) -> None:
    """What the app injects by name (api/_common.app_dependencies), for handlers that would
    otherwise read request.app.state. (Litestar resolves the annotations in the module's
    globals: import the types at module level, not under TYPE_CHECKING.)"""
    rt = tapi.runtime
    seen: dict[str, Any] = {}

    @get("/probe", sync_to_thread=False)
    def probe(runtime: RuntimeDep, db: Database, settings: Settings, secrets: SecretBox, clock: ClockDep) -> dict[str, bool]:
        seen.update(runtime=runtime, db=db, settings=settings, secrets=secrets, clock=clock)
        return {"ok": True}

    app = Litestar([probe], dependencies=app_dependencies(rt, rt.settings))
    with TestClient(app) as client:
        assert client.get("/probe").json() == {"ok": True}
    expected = {"runtime": rt, "db": rt.db, "settings": rt.settings, "secrets": rt.secrets, "clock": rt.clock}
    assert seen.keys() == expected.keys() and all(seen[k] is v for k, v in expected.items())  # the objects themselves
    # and the real app wires the same providers
    assert {"runtime", "db", "settings", "secrets", "clock"} <= set(tapi.app.dependencies)
