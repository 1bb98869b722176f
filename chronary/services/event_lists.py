"""Reading events: per calendar or per agent, with filters, paging, and — when a window is
given on both sides — recurring series expanded into their occurrences. Pages of `Event` structs."""

from __future__ import annotations

from typing import Any

from chronary.errors import ValidationError
from chronary.schemas.events import Event
from chronary.services import occurrences
from chronary.services.agents import load as load_agent
from chronary.services.calendars import load as load_calendar
from chronary.services.context import Ctx, Page
from chronary.services.events import calendar_of, to_struct
from chronary.store import events as event_store
from chronary.store.db import Tx
from chronary.store.events import EventFilter
from chronary.timeutil import parse_instant, to_ts


def _filter_times(start_after: str | None, start_before: str | None) -> tuple[int | None, int | None]:
    after = to_ts(parse_instant(start_after, "start_after")) if start_after else None
    before = to_ts(parse_instant(start_before, "start_before")) if start_before else None
    if after is not None and before is not None and before <= after:
        raise ValidationError("start_before must be after start_after", "start_before")
    return after, before


def list_for_calendar(
    tx: Tx,
    ctx: Ctx,
    calendar_id: str,
    start_after: str | None,
    start_before: str | None,
    status: str | None,
    source: str | None,
    limit: int,
    offset: int,
) -> Page[Event]:
    calendar = load_calendar(tx, ctx.principal, calendar_id)
    after, before = _filter_times(start_after, start_before)
    f = EventFilter(calendar_id=calendar_id, start_after=after, start_before=before, status=status, source=source)
    if after is not None and before is not None:
        rows, total = _expanded(tx, f, {calendar_id: calendar}, limit, offset)
    else:
        rows, total = event_store.list_(tx.conn, f, limit, offset)
    return Page([to_struct(r, calendar) for r in rows], total, limit, offset)


def _expanded(
    tx: Tx, f: EventFilter, calendars: dict[str, dict[str, Any]], limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A window given on both sides: occurrences of series (each with its own id and
    recurring_event_id) instead of the stored masters, starting inside the window."""
    assert f.start_after is not None and f.start_before is not None
    rows = [
        r
        for r in occurrences.in_window(tx, f, f.start_after, f.start_before, calendars)
        if f.start_after <= r["start_ts"] < f.start_before
    ]
    return rows[offset : offset + limit], len(rows)


def list_for_agent(
    tx: Tx,
    ctx: Ctx,
    agent_id: str,
    start_after: str | None,
    start_before: str | None,
    status: str | None,
    source: str | None,
    limit: int,
    offset: int,
) -> Page[Event]:
    load_agent(tx, ctx.principal, agent_id)
    after, before = _filter_times(start_after, start_before)
    f = EventFilter(agent_id=agent_id, start_after=after, start_before=before, status=status, source=source)
    calendars: dict[str, dict[str, Any]] = {}
    if after is not None and before is not None:
        rows, total = _expanded(tx, f, calendars, limit, offset)
    else:
        rows, total = event_store.list_(tx.conn, f, limit, offset)
    items = []
    for r in rows:
        cal = calendars.get(r["calendar_id"])
        if cal is None:
            cal = calendars[r["calendar_id"]] = calendar_of(tx, r)
        items.append(to_struct(r, cal))
    return Page(items, total, limit, offset)
