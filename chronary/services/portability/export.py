"""One calendar as one VCALENDAR: every event, past and future, with the feed renderer's VEVENTs.

Unlike the published feed (a window, cancelled events left out, cancelled occurrences folded
into EXDATEs), an export is everything the calendar holds: series masters with their rules,
RDATEs and EXDATEs, each stored override as a RECURRENCE-ID VEVENT (a cancelled one with
STATUS:CANCELLED), cancelled single events too. Each VEVENT is `ical.render.render_vevent`
and the whole is `ical.render.render_calendar`, so an export reads exactly like the feed does
(VTIMEZONEs, TZIDs, all-day dates). Reminders are each event's own (a calendar's default
reminders are a calendar setting, kept in the org export's manifest), so `import ics` reads an
export back to the same events.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chronary.ical import render
from chronary.services.calendars import load as load_calendar
from chronary.services.context import Ctx
from chronary.store import events as event_store
from chronary.store.db import Tx
from chronary.store.events import EventFilter

PAGE = 1000


def stored_rows(tx: Tx, calendar_id: str) -> list[dict[str, Any]]:
    """Every stored row of the calendar (masters, single events, overrides), unwindowed."""
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        rows, total = event_store.list_(tx.conn, EventFilter(calendar_id=calendar_id), PAGE, offset)
        out.extend(rows)
        offset += len(rows)
        if not rows or offset >= total:
            return out


def ordered(rows: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(row, its master or None) in a stable order: masters by start and UID, each followed by
    its overrides by original start. An override whose series is gone has nothing to override."""
    masters = [r for r in rows if not r["recurring_event_id"]]
    by_series: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["recurring_event_id"]:
            by_series.setdefault(r["recurring_event_id"], []).append(r)
    for master in sorted(masters, key=lambda r: (r["start_ts"], r["ical_uid"], r["id"])):
        yield master, None
        for ov in sorted(by_series.get(master["id"], []), key=lambda r: (r["recurrence_id_ts"] or 0, r["id"])):
            yield ov, master


def render_rows(calendar: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    tz = calendar["timezone"]
    vevents: list[str] = []
    tzids: set[str] = set()
    first = None
    for row, master in ordered(rows):
        uid = master["ical_uid"] if master else row["ical_uid"]
        vevents.append(render.render_vevent(row, tz, None, uid=uid, master=master))
        if not row["all_day"]:
            tzids.add(render.event_tzid(master or row, tz))
        first = row["start_ts"] if first is None else min(first, row["start_ts"])
    return render.render_calendar(calendar["name"], tz, tzids, render.first_year(first or 0), vevents)


def calendar_ics(tx: Tx, ctx: Ctx, calendar_id: str) -> tuple[dict[str, Any], str, list[dict[str, Any]]]:
    """(calendar row, VCALENDAR text, the rows it holds) of one calendar the principal may see."""
    calendar = load_calendar(tx, ctx.principal, calendar_id)
    rows = stored_rows(tx, calendar_id)
    return calendar, render_rows(calendar, rows), rows
