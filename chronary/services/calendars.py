"""Calendars: org-level or agent-owned, each published at an unguessable feed URL.

Operations answer with `schemas.calendars.Calendar` structs (`to_struct`; a `Page[Calendar]` for
lists). `load` stays the raw store row and `present` the dict form, which other services use
(services/feeds.py builds `calendar.updated` with it) and which is what webhook payloads carry,
in the key order they always had.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC
from typing import Any
from zoneinfo import ZoneInfo

from chronary import ids
from chronary.errors import ValidationError, not_found
from chronary.schemas.calendars import Calendar, CalendarCreate, CalendarUpdate
from chronary.schemas.common import set_fields
from chronary.services import changes, outbox
from chronary.services.agents import load as load_agent
from chronary.services.context import Ctx, Page, Principal
from chronary.services.event_present import present as present_event
from chronary.services.event_times import local_midnight
from chronary.services.validation import check_metadata, check_reminders
from chronary.store import calendars as cal_store
from chronary.store import events as event_store
from chronary.store.db import Tx
from chronary.timeutil import from_ts, iso_ms, require_timezone, to_ts

# A front door's precondition (If-Match), run on the calendar as it is now inside the write transaction.
Check = Callable[[Calendar], None] | None

FIELDS = (
    "id",
    "org_id",
    "agent_id",
    "name",
    "timezone",
    "agent_status",
    "default_reminders",
    "metadata",
    "created_at",
    "updated_at",
)


def new_feed_token() -> str:
    """192 random bits, URL-safe: the token is the feed's only access control."""
    return secrets.token_urlsafe(24)


def feed_url(base_url: str, token: str) -> str:
    return f"{base_url}/ical/{token}.ics"


def webcal_url(url: str) -> str:
    """The subscription link calendar apps open (webcal:// is http(s):// by another name)."""
    scheme, sep, rest = url.partition("://")
    return f"webcal://{rest}" if sep and scheme in ("http", "https") else url


def present(row: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The dict form (webhook payloads; `ical_url` last, as payloads have always had it)."""
    out = {k: row[k] for k in FIELDS}
    url = feed_url(base_url, row["feed_token"])
    out["webcal_url"] = webcal_url(url)
    out["ical_url"] = url
    return out


def to_struct(row: dict[str, Any], base_url: str) -> Calendar:
    """The API shape of a store row (built directly: lists are hot paths, msgspec.convert is slower)."""
    url = feed_url(base_url, row["feed_token"])
    return Calendar(
        id=row["id"],
        org_id=row["org_id"],
        agent_id=row["agent_id"],
        name=row["name"],
        timezone=row["timezone"],
        agent_status=row["agent_status"],
        default_reminders=row["default_reminders"],
        metadata=row["metadata"],
        ical_url=url,
        webcal_url=webcal_url(url),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def load(tx: Tx, principal: Principal, calendar_id: str) -> dict[str, Any]:
    row = cal_store.get(tx.conn, calendar_id)
    if row is None or not principal.can_see_agent(row["agent_id"]):
        raise not_found("calendar", calendar_id)
    return row


def create(tx: Tx, ctx: Ctx, agent_id: str | None, data: CalendarCreate) -> Calendar:
    if agent_id is None:
        ctx.principal.require_org("org-level calendars")
    else:
        load_agent(tx, ctx.principal, agent_id)
    require_timezone(data.timezone, "timezone")
    now = iso_ms(tx.now)
    row: dict[str, Any] = {
        "id": ids.new_id("cal"),
        "org_id": ctx.principal.org_id,
        "agent_id": agent_id,
        "name": data.name,
        "timezone": data.timezone,
        "agent_status": data.agent_status,
        "default_reminders": check_reminders(data.default_reminders, "default_reminders"),
        "metadata": check_metadata(data.metadata),
        "feed_token": new_feed_token(),
        "revision": 0,
        "created_at": now,
        "updated_at": now,
    }
    cal_store.create(tx.conn, row)
    outbox.emit(tx, "calendar.created", present(row, ctx.base_url), agent_id=agent_id)
    return to_struct(row, ctx.base_url)


def get(tx: Tx, ctx: Ctx, calendar_id: str) -> Calendar:
    return to_struct(load(tx, ctx.principal, calendar_id), ctx.base_url)


def list_(tx: Tx, ctx: Ctx, agent_id: str | None, include_all: bool, limit: int, offset: int) -> Page[Calendar]:
    if agent_id is not None:
        load_agent(tx, ctx.principal, agent_id)
    elif not ctx.principal.is_org:
        # an agent key asking for "the org's calendars" sees only its own
        agent_id = ctx.principal.agent_id
    rows, total = cal_store.list_(tx.conn, agent_id=agent_id, include_agent_owned=include_all, limit=limit, offset=offset)
    return Page([to_struct(r, ctx.base_url) for r in rows], total, limit, offset)


def update(tx: Tx, ctx: Ctx, calendar_id: str, data: CalendarUpdate, check: Check = None) -> Calendar:
    row = load(tx, ctx.principal, calendar_id)
    changes = set_fields(data)
    if not changes:
        raise ValidationError("PATCH needs at least one field to change", None)
    if check is not None:
        check(to_struct(row, ctx.base_url))
    for required in ("name", "timezone", "agent_status"):
        if required in changes and changes[required] is None:
            raise ValidationError(f"{required} cannot be null", required)
    if "timezone" in changes:
        require_timezone(changes["timezone"], "timezone")
    if "default_reminders" in changes:
        changes["default_reminders"] = check_reminders(changes["default_reminders"], "default_reminders")
    if "metadata" in changes:
        changes["metadata"] = check_metadata(changes["metadata"])
    changes["updated_at"] = iso_ms(tx.now)
    cal_store.patch(tx.conn, calendar_id, changes)
    cal_store.bump_revision(tx.conn, calendar_id)
    after_row = {**row, **changes}
    if "timezone" in changes and changes["timezone"] != row["timezone"]:
        # the fresh row (its bumped revision too); it is always there, patched just above
        _reanchor_all_day(tx, cal_store.get(tx.conn, calendar_id) or after_row, row["timezone"])
    before, after = present(row, ctx.base_url), present(after_row, ctx.base_url)
    outbox.emit(tx, "calendar.updated", after, agent_id=row["agent_id"], previous=outbox.changed_fields(before, after))
    return to_struct(after_row, ctx.base_url)


def delete(tx: Tx, ctx: Ctx, calendar_id: str, check: Check = None) -> None:
    """Deletes its events too (FK cascade); its feed answers 404 from then on."""
    row = load(tx, ctx.principal, calendar_id)
    if check is not None:
        check(to_struct(row, ctx.base_url))
    before = present(row, ctx.base_url)
    cal_store.delete(tx.conn, calendar_id)
    outbox.emit(tx, "calendar.deleted", before, agent_id=row["agent_id"])


def _reanchor_all_day(tx: Tx, calendar: dict[str, Any], old_timezone: str) -> None:
    """All-day events are dates in the calendar's timezone: keep their dates when it changes.

    They are stored as the instants of local midnight, so a new timezone moves those instants
    (2030-07-01 in Berlin is 2030-06-30T22:00Z; in New York it is 2030-07-01T04:00Z).
    """
    old, new = ZoneInfo(old_timezone), ZoneInfo(calendar["timezone"])

    def moved(ts: int) -> int:
        return to_ts(local_midnight(from_ts(ts).astimezone(old).date(), new).astimezone(UTC))

    for event_id in cal_store.all_day_event_ids(tx.conn, calendar["id"]):
        row = event_store.get(tx.conn, event_id)
        if row is None:
            continue
        values: dict[str, Any] = {"start_ts": moved(row["start_ts"]), "end_ts": moved(row["end_ts"])}
        if row["recurrence_id_ts"] is not None:
            values["recurrence_id_ts"] = moved(row["recurrence_id_ts"])
        if values["start_ts"] == row["start_ts"] and values["end_ts"] == row["end_ts"]:
            continue  # same UTC offset at those dates: nothing moves
        values.update(sequence=row["sequence"] + 1, updated_at=iso_ms(tx.now))
        event_store.patch(tx.conn, event_id, values)
        after_row = {**row, **values}
        before = present_event(row, {**calendar, "timezone": old_timezone})
        after = present_event(after_row, calendar)
        change = changes.Change(
            "event.updated",
            after,
            previous=changes.changed_fields(before, after),
            agent_id=calendar["agent_id"],
            origin="system",  # moved by the server to keep its dates, not edited by anyone
            kind="updated",
            before=row,
            after=after_row,
            calendar=calendar,
        )
        changes.record(tx, change)
