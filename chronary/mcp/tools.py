"""The MCP tools: a small set shaped for agents, each running the service the REST endpoint runs.

Every tool is a `ToolSpec`: a name, a description that says when to use it, a JSON Schema for
its inputs (with examples), a JSON Schema for its structured output (built from the REST answer
structs with msgspec, so it cannot drift from what the services return), and the MCP hints
(readOnlyHint, destructiveHint, idempotentHint). The handler gets a `Call` (runtime, the
caller's `Ctx`) and the arguments, already checked against the input schema.

Writes go through the same service functions in the same kind of transaction as REST (same
validation, visibility rules for agent keys, hold and conflict checks, change log and webhooks).
Writes that create something take an optional `request_id`: the first call's result is stored
with the write, in the same transaction (chronary/store/mcp.py, keyed by the API key, the tool
and the id), and a retried call with the same id answers that stored result without acting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import jsonschema
import msgspec

from chronary.errors import ChronaryError, Forbidden, NotFound, ValidationError
from chronary.schemas.calendars import Calendar
from chronary.schemas.connect import ActionResult
from chronary.schemas.connections import Connection
from chronary.schemas.events import Event, EventCreate, EventUpdate
from chronary.schemas.proposals import Proposal, ProposalCreate, ProposalRespond
from chronary.schemas.scheduling import Availability, Context, FindMeetingTime, Interval
from chronary.services import agent_context, availability, calendars, connections, proposals
from chronary.services import event_lists as lists
from chronary.services import events as event_svc
from chronary.services.connect import calls as connect_calls
from chronary.services.connect import catalogue as org_catalogue
from chronary.services.context import Ctx
from chronary.store import mcp as mcp_store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms

if TYPE_CHECKING:
    from chronary.runtime import Runtime

S = TypeVar("S", bound=msgspec.Struct)
Schema = dict[str, Any]


@dataclass(frozen=True)
class Call:
    """One tool call: the server's runtime and who is calling (the API key's principal)."""

    runtime: Runtime
    ctx: Ctx


Handler = Callable[[Call, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    input_schema: Schema
    output_schema: Schema
    handler: Handler
    read_only: bool
    destructive: bool = False
    idempotent: bool = False


# --- schema helpers ----------------------------------------------------------------------------


def _defs(shape: type[msgspec.Struct]) -> tuple[str, Schema]:
    schema = msgspec.json.schema(shape)
    return schema["$ref"].split("/")[-1], schema["$defs"]


def output_of(shape: type[msgspec.Struct]) -> Schema:
    """The REST struct's JSON Schema with the struct itself at the root (MCP wants an object)."""
    name, defs = _defs(shape)
    return {**defs[name], "$defs": defs}


def _list_of(shape: type[msgspec.Struct]) -> Schema:
    name, defs = _defs(shape)
    return {
        "type": "object",
        "properties": {"data": {"type": "array", "items": {"$ref": f"#/$defs/{name}"}}, "total": {"type": "integer"}},
        "required": ["data", "total"],
        "$defs": defs,
    }


def _obj(properties: dict[str, Schema], required: list[str], examples: list[dict[str, Any]]) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        "examples": examples,
    }


def _id(prefix: str, what: str) -> Schema:
    return {"type": "string", "minLength": 1, "maxLength": 100, "description": what, "examples": [f"{prefix}_01J9Z3Q4"]}


def _time(what: str, example: str) -> Schema:
    return {
        "type": "string",
        "format": "date-time",
        "description": f"{what} (ISO 8601 with offset or Z)",
        "examples": [example],
    }


REQUEST_ID: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": 200,
    "description": (
        "Optional idempotency key: retrying this call with the same request_id answers the first call's "
        "result and does not act again. Use a fresh value for each distinct action."
    ),
    "examples": ["3f1c9a52-book-standup"],
}
_LIMIT: Schema = {"type": "integer", "minimum": 1, "maximum": 200, "default": 50, "description": "At most this many"}
_TITLE: Schema = {"type": "string", "minLength": 1, "maxLength": 500, "description": "Title", "examples": ["Design review"]}
_SLOT: Schema = {
    "type": "object",
    "properties": {"start": _time("Slot start", "2030-01-07T10:00:00Z"), "end": _time("Slot end", "2030-01-07T10:30:00Z")},
    "required": ["start", "end"],
    "additionalProperties": False,
}
_EVENT_FIELDS: dict[str, Schema] = {
    "title": _TITLE,
    "start_time": {
        "type": "string",
        "description": "Start: ISO 8601 with offset or Z; for an all-day event a date YYYY-MM-DD",
        "examples": ["2030-01-07T10:00:00Z"],
    },
    "end_time": {
        "type": "string",
        "description": "End (exclusive): ISO 8601 with offset or Z; for an all-day event a date YYYY-MM-DD",
        "examples": ["2030-01-07T10:30:00Z"],
    },
    "description": {"type": ["string", "null"], "description": "Free text (null clears it on update)"},
    "location": {"type": ["string", "null"], "maxLength": 500, "description": "Where"},
    "all_day": {"type": "boolean", "description": "An all-day event: start_time/end_time are dates"},
    "status": {"enum": ["confirmed", "tentative", "cancelled"], "description": "Event status (default confirmed)"},
    "recurrence": {
        "type": ["array", "null"],
        "items": {"type": "string"},
        "description": "RRULE/EXDATE lines for a recurring series",
        "examples": [["RRULE:FREQ=WEEKLY;BYDAY=MO"]],
    },
    "attendees": {
        "type": ["array", "null"],
        "items": {"type": "object"},
        "description": "Attendees: objects with email, optional name",
        "examples": [[{"email": "ada@example.com", "name": "Ada"}]],
    },
    "metadata": {"type": ["object", "null"], "description": "Your own key/value data"},
    "transparency": {"enum": ["opaque", "transparent"], "description": "transparent: does not block availability"},
    "allow_overlap": {"type": "boolean", "description": "Book even if it overlaps a busy event on this calendar"},
}


# --- conversion and errors ---------------------------------------------------------------------


def check_arguments(schema: Schema, arguments: dict[str, Any]) -> None:
    """Arguments against the tool's input schema; the ValidationError's param names the field."""
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    if error is None:
        return
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = next((r for r in error.validator_value if r not in error.instance), None)
        if missing is not None:
            name = f"{path}.{missing}" if path else str(missing)
            raise ValidationError(f"{name} is required", name)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = next((k for k in error.instance if k not in allowed), None)
        if extra is not None:
            name = f"{path}.{extra}" if path else extra
            raise ValidationError(f"Unknown argument {name!r}", name)
    raise ValidationError(f"Invalid {path or 'arguments'}: {error.message}", path or None)


def _convert(value: dict[str, Any], shape: type[S]) -> S:
    try:
        return msgspec.convert(value, shape)
    except msgspec.ValidationError as exc:
        message = str(exc)
        param = message.rsplit("`$.", 1)[1].rstrip("`") if "`$." in message else None
        raise ValidationError(f"Invalid input: {message}", param) from None


def as_json(value: msgspec.Struct) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(value)
    return out


def _pick(args: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {k: args[k] for k in names if k in args}


def _own_agent(call: Call, args: dict[str, Any], field: str = "agent_id") -> str:
    """The agent the call is about: the argument, else the agent key's own agent."""
    agent_id = args.get(field) or call.ctx.principal.agent_id
    if agent_id is None:
        raise ValidationError(f"{field} is required with an org key", field)
    return str(agent_id)


async def _write_once(call: Call, tool: str, args: dict[str, Any], work: Callable[[Tx], dict[str, Any]]) -> dict[str, Any]:
    """Run `work` in one write transaction; with a request_id, at most once per key and tool."""
    request_id = args.get("request_id")
    key_id = call.ctx.principal.key_id

    def run(tx: Tx) -> dict[str, Any]:
        if request_id is not None:
            stored = mcp_store.get(tx.conn, key_id, tool, request_id)
            if stored is not None:
                return stored
        result = work(tx)
        if request_id is not None:
            mcp_store.put(tx.conn, key_id, tool, request_id, result, iso_ms(tx.now))
        return result

    return await call.runtime.db.write(run)


def _name_the_input(exc: NotFound, args: dict[str, Any]) -> None:
    """REST's "No calendar with id 'cal_…'" keeps its message; param names the argument that carried it."""
    if exc.param is not None:
        return
    for kind in ("calendar", "event", "agent", "proposal", "connection"):
        value = args.get(f"{kind}_id")
        if isinstance(value, str) and repr(value) in exc.message and kind in exc.message.lower():
            exc.param = f"{kind}_id"
            return


# --- calendars and events ----------------------------------------------------------------------


async def _list_calendars(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    agent_id = args.get("agent_id")
    limit = args.get("limit", 50)
    page = await call.runtime.db.read(lambda tx: calendars.list_(tx, call.ctx, agent_id, agent_id is None, limit, 0))
    return {"data": [as_json(c) for c in page.items], "total": page.total}


async def _get_calendar(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    return as_json(await call.runtime.db.read(lambda tx: calendars.get(tx, call.ctx, args["calendar_id"])))


async def _list_events(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    calendar_id, agent_id = args.get("calendar_id"), args.get("agent_id")
    if calendar_id is not None and agent_id is not None:
        raise ValidationError("Give calendar_id or agent_id, not both", "agent_id")
    start, end, status, limit = args["start"], args["end"], args.get("status"), args.get("limit", 50)
    if calendar_id is not None:
        cal = calendar_id
        page = await call.runtime.db.read(
            lambda tx: lists.list_for_calendar(tx, call.ctx, cal, start, end, status, None, limit, 0)
        )
    else:
        agent = _own_agent(call, args)
        page = await call.runtime.db.read(
            lambda tx: lists.list_for_agent(tx, call.ctx, agent, start, end, status, None, limit, 0)
        )
    return {"data": [as_json(e) for e in page.items], "total": page.total}


_CREATE_FIELDS = tuple(_EVENT_FIELDS)
_IF_FREE = {
    "type": "boolean",
    "description": (
        "Book only if the agent is free then: its whole busy time (every calendar, synced and subscribed ones, "
        "holds, buffers) is checked in the booking's own transaction; a clash is a conflict error listing the "
        "conflicting events (error.conflicts), and nothing is booked"
    ),
}


async def _create_event(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    data = _convert(_pick(args, (*_CREATE_FIELDS, "if_free")), EventCreate)
    return await _write_once(
        call, "create_event", args, lambda tx: as_json(event_svc.create(tx, call.ctx, args["calendar_id"], data))
    )


async def _update_event(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    changes = _pick(args, _CREATE_FIELDS)
    if not changes:
        raise ValidationError("Give at least one field to change", None)
    data = _convert(changes, EventUpdate)
    return await _write_once(
        call,
        "update_event",
        args,
        lambda tx: as_json(event_svc.update(tx, call.ctx, args["calendar_id"], args["event_id"], data)),
    )


async def _cancel_event(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    return as_json(
        await call.runtime.db.write(lambda tx: event_svc.cancel(tx, call.ctx, args["calendar_id"], args["event_id"]))
    )


async def _place_hold(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    fields = _pick(
        args, ("title", "start_time", "end_time", "description", "location", "hold_expires_at", "metadata", "if_free")
    )
    data = _convert({**fields, "status": "hold"}, EventCreate)
    return await _write_once(
        call, "place_hold", args, lambda tx: as_json(event_svc.create(tx, call.ctx, args["calendar_id"], data))
    )


async def _confirm_hold(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    return as_json(
        await call.runtime.db.write(lambda tx: event_svc.confirm(tx, call.ctx, args["calendar_id"], args["event_id"]))
    )


async def _release_hold(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    await call.runtime.db.write(lambda tx: event_svc.release(tx, call.ctx, args["calendar_id"], args["event_id"]))
    return {"event_id": args["event_id"], "released": True}


# --- scheduling --------------------------------------------------------------------------------


async def _availability(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    agent_id = _own_agent(call, args)
    slot = args.get("slot_minutes", 30)
    return as_json(
        await call.runtime.db.read(
            lambda tx: availability.availability(tx, call.ctx.principal, agent_id, args["start"], args["end"], slot)
        )
    )


def _hold_calendar(tx: Tx, call: Call, args: dict[str, Any]) -> str:
    if args.get("hold_calendar_id"):
        return str(args["hold_calendar_id"])
    agent_id = call.ctx.principal.agent_id
    if agent_id is None:
        raise ValidationError("hold_calendar_id is required with an org key", "hold_calendar_id")
    page = calendars.list_(tx, call.ctx, agent_id, False, 1, 0)
    if not page.items:
        raise ValidationError("Your agent has no calendar to hold the slot on; give hold_calendar_id", "hold_calendar_id")
    return page.items[0].id


async def _find_meeting_time(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    query = _convert(
        _pick(args, ("agent_ids", "start", "end", "duration_minutes", "limit", "slot_step_minutes")), FindMeetingTime
    )
    hold_title = args.get("hold_title")
    if hold_title is None:
        found = await call.runtime.db.read(lambda tx: availability.find_meeting_time(tx, call.ctx.principal, query))
        return {"slots": [as_json(s) for s in found.slots], "hold": None}

    def find_and_hold(tx: Tx) -> dict[str, Any]:
        # one write transaction: the slot cannot be taken between finding and holding it
        found = availability.find_meeting_time(tx, call.ctx.principal, query)
        slots = [as_json(s) for s in found.slots]
        if not found.slots:
            return {"slots": [], "hold": None}
        best: Interval = found.slots[0]
        calendar_id = _hold_calendar(tx, call, args)
        fields: dict[str, Any] = {"title": hold_title, "start_time": best.start, "end_time": best.end, "status": "hold"}
        if args.get("hold_expires_at"):
            fields["hold_expires_at"] = args["hold_expires_at"]
        hold = event_svc.create(tx, call.ctx, calendar_id, _convert(fields, EventCreate))
        return {"slots": slots, "hold": as_json(hold)}

    return await _write_once(call, "find_meeting_time", args, find_and_hold)


async def _create_proposal(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    body = _pick(
        args,
        (
            "title",
            "participant_agent_ids",
            "candidate_slots",
            "duration_minutes",
            "calendar_map",
            "expires_at",
            "hold_slots",
        ),
    )
    body["organizer_agent_id"] = _own_agent(call, args, "organizer_agent_id")
    data = _convert(body, ProposalCreate)
    return await _write_once(call, "create_proposal", args, lambda tx: as_json(proposals.create(tx, call.ctx, data)))


async def _respond_to_proposal(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    body = _pick(args, ("response", "slot_index", "counter_slot"))
    body["agent_id"] = _own_agent(call, args)
    data = _convert(body, ProposalRespond)
    return await _write_once(
        call, "respond_to_proposal", args, lambda tx: as_json(proposals.respond(tx, call.ctx, args["proposal_id"], data))
    )


async def _get_proposal(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    return as_json(await call.runtime.db.read(lambda tx: proposals.get(tx, call.ctx.principal, args["proposal_id"])))


async def _list_proposals(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    status, agent_id, limit = args.get("status"), args.get("agent_id"), args.get("limit", 50)
    page = await call.runtime.db.read(lambda tx: proposals.list_(tx, call.ctx.principal, status, agent_id, limit, 0))
    return {"data": [as_json(p) for p in page.items], "total": page.total}


async def _agent_context(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    agent_id = _own_agent(call, args)
    upcoming, recent = args.get("upcoming", 5), args.get("recent", 5)
    return as_json(
        await call.runtime.db.read(lambda tx: agent_context.context(tx, call.ctx.principal, agent_id, upcoming, recent))
    )


# --- connections and actions -------------------------------------------------------------------


async def _connections(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    connection_id = args.get("connection_id")
    if connection_id is not None:
        one = await call.runtime.db.read(lambda tx: connections.get(tx, call.ctx.principal, connection_id, None))
        return {"data": [as_json(one)], "total": 1}
    status = args.get("status")
    page = await call.runtime.db.read(
        lambda tx: connections.list_(tx, call.ctx.principal, None, None, status, None, args.get("limit", 50), 0)
    )
    return {"data": [as_json(c) for c in page.items], "total": page.total}


async def _refresh_connection(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    return as_json(
        await call.runtime.db.write(lambda tx: connections.refresh(tx, call.ctx.principal, args["connection_id"]))
    )


async def _list_actions(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    principal = call.ctx.principal
    if "actions.execute" not in principal.granted:
        raise Forbidden("This API key lacks the permission 'actions.execute'", "permissions")
    providers = await call.runtime.db.read(lambda tx: org_catalogue.all_for(tx, principal.org_id))
    wanted = args.get("provider_type")
    out = [
        {
            "provider_type": p.type,
            "action": a.name,
            "title": a.title,
            "description": a.description,
            "needs_connection": p.type != "chronary",
            "input_schema": a.input_schema,
        }
        for p in providers
        if wanted is None or p.type == wanted
        for a in p.actions
    ]
    return {"data": out, "total": len(out)}


async def _run_action(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    """Connect actions may call outside systems, so the run is not inside the stored-result
    transaction: the result is looked up before and stored after (a concurrent duplicate with the
    same request_id may still run twice; a retry after an answer never does)."""
    request_id, key_id = args.get("request_id"), call.ctx.principal.key_id
    if request_id is not None:
        stored = await call.runtime.db.read(lambda tx: mcp_store.get(tx.conn, key_id, "run_action", request_id))
        if stored is not None:
            return stored
    result: ActionResult = await connect_calls.run_action(
        call.runtime,
        call.ctx,
        args["provider_type"],
        args["action_name"],
        dict(args.get("inputs", {})),
        args.get("connection_id"),
    )
    out = as_json(result)
    if request_id is not None:
        await call.runtime.db.write(lambda tx: mcp_store.put(tx.conn, key_id, "run_action", request_id, out, iso_ms(tx.now)))
    return out


# --- the registry ------------------------------------------------------------------------------

_EVENT_REF: dict[str, Schema] = {
    "calendar_id": _id("cal", "The event's calendar"),
    "event_id": _id("evt", "The event (or one occurrence id of a series)"),
}
_EVENT_REF_EXAMPLE = {"calendar_id": "cal_01J9Z3Q4", "event_id": "evt_01J9Z3Q5"}
_WINDOW_EXAMPLE = {"start": "2030-01-07T00:00:00Z", "end": "2030-01-14T00:00:00Z"}

TOOLS: list[ToolSpec] = [
    ToolSpec(
        name="list_calendars",
        title="List calendars",
        description=(
            "List the calendars this key can see (an agent key: its agent's calendars). Use it first to find the "
            "calendar_id the event and hold tools need. Give agent_id for one agent's calendars."
        ),
        input_schema=_obj(
            {"agent_id": _id("agt", "Only this agent's calendars"), "limit": _LIMIT}, [], [{}, {"agent_id": "agt_01J9Z3Q4"}]
        ),
        output_schema=_list_of(Calendar),
        handler=_list_calendars,
        read_only=True,
    ),
    ToolSpec(
        name="get_calendar",
        title="Get a calendar",
        description="One calendar's details (name, timezone, owner, iCal feed URL) by id.",
        input_schema=_obj({"calendar_id": _id("cal", "The calendar")}, ["calendar_id"], [{"calendar_id": "cal_01J9Z3Q4"}]),
        output_schema=output_of(Calendar),
        handler=_get_calendar,
        read_only=True,
    ),
    ToolSpec(
        name="list_events",
        title="Events in a time window",
        description=(
            "Events starting in [start, end) on one calendar (calendar_id) or across an agent's calendars "
            "(agent_id; default: the agent key's own agent). Recurring series are expanded: each occurrence is "
            "listed with its own id and recurring_event_id. Use it to see what is booked before changing anything."
        ),
        input_schema=_obj(
            {
                "calendar_id": _id("cal", "One calendar"),
                "agent_id": _id("agt", "All calendars of this agent"),
                "start": _time("Window start", "2030-01-07T00:00:00Z"),
                "end": _time("Window end", "2030-01-14T00:00:00Z"),
                "status": {"enum": ["confirmed", "tentative", "cancelled", "hold"], "description": "Only this status"},
                "limit": _LIMIT,
            },
            ["start", "end"],
            [{"calendar_id": "cal_01J9Z3Q4", **_WINDOW_EXAMPLE}, _WINDOW_EXAMPLE],
        ),
        output_schema=_list_of(Event),
        handler=_list_events,
        read_only=True,
    ),
    ToolSpec(
        name="create_event",
        title="Create an event",
        description=(
            "Book a confirmed (or tentative) event on a calendar. Refused with a conflict when it overlaps a busy "
            "event unless allow_overlap is true. To reserve a time you may still give up, use place_hold instead."
        ),
        input_schema=_obj(
            {
                "calendar_id": _id("cal", "Calendar to book on"),
                **_EVENT_FIELDS,
                "if_free": _IF_FREE,
                "request_id": REQUEST_ID,
            },
            ["calendar_id", "title", "start_time", "end_time"],
            [
                {
                    "calendar_id": "cal_01J9Z3Q4",
                    "title": "Design review",
                    "start_time": "2030-01-07T10:00:00Z",
                    "end_time": "2030-01-07T10:30:00Z",
                    "request_id": "book-design-review-1",
                }
            ],
        ),
        output_schema=output_of(Event),
        handler=_create_event,
        read_only=False,
    ),
    ToolSpec(
        name="update_event",
        title="Change an event",
        description=(
            "Change some fields of an event (move it, rename it, …); only the fields given change. An occurrence "
            "id of a series changes that occurrence only."
        ),
        input_schema=_obj(
            {**_EVENT_REF, **_EVENT_FIELDS, "request_id": REQUEST_ID},
            ["calendar_id", "event_id"],
            [{**_EVENT_REF_EXAMPLE, "start_time": "2030-01-07T11:00:00Z", "end_time": "2030-01-07T11:30:00Z"}],
        ),
        output_schema=output_of(Event),
        handler=_update_event,
        read_only=False,
        idempotent=True,
    ),
    ToolSpec(
        name="cancel_event",
        title="Cancel an event",
        description="Cancel an event (it stays listed with status cancelled and frees the time). Attendees are told.",
        input_schema=_obj(_EVENT_REF, ["calendar_id", "event_id"], [_EVENT_REF_EXAMPLE]),
        output_schema=output_of(Event),
        handler=_cancel_event,
        read_only=False,
        destructive=True,
        idempotent=True,
    ),
    ToolSpec(
        name="place_hold",
        title="Place a hold",
        description=(
            "Reserve a time on a calendar without booking it yet: a hold blocks availability until confirmed "
            "(confirm_hold), released (release_hold) or expired (hold_expires_at)."
        ),
        input_schema=_obj(
            {
                "calendar_id": _id("cal", "Calendar to hold on"),
                "title": _TITLE,
                "start_time": _time("Start", "2030-01-07T10:00:00Z"),
                "end_time": _time("End", "2030-01-07T10:30:00Z"),
                "hold_expires_at": _time("When the hold lapses by itself", "2030-01-06T18:00:00Z"),
                "description": _EVENT_FIELDS["description"],
                "location": _EVENT_FIELDS["location"],
                "metadata": _EVENT_FIELDS["metadata"],
                "if_free": _IF_FREE,
                "request_id": REQUEST_ID,
            },
            ["calendar_id", "title", "start_time", "end_time"],
            [
                {
                    "calendar_id": "cal_01J9Z3Q4",
                    "title": "Hold: sync with Bob",
                    "start_time": "2030-01-07T10:00:00Z",
                    "end_time": "2030-01-07T10:30:00Z",
                }
            ],
        ),
        output_schema=output_of(Event),
        handler=_place_hold,
        read_only=False,
    ),
    ToolSpec(
        name="confirm_hold",
        title="Confirm a hold",
        description="Turn a hold into a confirmed event (the booking is final).",
        input_schema=_obj(_EVENT_REF, ["calendar_id", "event_id"], [_EVENT_REF_EXAMPLE]),
        output_schema=output_of(Event),
        handler=_confirm_hold,
        read_only=False,
        idempotent=True,
    ),
    ToolSpec(
        name="release_hold",
        title="Release a hold",
        description="Give a held time back: the hold is deleted and the time is free again.",
        input_schema=_obj(_EVENT_REF, ["calendar_id", "event_id"], [_EVENT_REF_EXAMPLE]),
        output_schema={
            "type": "object",
            "properties": {"event_id": {"type": "string"}, "released": {"type": "boolean"}},
            "required": ["event_id", "released"],
        },
        handler=_release_hold,
        read_only=False,
        destructive=True,
    ),
    ToolSpec(
        name="get_availability",
        title="Free/busy of an agent",
        description=(
            "An agent's busy intervals and free time in [start, end) (its working hours, buffers and minimum "
            "notice applied; at most 62 days). Default agent: the agent key's own."
        ),
        input_schema=_obj(
            {
                "agent_id": _id("agt", "The agent (default: your own)"),
                "start": _time("Window start", "2030-01-07T00:00:00Z"),
                "end": _time("Window end", "2030-01-08T00:00:00Z"),
                "slot_minutes": {"type": "integer", "minimum": 1, "maximum": 1440, "default": 30},
            },
            ["start", "end"],
            [{"agent_id": "agt_01J9Z3Q4", **_WINDOW_EXAMPLE}],
        ),
        output_schema=output_of(Availability),
        handler=_availability,
        read_only=True,
    ),
    ToolSpec(
        name="find_meeting_time",
        title="Find a meeting time (and hold it)",
        description=(
            "Common free slots of duration_minutes for several agents (an agent key must include its own agent), "
            "earliest first. Give hold_title to also place a hold on the earliest slot in the same step (on "
            "hold_calendar_id, default your agent's first calendar); then confirm_hold books it. To ask the other "
            "agents instead of just holding, use create_proposal with the slots found."
        ),
        input_schema=_obj(
            {
                "agent_ids": {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 2,
                    "maxItems": 50,
                    "description": "The agents who must all be free",
                    "examples": [["agt_01J9Z3Q4", "agt_01J9Z3Q5"]],
                },
                "start": _time("Search from", "2030-01-07T00:00:00Z"),
                "end": _time("Search until", "2030-01-11T00:00:00Z"),
                "duration_minutes": {"type": "integer", "minimum": 1, "maximum": 1440, "examples": [30]},
                "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
                "slot_step_minutes": {"type": "integer", "minimum": 1, "maximum": 1440, "default": 15},
                "hold_title": {**_TITLE, "description": "Hold the earliest slot under this title"},
                "hold_calendar_id": _id("cal", "Calendar for the hold (default: your agent's first)"),
                "hold_expires_at": _time("When the hold lapses", "2030-01-06T18:00:00Z"),
                "request_id": REQUEST_ID,
            },
            ["agent_ids", "start", "end", "duration_minutes"],
            [
                {
                    "agent_ids": ["agt_01J9Z3Q4", "agt_01J9Z3Q5"],
                    "start": "2030-01-07T00:00:00Z",
                    "end": "2030-01-11T00:00:00Z",
                    "duration_minutes": 30,
                    "hold_title": "Sync",
                },
            ],
        ),
        output_schema={
            "type": "object",
            "properties": {
                "slots": {"type": "array", "items": output_of(Interval)},
                "hold": {"anyOf": [{"$ref": "#/$defs/Event"}, {"type": "null"}]},
            },
            "required": ["slots", "hold"],
            "$defs": _defs(Event)[1],
        },
        handler=_find_meeting_time,
        read_only=False,
    ),
    ToolSpec(
        name="create_proposal",
        title="Propose a meeting",
        description=(
            "Ask other agents to agree on one of several candidate slots; each slot is held on every "
            "participant's calendar until the proposal resolves (every participant accepted one slot: it is "
            "booked for all) or expires. Organizer defaults to your own agent."
        ),
        input_schema=_obj(
            {
                "title": _TITLE,
                "organizer_agent_id": _id("agt", "Organizer (default: your own agent)"),
                "participant_agent_ids": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 50},
                "candidate_slots": {"type": "array", "items": _SLOT, "minItems": 1, "maxItems": 20},
                "duration_minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
                "calendar_map": {"type": "object", "additionalProperties": {"type": "string"}},
                "expires_at": _time("When the proposal lapses (≤ 7 days)", "2030-01-06T18:00:00Z"),
                "hold_slots": {"type": "boolean", "default": True},
                "request_id": REQUEST_ID,
            },
            ["title", "participant_agent_ids", "candidate_slots", "duration_minutes"],
            [
                {
                    "title": "Planning",
                    "participant_agent_ids": ["agt_01J9Z3Q5"],
                    "duration_minutes": 30,
                    "candidate_slots": [{"start": "2030-01-07T10:00:00Z", "end": "2030-01-07T10:30:00Z"}],
                },
            ],
        ),
        output_schema=output_of(Proposal),
        handler=_create_proposal,
        read_only=False,
    ),
    ToolSpec(
        name="respond_to_proposal",
        title="Answer a proposal",
        description=(
            "Accept (one slot with slot_index, or all), decline (one slot or the whole proposal) or counter with "
            "counter_slot, as agent_id (default: your own agent)."
        ),
        input_schema=_obj(
            {
                "proposal_id": _id("prp", "The proposal"),
                "agent_id": _id("agt", "Answering as (default: your own agent)"),
                "response": {"enum": ["accept", "decline", "counter"]},
                "slot_index": {"type": "integer", "minimum": 0},
                "counter_slot": _SLOT,
                "request_id": REQUEST_ID,
            },
            ["proposal_id", "response"],
            [{"proposal_id": "prp_01J9Z3Q4", "response": "accept", "slot_index": 0}],
        ),
        output_schema=output_of(Proposal),
        handler=_respond_to_proposal,
        read_only=False,
    ),
    ToolSpec(
        name="get_proposal",
        title="Proposal status",
        description="A proposal's status (open, resolved, declined, cancelled, expired), slots and everyone's answers.",
        input_schema=_obj({"proposal_id": _id("prp", "The proposal")}, ["proposal_id"], [{"proposal_id": "prp_01J9Z3Q4"}]),
        output_schema=output_of(Proposal),
        handler=_get_proposal,
        read_only=True,
    ),
    ToolSpec(
        name="list_proposals",
        title="List proposals",
        description="Proposals you take part in, newest first; filter by status (say open, to find ones to answer).",
        input_schema=_obj(
            {
                "status": {"enum": ["open", "resolved", "declined", "cancelled", "expired"]},
                "agent_id": _id("agt", "Organizer or participant"),
                "limit": _LIMIT,
            },
            [],
            [{"status": "open"}],
        ),
        output_schema=_list_of(Proposal),
        handler=_list_proposals,
        read_only=True,
    ),
    ToolSpec(
        name="get_agent_context",
        title="What is happening now",
        description=(
            "An agent's calendar context: the event in progress now, the next events and the last ones. Read it "
            "before acting on someone's behalf. Default agent: the agent key's own."
        ),
        input_schema=_obj(
            {
                "agent_id": _id("agt", "The agent (default: your own)"),
                "upcoming": {"type": "integer", "minimum": 0, "maximum": 50, "default": 5},
                "recent": {"type": "integer", "minimum": 0, "maximum": 50, "default": 5},
            },
            [],
            [{}, {"agent_id": "agt_01J9Z3Q4", "upcoming": 3}],
        ),
        output_schema=output_of(Context),
        handler=_agent_context,
        read_only=True,
    ),
    ToolSpec(
        name="list_connections",
        title="Connections' status",
        description=(
            "The outside calendar accounts (Google, Microsoft 365, iCloud/CalDAV) and their sync status, errors "
            "and last sync. Org keys only."
        ),
        input_schema=_obj(
            {
                "connection_id": _id("con", "Only this connection"),
                "status": {"type": "string", "description": "Only connections in this status"},
                "limit": _LIMIT,
            },
            [],
            [{}, {"connection_id": "con_01J9Z3Q4"}],
        ),
        output_schema=_list_of(Connection),
        handler=_connections,
        read_only=True,
    ),
    ToolSpec(
        name="refresh_connection",
        title="Sync a connection now",
        description="Ask for a connection to be synced now (the sync runs in the background). Org keys only.",
        input_schema=_obj({"connection_id": _id("con", "The connection")}, ["connection_id"], [{"connection_id": "con_1"}]),
        output_schema=output_of(Connection),
        handler=_refresh_connection,
        read_only=False,
        idempotent=True,
    ),
    ToolSpec(
        name="list_actions",
        title="Actions this key may run",
        description=(
            "The automation (Connect) actions this key may execute with run_action, with their input schemas: "
            "notifications, messages, email, HTTP, smart-home and Chronary's own actions."
        ),
        input_schema=_obj({"provider_type": {"type": "string", "examples": ["ntfy"]}}, [], [{}, {"provider_type": "slack"}]),
        output_schema={
            "type": "object",
            "properties": {"data": {"type": "array", "items": {"type": "object"}}, "total": {"type": "integer"}},
            "required": ["data", "total"],
        },
        handler=_list_actions,
        read_only=True,
    ),
    ToolSpec(
        name="run_action",
        title="Run an automation action",
        description=(
            "Run one Connect action now (see list_actions): inputs must match its input schema; connection_id "
            "picks the account when there are several. Needs the key's actions.execute permission."
        ),
        input_schema=_obj(
            {
                "provider_type": {"type": "string", "minLength": 1, "examples": ["ntfy"]},
                "action_name": {"type": "string", "minLength": 1, "examples": ["send_notification"]},
                "inputs": {"type": "object", "default": {}},
                "connection_id": _id("con", "Which connection of that provider"),
                "request_id": REQUEST_ID,
            },
            ["provider_type", "action_name"],
            [{"provider_type": "ntfy", "action_name": "send_notification", "inputs": {"topic": "t", "message": "Hi"}}],
        ),
        output_schema=output_of(ActionResult),
        handler=_run_action,
        read_only=False,
    ),
]

BY_NAME: dict[str, ToolSpec] = {t.name: t for t in TOOLS}


async def run(spec: ToolSpec, call: Call, arguments: dict[str, Any]) -> dict[str, Any]:
    """Check the arguments, run the tool; a ChronaryError (param naming the argument) on refusal."""
    check_arguments(spec.input_schema, arguments)
    try:
        return await spec.handler(call, dict(arguments))
    except NotFound as exc:
        _name_the_input(exc, arguments)
        raise


def error_envelope(exc: ChronaryError, request_id: str | None = None) -> dict[str, Any]:
    """The REST envelope, documented extra keys (an if_free clash's `conflicts`) included."""
    error = {"type": exc.type, "message": exc.message, "param": exc.param, "request_id": request_id}
    error.update((k, v) for k, v in exc.details.items() if k not in error)
    return {"error": error}
