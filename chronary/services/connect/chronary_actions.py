"""The `chronary` provider's actions (chronary/catalogue/chronary.py), run on this server's own services.

Each action is the REST call it mirrors, through the same service function in the same kind of
transaction (so the same validation, visibility rules for agent keys, hold and conflict checks,
change log and webhooks): the ids the REST path carries (`calendar_id`, `event_id`, `agent_id`)
come out of the inputs, the rest becomes the REST body struct (`EventCreate`, `EventUpdate`,
`FindMeetingTime`) with msgspec, and the answer is the REST struct as JSON-ready builtins.

The inputs were validated against the action's input schema by the caller; a value the schema
lets through but the REST struct or the service refuses is a chronary error naming the field.
A not-found id answers exactly what REST answers, with `param` naming the input that carried
it (REST leaves it null: there the id is in the path).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta

from chronary.errors import NotFound, ValidationError
from chronary.schemas.common import Input
from chronary.schemas.events import EventCreate, EventStatus, EventUpdate
from chronary.schemas.scheduling import FindMeetingTime
from chronary.services import availability
from chronary.services import event_lists as lists
from chronary.services import events as event_svc
from chronary.services.context import Ctx, Principal
from chronary.store.db import Database, Tx

if TYPE_CHECKING:
    from chronary.runtime import Runtime

S = TypeVar("S", bound=msgspec.Struct)
Handler = Callable[[Database, Ctx, dict[str, Any]], Awaitable[dict[str, Any]]]

Source = Literal["internal", "external_ical", "google", "microsoft", "icloud", "caldav"]
_AT_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_FIELD = re.compile(r"`([^`]*)`")
_HOLD_FORBIDDEN = ("status", "transparency")  # create_hold always places an opaque hold


class _ListEvents(Input):
    """list_events' inputs: the REST list's path id and query parameters, with their limits."""

    calendar_id: str | None = None
    agent_id: str | None = None
    start_after: str | None = None
    start_before: str | None = None
    status: EventStatus | None = None
    source: Source | None = None
    limit: Annotated[int, Meta(ge=1, le=200)] = 50
    offset: Annotated[int, Meta(ge=0, le=2**31 - 1)] = 0


# --- inputs into REST structs ------------------------------------------------------------------


def _validation_error(exc: msgspec.ValidationError) -> ValidationError:
    """msgspec's complaint as the API words it: the message, and `param` naming the input field."""
    message = str(exc)
    path = ""
    nested = _AT_PATH.search(message)
    if nested:
        message, path = message[: nested.start()], nested.group(1)
    if "unknown field" in message or "missing required field" in message:
        found = _FIELD.search(message)
        name = found.group(1) if found else None
        param = f"{path}.{name}" if path and name else (name or path or None)
        if "unknown field" in message:
            return ValidationError(f"Unknown field {param!r} in the action's input", param)
        return ValidationError(f"{param} is required", param)
    if not path:
        return ValidationError(f"Invalid input: {message}", None)
    return ValidationError(f"Invalid {path}: {message[0].lower() + message[1:]}", path)


def _convert(value: dict[str, Any], shape: type[S]) -> S:
    try:
        return msgspec.convert(value, shape)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc) from None


def _take_id(inputs: dict[str, Any], name: str) -> str:
    """Remove and answer the path id `name` (calendar_id, event_id) from the inputs."""
    value = inputs.pop(name, None)
    if value is None:
        raise ValidationError(f"{name} is required", name)
    if not isinstance(value, str):
        raise ValidationError(f"Invalid {name}: expected a string", name)
    return value


def _event_ref(inputs: dict[str, Any]) -> tuple[str, str]:
    calendar_id, event_id = _take_id(inputs, "calendar_id"), _take_id(inputs, "event_id")
    if inputs:
        unknown = sorted(inputs)[0]
        raise ValidationError(f"Unknown field {unknown!r} in the action's input", unknown)
    return calendar_id, event_id


def _out(value: msgspec.Struct) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(value)
    return out


# --- the actions -------------------------------------------------------------------------------


async def _create_event(db: Database, ctx: Ctx, inputs: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/calendars/{calendar_id}/events."""
    calendar_id = _take_id(inputs, "calendar_id")
    data = _convert(inputs, EventCreate)
    return _out(await db.write(lambda tx: event_svc.create(tx, ctx, calendar_id, data)))


async def _update_event(db: Database, ctx: Ctx, inputs: dict[str, Any]) -> dict[str, Any]:
    """PATCH /v1/calendars/{calendar_id}/events/{event_id}."""
    calendar_id, event_id = _take_id(inputs, "calendar_id"), _take_id(inputs, "event_id")
    data = _convert(inputs, EventUpdate)
    return _out(await db.write(lambda tx: event_svc.update(tx, ctx, calendar_id, event_id, data)))


async def _cancel_event(db: Database, ctx: Ctx, inputs: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/calendars/{calendar_id}/events/{event_id}/cancel."""
    calendar_id, event_id = _event_ref(inputs)
    return _out(await db.write(lambda tx: event_svc.cancel(tx, ctx, calendar_id, event_id)))


async def _create_hold(db: Database, ctx: Ctx, inputs: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/calendars/{calendar_id}/events with status hold (holds are always opaque)."""
    for name in _HOLD_FORBIDDEN:
        if name in inputs:
            raise ValidationError(f"Unknown field {name!r} in the action's input (a hold is always an opaque hold)", name)
    calendar_id = _take_id(inputs, "calendar_id")
    data = _convert({**inputs, "status": "hold"}, EventCreate)
    return _out(await db.write(lambda tx: event_svc.create(tx, ctx, calendar_id, data)))


async def _confirm_hold(db: Database, ctx: Ctx, inputs: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/calendars/{calendar_id}/events/{event_id}/confirm."""
    calendar_id, event_id = _event_ref(inputs)
    return _out(await db.write(lambda tx: event_svc.confirm(tx, ctx, calendar_id, event_id)))


async def _release_hold(db: Database, ctx: Ctx, inputs: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/calendars/{calendar_id}/events/{event_id}/release (REST: 204; here the id)."""
    calendar_id, event_id = _event_ref(inputs)
    await db.write(lambda tx: event_svc.release(tx, ctx, calendar_id, event_id))
    return {"event_id": event_id, "released": True}


async def _find_meeting_time(db: Database, ctx: Ctx, inputs: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/availability/find-meeting-time."""
    explain = bool(inputs.get("explain", False))  # a query flag on REST, an input here
    data = _convert({k: v for k, v in inputs.items() if k != "explain"}, FindMeetingTime)
    return _out(await db.read(lambda tx: availability.find_meeting_time(tx, ctx.principal, data, explain=explain)))


async def _list_events(db: Database, ctx: Ctx, inputs: dict[str, Any]) -> dict[str, Any]:
    """GET /v1/calendars/{calendar_id}/events, or GET /v1/agents/{agent_id}/events."""
    q = _convert(inputs, _ListEvents)
    if q.calendar_id is not None and q.agent_id is not None:
        raise ValidationError("Give calendar_id or agent_id, not both", "agent_id")
    if q.calendar_id is not None:
        calendar_id = q.calendar_id
        page = await db.read(
            lambda tx: lists.list_for_calendar(
                tx, ctx, calendar_id, q.start_after, q.start_before, q.status, q.source, q.limit, q.offset
            )
        )
    elif q.agent_id is not None:
        agent_id = q.agent_id
        page = await db.read(
            lambda tx: lists.list_for_agent(
                tx, ctx, agent_id, q.start_after, q.start_before, q.status, q.source, q.limit, q.offset
            )
        )
    else:
        raise ValidationError("calendar_id or agent_id is required", "calendar_id")
    return {
        "data": [_out(event) for event in page.items],
        "total": page.total,
        "limit": page.limit,
        "offset": page.offset,
    }


ACTIONS: dict[str, Handler] = {
    "create_event": _create_event,
    "update_event": _update_event,
    "cancel_event": _cancel_event,
    "create_hold": _create_hold,
    "confirm_hold": _confirm_hold,
    "release_hold": _release_hold,
    "find_meeting_time": _find_meeting_time,
    "list_events": _list_events,
}

_ID_INPUTS = (("calendar", "calendar_id"), ("event", "event_id"), ("agent", "agent_id"))


def _name_the_input(exc: NotFound, inputs: dict[str, Any]) -> None:
    """REST's "No calendar with id 'cal_…'" keeps its message; `param` names the input it came from."""
    if exc.param is not None:
        return
    for kind, field in _ID_INPUTS:
        value = inputs.get(field)
        if isinstance(value, str) and exc.message == f"No {kind} with id {value!r}":
            exc.param = field
            return


async def run(runtime: Runtime, ctx: Ctx, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Run the chronary action `name` (create_event, …) as `ctx.principal`; its answer as JSON-ready data.

    `inputs` are already valid against the action's input schema (they are not changed here).
    """
    handler = ACTIONS.get(name)
    if handler is None:
        raise NotFound("Action not found", "actionName")
    try:
        return await handler(runtime.db, ctx, dict(inputs))
    except NotFound as exc:
        _name_the_input(exc, inputs)
        raise


# --- for smtp.send_invitation ------------------------------------------------------------------


def invitation_event(tx: Tx, principal: Principal, calendar_id: str, event_id: str) -> dict[str, Any]:
    """A Chronary event (or one occurrence of a series) as smtp.send_invitation's inline `event`.

    NotFound when the calendar or event does not exist, the event is in another calendar, or the
    principal may not see them (the rules of GET /v1/calendars/{calendar_id}/events/{event_id}).
    Timed events keep the API's UTC timestamps; all-day events give their dates (end exclusive).
    """
    row, calendar = event_svc.load(tx, principal, calendar_id, event_id)
    event = event_svc.to_struct(row, calendar)
    start, end = event.start_time, event.end_time
    if event.all_day and event.start_date is not None and event.end_date is not None:
        start, end = event.start_date, event.end_date
    out: dict[str, Any] = {
        "uid": event.ical_uid,
        "sequence": event.sequence,
        "title": event.title,
        "start_time": start,
        "end_time": end,
        "all_day": event.all_day,
        "timezone": calendar.get("timezone"),
        "description": event.description,
        "location": event.location,
    }
    return {k: v for k, v in out.items() if v is not None}
