"""Events: create, read, change and delete, holds included.

Every change to a stored event goes through `services.changes.record` (origin "api", or
"system" for hold expiry), in the transaction of the change, with its webhook type:
event.created / event.hold_created on create, event.updated on PATCH, event.cancelled on cancel,
event.hold_confirmed, event.hold_released, event.deleted, event.hold_expired.

Operations answer with `schemas.events.Event` structs (`to_struct`). `load` stays the raw store
row and `present` the dict form: webhook payloads and the change log carry it (in the key order
they always had), and the sync merge, calendars and agent context use it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from chronary import ids
from chronary.errors import Conflict, Forbidden, ValidationError, not_found
from chronary.schemas.common import set_fields
from chronary.schemas.events import Event, EventAttendee, EventCreate, EventUpdate
from chronary.services import availability, changes, event_times, occurrences
from chronary.services.calendars import load as load_calendar
from chronary.services.changes import Change, changed_fields
from chronary.services.context import Ctx, Principal
from chronary.services.event_present import present
from chronary.services.validation import check_email, check_metadata, check_reminders
from chronary.store import calendars as cal_store
from chronary.store import events as event_store
from chronary.store.db import Tx
from chronary.store.events import EventFilter
from chronary.timeutil import from_ts, iso, iso_ms, parse_instant, to_ts, ts_iso

# A front door's precondition (If-Match): handed the event as it is now, it raises to refuse the
# write (PreconditionFailed); called inside the write transaction, so check and write are one step.
Check = Callable[[Event], None] | None

HOLD_DEFAULT = timedelta(minutes=15)
HOLD_MAX = timedelta(days=7)
BLOCKING_FOR_HOLDS = ("confirmed",)


def _iso(dt: datetime) -> str:
    """`iso` of an instant that is there (its `str | None` is for None in, None out)."""
    out = iso(dt)
    assert out is not None
    return out


def to_struct(row: dict[str, Any], calendar: dict[str, Any]) -> Event:
    """The API shape of a store row, the same values as `present` (built directly: lists are hot
    paths, msgspec.convert is slower)."""
    start, end = from_ts(row["start_ts"]), from_ts(row["end_ts"])
    start_date = end_date = None
    if row["all_day"]:
        start_date, end_date = event_times.all_day_dates(start, end, ZoneInfo(calendar["timezone"]))
    return Event(
        id=row["id"],
        calendar_id=row["calendar_id"],
        agent_id=calendar["agent_id"],
        ical_uid=row["ical_uid"],
        title=row["title"],
        description=row["description"],
        location=row["location"],
        start_time=_iso(start),
        end_time=_iso(end),
        all_day=bool(row["all_day"]),
        start_date=start_date,
        end_date=end_date,
        status=row["status"],
        hold_expires_at=ts_iso(row["hold_expires_at"]),
        priority=row["priority"],
        reminders=row["reminders"],
        recurrence=row["recurrence"],
        attendees=[
            EventAttendee(email=a["email"], name=a.get("name"), agent_id=a.get("agent_id")) for a in row["attendees"] or []
        ],
        metadata=row["metadata"] or {},
        source=row["source"],
        read_only=bool(row["read_only"]),
        recurring_event_id=row["recurring_event_id"],
        sequence=row["sequence"],
        remote=row["remote"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        transparency=row.get("transparency") or "opaque",
    )


def struct_of(presented: dict[str, Any]) -> Event:
    """The API shape of an event's dict form (`present`): the same values, not worked out again."""
    attendees = [
        EventAttendee(email=a["email"], name=a.get("name"), agent_id=a.get("agent_id")) for a in presented["attendees"]
    ]
    return Event(**{**presented, "attendees": attendees})


def calendar_of(tx: Tx, row: dict[str, Any]) -> dict[str, Any]:
    """The stored calendar of a stored event row (it is there: events go with their calendar)."""
    calendar = cal_store.get(tx.conn, row["calendar_id"])
    assert calendar is not None, row["calendar_id"]
    return calendar


def _attendees(value: list[Any] | None) -> list[dict[str, Any]]:
    out = []
    for i, a in enumerate(value or []):
        check_email(a.email, f"attendees[{i}].email")
        out.append({"email": a.email, "name": a.name, "agent_id": a.agent_id})
    return out


def _hold_expiry(now: datetime, value: str | None) -> int:
    expires = now + HOLD_DEFAULT if value is None else parse_instant(value, "hold_expires_at")
    if expires <= now:
        raise ValidationError("hold_expires_at must be in the future", "hold_expires_at")
    if expires - now > HOLD_MAX:
        raise ValidationError("hold_expires_at may be at most 7 days from now", "hold_expires_at")
    return to_ts(expires)


def _check_hold_transparency(status: str, transparency: str) -> None:
    if status == "hold" and transparency == "transparent":
        raise ValidationError("a hold is always opaque (it reserves the time); send transparency: opaque", "transparency")


def _check_hold_overlap(tx: Tx, calendar: dict[str, Any], start_ts: int, end_ts: int, exclude: str | None) -> None:
    """A hold may not sit on top of a confirmed opaque event (or occurrence of a confirmed
    series) of the same agent, unless allowed; transparent events never block it."""
    agent_id = calendar["agent_id"]
    scope = (
        EventFilter(agent_id=agent_id, status="confirmed")
        if agent_id
        else EventFilter(calendar_id=calendar["id"], status="confirmed")
    )
    clashes = [
        r
        for r in occurrences.in_window(tx, scope, start_ts, end_ts, {calendar["id"]: calendar})
        if r["status"] in BLOCKING_FOR_HOLDS and r["id"] != exclude and r.get("transparency") != "transparent"
    ]
    if clashes:
        raise Conflict(
            f"The hold overlaps confirmed event {clashes[0]['id']}; send allow_overlap: true to place it anyway",
            "start_time",
        )


def _require_free(tx: Tx, calendar: dict[str, Any], row: dict[str, Any]) -> None:
    """if_free: 409 listing what is in the way when the agent is busy then (same transaction as the insert)."""
    clashes = availability.busy_conflicts(tx, calendar, availability.new_event_spans(row, calendar))
    if clashes:
        more = "" if len(clashes) < availability.MAX_CONFLICTS else " (the first 100)"
        raise Conflict(
            f"The agent is not free then: {len(clashes)} conflicting event(s){more}, see error.conflicts",
            "start_time",
            details={"conflicts": clashes},
        )


def load(tx: Tx, principal: Principal, calendar_id: str, event_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stored event, or a generated occurrence of a series (marked `_virtual`)."""
    calendar = load_calendar(tx, principal, calendar_id)
    row = event_store.get(tx.conn, event_id)
    if row is None:
        row = occurrences.virtual(tx, calendar, event_id)
        if row is not None:
            row["_virtual"] = True
    if row is None or row["calendar_id"] != calendar_id:
        raise not_found("event", event_id)
    return row, calendar


def _precondition(row: dict[str, Any], calendar: dict[str, Any], check: Check) -> None:
    """Run the front door's check on the event as a client sees it now (a generated occurrence
    included, before it is stored). Read-only events skip it: their write is refused (403) anyway."""
    if check is not None and not row["read_only"]:
        check(to_struct(row, calendar))


def _load_for_write(
    tx: Tx, principal: Principal, calendar_id: str, event_id: str, check: Check = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Like `load`, but a generated occurrence is first stored as an exception row whose id is
    the occurrence id (recurring_event_id = series, recurrence_id_ts = original start); the
    change then applies to that row. Rolled back with the transaction if the change fails.
    `check` (If-Match) sees the event before that."""
    row, calendar = load(tx, principal, calendar_id, event_id)
    _precondition(row, calendar, check)
    if row.pop("_virtual", False):
        _require_writable(row)
        row["updated_at"] = iso_ms(tx.now)
        event_store.create(tx.conn, row)
    return row, calendar


def _changed(
    tx: Tx,
    kind: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    calendar: dict[str, Any],
    type_: str | None = None,
    obj: dict[str, Any] | None = None,
    previous: dict[str, Any] | None = None,
    *,
    origin: str | None = None,
    webhook: bool = True,
) -> str | None:
    """Every stored-event change funnels here, into the one change path (services/changes.py):
    the calendar's revision moves, the change is logged when it has a webhook type, and the
    registered in-transaction listeners run (feed invalidation, provider push queues)."""
    change = Change(
        type_,
        obj,
        previous=previous or None,
        agent_id=calendar["agent_id"],
        origin=origin,
        webhook=webhook,
        kind=kind,
        before=before,
        after=after,
        calendar=calendar,
    )
    return changes.record(tx, change)


def record_event_change(
    tx: Tx,
    kind: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    calendar: dict[str, Any],
    *,
    origin: str | None = None,
    webhook: bool = True,
    announce: bool = True,
) -> str | None:
    """For writers outside this service (imports, the sync merge): the change as event.created,
    event.updated (with `previous`) or event.deleted of the event as the API shows it.
    `announce=False` records a bookkeeping step (the row moved, nothing to tell anyone)."""
    if not announce:
        return _changed(tx, kind, before, after, calendar, origin=origin)
    row = after if after is not None else before
    assert row is not None
    obj = present(row, calendar)
    previous = changed_fields(present(before, calendar), obj) if kind == "updated" and before is not None else None
    return _changed(tx, kind, before, after, calendar, f"event.{kind}", obj, previous, origin=origin, webhook=webhook)


def record_changes(
    tx: Tx,
    items: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]],
    calendar: dict[str, Any],
    *,
    origin: str | None = None,
) -> None:
    """Many imported changes to one calendar in one transaction (a subscription sync): each is
    logged (event.created/updated/deleted, not sent as webhooks: imports never were) and every
    listener sees every change; the revision moves once per transaction."""
    for kind, before, after in items:
        record_event_change(tx, kind, before, after, calendar, origin=origin, webhook=False)


def create(tx: Tx, ctx: Ctx, calendar_id: str, data: EventCreate) -> Event:
    calendar = load_calendar(tx, ctx.principal, calendar_id)
    tz = ZoneInfo(calendar["timezone"])
    start, end = event_times.resolve(data.start_time, data.end_time, data.all_day, tz)
    if data.status != "hold":
        for field, value in (("hold_expires_at", data.hold_expires_at),):
            if value is not None:
                raise ValidationError(f"{field} is only allowed when status is hold", field)
    _check_hold_transparency(data.status, data.transparency)
    hold_expires = _hold_expiry(tx.now, data.hold_expires_at) if data.status == "hold" else None
    if data.status == "hold" and not data.allow_overlap and not data.if_free:  # if_free checks more, below
        _check_hold_overlap(tx, calendar, to_ts(start), to_ts(end), None)
    now = iso_ms(tx.now)
    event_id = ids.new_id("evt")
    row: dict[str, Any] = {
        "id": event_id,
        "calendar_id": calendar_id,
        "ical_uid": f"{event_id}@chronary",
        "title": data.title,
        "description": data.description,
        "location": data.location,
        "start_ts": to_ts(start),
        "end_ts": to_ts(end),
        "all_day": data.all_day,
        "status": data.status,
        "hold_expires_at": hold_expires,
        "priority": data.priority,
        "reminders": check_reminders(data.reminders, "reminders"),
        "recurrence": event_times.check_recurrence(data.recurrence, start),
        "recurring_event_id": None,
        "recurrence_id_ts": None,
        "attendees": _attendees(data.attendees),
        "metadata": check_metadata(data.metadata),
        "source": "internal",
        "read_only": False,
        "remote": None,
        "sequence": 0,
        "transparency": data.transparency,
        "created_at": now,
        "updated_at": now,
    }
    if data.if_free:
        _require_free(tx, calendar, row)
    event_store.create(tx.conn, row)
    out = present(row, calendar)
    created = struct_of(out)
    kind = "event.hold_created" if data.status == "hold" else "event.created"
    _changed(tx, "created", None, row, calendar, kind, out)
    return created


def get(tx: Tx, ctx: Ctx, calendar_id: str, event_id: str) -> Event:
    row, calendar = load(tx, ctx.principal, calendar_id, event_id)
    return to_struct(row, calendar)


def _require_writable(row: dict[str, Any]) -> None:
    if row["read_only"]:
        raise Forbidden(f"Event {row['id']} is read-only (source {row['source']}); change it where it comes from")


def _refuse_expired_hold(tx: Tx, row: dict[str, Any]) -> None:
    """A hold past its expiry but not yet swept by the worker is gone in all but storage:
    neither /confirm nor a PATCH may bring it back (deleting it is still fine)."""
    if row["status"] == "hold" and row["hold_expires_at"] is not None and row["hold_expires_at"] <= to_ts(tx.now):
        raise Conflict(f"Hold {row['id']} expired at {ts_iso(row['hold_expires_at'])}", "hold_expires_at")


def update(tx: Tx, ctx: Ctx, calendar_id: str, event_id: str, data: EventUpdate, check: Check = None) -> Event:
    changes = set_fields(data)
    allow_overlap = bool(changes.pop("allow_overlap", False))
    if not changes:
        raise ValidationError("PATCH needs at least one field to change", None)
    row, calendar = _load_for_write(tx, ctx.principal, calendar_id, event_id, check)
    _require_writable(row)
    _refuse_expired_hold(tx, row)
    if row["recurring_event_id"] and changes.get("recurrence") is not None:
        raise ValidationError("a single occurrence cannot have its own recurrence; change the series", "recurrence")
    for required in ("title", "start_time", "end_time", "all_day", "status", "transparency"):
        if required in changes and changes[required] is None:
            raise ValidationError(f"{required} cannot be null", required)
    before = present(row, calendar)
    tz = ZoneInfo(calendar["timezone"])
    values: dict[str, Any] = {}

    all_day = changes.get("all_day", bool(row["all_day"]))
    if {"start_time", "end_time", "all_day"} & changes.keys():
        start_in = changes.get("start_time", before["start_date"] if row["all_day"] and all_day else before["start_time"])
        end_in = changes.get("end_time", before["end_date"] if row["all_day"] and all_day else before["end_time"])
        start, end = event_times.resolve(start_in, end_in, all_day, tz)
        values.update(start_ts=to_ts(start), end_ts=to_ts(end), all_day=all_day)
    start_ts = values.get("start_ts", row["start_ts"])
    end_ts = values.get("end_ts", row["end_ts"])

    status = changes.get("status", row["status"])
    _check_hold_transparency(status, changes.get("transparency", row.get("transparency") or "opaque"))
    if status == "hold":
        if "hold_expires_at" in changes or row["status"] != "hold":
            values["hold_expires_at"] = _hold_expiry(tx.now, changes.get("hold_expires_at"))
        if not allow_overlap and (row["status"] != "hold" or "start_ts" in values):
            _check_hold_overlap(tx, calendar, start_ts, end_ts, event_id)
    else:
        if changes.get("hold_expires_at") is not None:
            raise ValidationError("hold_expires_at is only allowed when status is hold", "hold_expires_at")
        values["hold_expires_at"] = None
    if "status" in changes:
        values["status"] = status
    for simple in ("title", "description", "location", "priority", "transparency"):
        if simple in changes:
            values[simple] = changes[simple]
    if "reminders" in changes:
        values["reminders"] = check_reminders(changes["reminders"], "reminders")
    if "recurrence" in changes:
        values["recurrence"] = event_times.check_recurrence(changes["recurrence"], from_ts(start_ts))
    if "attendees" in changes:
        values["attendees"] = _attendees(changes["attendees"])
    if "metadata" in changes:
        values["metadata"] = check_metadata(changes["metadata"])
    values["sequence"] = row["sequence"] + 1
    values["updated_at"] = iso_ms(tx.now)
    event_store.patch(tx.conn, event_id, values)
    after = present({**row, **values}, calendar)
    kind = "event.cancelled" if status == "cancelled" and row["status"] != "cancelled" else "event.updated"
    _changed(tx, "updated", row, {**row, **values}, calendar, kind, after, changed_fields(before, after))
    return to_struct({**row, **values}, calendar)


def delete(tx: Tx, ctx: Ctx, calendar_id: str, event_id: str, *, kind: str = "event.deleted", check: Check = None) -> None:
    """Deletes an event; a series goes with its exceptions; one occurrence becomes an EXDATE of
    its series (see `_delete_occurrence`)."""
    row, calendar = load(tx, ctx.principal, calendar_id, event_id)
    _require_writable(row)
    _precondition(row, calendar, check)
    if row["recurring_event_id"]:
        _delete_occurrence(tx, row, calendar, kind)
        return
    before = present(row, calendar)
    if row["recurrence"]:
        for exc in event_store.series_exceptions(tx.conn, event_id):
            event_store.delete(tx.conn, exc["id"])
            _changed(tx, "deleted", exc, None, calendar)
    event_store.delete(tx.conn, event_id)
    _changed(tx, "deleted", row, None, calendar, kind, before)


def _delete_occurrence(tx: Tx, row: dict[str, Any], calendar: dict[str, Any], kind: str) -> None:
    """One occurrence deleted: its original start joins the series' EXDATEs and its stored
    exception (a moved or cancelled occurrence) goes, so it is gone from windowed lists, GET,
    availability, feeds and — pushed as an EXDATE — providers, the same state a sync pull
    stores for an EXDATE made on a phone. Cancelling instead keeps a listed cancelled row.
    One webhook, `kind` (event.deleted) for the occurrence; the series' own change is how
    the deletion is stored, not another event."""
    before = present(row, calendar)
    if not row.pop("_virtual", False):
        event_store.delete(tx.conn, row["id"])
        _changed(tx, "deleted", row, None, calendar)
    master = event_store.get(tx.conn, row["recurring_event_id"])
    if master is not None and master["recurrence"] and row["recurrence_id_ts"] is not None:
        lines = occurrences.with_exdate(
            master["recurrence"], row["recurrence_id_ts"], bool(master["all_day"]), ZoneInfo(calendar["timezone"])
        )
        values = {"recurrence": lines, "sequence": master["sequence"] + 1, "updated_at": iso_ms(tx.now)}
        event_store.patch(tx.conn, master["id"], values)
        _changed(tx, "updated", master, {**master, **values}, calendar)
    # the occurrence's own announcement: no stored row of its own changes here (see above)
    changes.record(tx, Change(kind, before, agent_id=calendar["agent_id"], calendar=calendar))


def cancel(tx: Tx, ctx: Ctx, calendar_id: str, event_id: str, check: Check = None) -> Event:
    row, calendar = load(tx, ctx.principal, calendar_id, event_id)
    _precondition(row, calendar, check)
    if row["status"] == "cancelled":
        raise Conflict(f"Event {event_id} is already cancelled", "status")
    return update(tx, ctx, calendar_id, event_id, EventUpdate(status="cancelled"))


def confirm(tx: Tx, ctx: Ctx, calendar_id: str, event_id: str, check: Check = None) -> Event:
    """hold → confirmed."""
    row, calendar = _load_for_write(tx, ctx.principal, calendar_id, event_id, check)
    _require_writable(row)
    if row["status"] != "hold":
        raise Conflict(f"Event {event_id} is not a hold (status {row['status']})", "status")
    _refuse_expired_hold(tx, row)
    before = present(row, calendar)
    values = {"status": "confirmed", "hold_expires_at": None, "sequence": row["sequence"] + 1, "updated_at": iso_ms(tx.now)}
    event_store.patch(tx.conn, event_id, values)
    after = present({**row, **values}, calendar)
    _changed(tx, "updated", row, {**row, **values}, calendar, "event.hold_confirmed", after, changed_fields(before, after))
    return to_struct({**row, **values}, calendar)


def release(tx: Tx, ctx: Ctx, calendar_id: str, event_id: str, check: Check = None) -> None:
    """Delete a hold."""
    row, calendar = load(tx, ctx.principal, calendar_id, event_id)
    _precondition(row, calendar, check)
    if row["status"] != "hold":
        raise Conflict(f"Event {event_id} is not a hold (status {row['status']})", "status")
    delete(tx, ctx, calendar_id, event_id, kind="event.hold_released")


def expire_holds(tx: Tx, base_url: str) -> list[str]:
    """Delete holds whose expiry has passed (worker, origin "system"); event.hold_expired for each."""
    expired = event_store.expired_holds(tx.conn, to_ts(tx.now))
    calendars: dict[str, dict[str, Any]] = {}
    for row in expired:
        cal = calendars.get(row["calendar_id"])
        if cal is None:
            cal = calendars[row["calendar_id"]] = calendar_of(tx, row)
        event_store.delete(tx.conn, row["id"])
        _changed(tx, "deleted", row, None, cal, "event.hold_expired", present(row, cal), origin="system")
    return [r["id"] for r in expired]
