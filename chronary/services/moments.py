"""Time-based moments of events: event.started, event.ended and event.reminder, each exactly once.

A moment is an instant of one occurrence (a single event, a generated occurrence of a series, or
a stored exception — everything `occurrences.in_window` yields, exceptions applied):
- `event.started` at its start, `event.ended` at its end;
- `event.reminder` at each of its reminder minutes before the start: the event's `reminders`,
  or the calendar's `default_reminders` when the event has none (null) — exactly the minutes
  that become VALARM `TRIGGER:-PT<m>M` in feeds (ical/render.py).

Which occurrences fire: status confirmed or tentative (`FIRING_STATUSES`). Cancelled ones never
fire (a cancelled exception hides its occurrence; a deleted occurrence is an EXDATE and is not
generated at all). Holds do not fire either: a hold is a provisional reservation that becomes an
event only when confirmed (then it fires like any event) and otherwise expires or is released;
reminders or "started" for an unsettled hold would announce a meeting that may never be.
`occurrences_at` and `reminder_moments` take `statuses` for a caller that wants others.

All-day events are stored as the instants of local midnight in the calendar's timezone (see
event_times.resolve), so they start at 00:00 of their first day there and end at 00:00 after
their last; a 15-minute reminder of an all-day event is 23:45 the evening before, local time.

Firing (`fire_due`, run by workers/moments.py about every second): a persisted cursor
(`moments_state`) is the last instant scanned. A scan covers (max(cursor, now - grace), now],
records one change per moment found (webhook type, data.object = the occurrence in the API
shape, with `reminder_minutes` added for event.reminder; agent = the calendar's agent, origin
"system") and moves the cursor to now, all in one transaction. Every moment recorded is also
kept in `moments_fired` (INSERT OR IGNORE on kind, occurrence id, minutes and instant), so a
scan that covers the same instants again never fires twice; because the instant is part of the
key, an event moved to a later time fires again at its new time. After downtime, moments missed
by more than the grace are skipped (counted in the result); a scan always reaches back at least
`MIN_GRACE_SECONDS`, so ordinary scheduling delays never drop one, even with a grace of 0. The
first scan ever only sets the cursor: nothing that happened before moments existed fires. The
cursor never moves back, so a clock set backwards fires nothing twice.

Changes are recorded through `changes.record` like every other change: they reach the change
log (webhooks, automation) and the in-transaction listeners; with kind None they are not event
row changes (no calendar revision moves). Each moment is recorded in its own savepoint, so one
that fails (a listener raising on odd data) is logged and skipped without undoing the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from chronary.services import changes, occurrences
from chronary.services.changes import Change
from chronary.services.event_present import present
from chronary.store import calendars as cal_store
from chronary.store import moments as store
from chronary.store.db import Tx
from chronary.store.events import EventFilter
from chronary.timeutil import iso_ms

log = logging.getLogger("chronary.moments")

STARTED, ENDED, REMINDER = "event.started", "event.ended", "event.reminder"
FIRING_STATUSES: tuple[str, ...] = ("confirmed", "tentative")
MIN_GRACE_SECONDS = 60  # a scan always reaches back this far (worker delays are not downtime)
PRUNE_MARGIN_SECONDS = 2 * 86400  # fired moments kept this long beyond the reach of any scan
SKIP_COUNT_SECONDS = 7 * 86400  # after longer downtime, skipped moments are counted this far back
_ORDER = {ENDED: 0, STARTED: 1, REMINDER: 2}  # at one instant: one meeting ends, the next starts

Edge = Literal["start", "end"]
Calendars = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Moment:
    """One moment: its webhook type, instant, reminder minutes (0 unless event.reminder), and
    the occurrence row (store shape) with its calendar row."""

    kind: str
    at_ts: int
    minutes: int
    row: dict[str, Any]
    calendar: dict[str, Any]

    @property
    def event_id(self) -> str:
        return str(self.row["id"])

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.kind, self.event_id, self.minutes, self.at_ts)

    def payload(self) -> dict[str, Any]:
        """data.object of its change: the occurrence as the API shows it (+ reminder_minutes)."""
        obj = present(self.row, self.calendar)
        if self.kind == REMINDER:
            obj["reminder_minutes"] = self.minutes
        return obj


@dataclass
class FireResult:
    """What one `fire_due` did. `scanned` is the window (after, until] it covered (None: nothing
    to scan — the first scan, or a clock behind the cursor); `skipped` counts moments missed by
    more than the grace (looked for at most SKIP_COUNT_SECONDS back)."""

    fired: list[Moment] = field(default_factory=list)
    skipped: int = 0
    scanned: tuple[int, int] | None = None
    skipped_window: tuple[int, int] | None = None
    first_scan: bool = False
    failed: int = 0
    pruned: int = 0


# -- finding moments -------------------------------------------------------------------------------

_reported: set[str] = set()


def _report_once(key: str, message: str, *args: Any) -> None:
    """Log bad data once per process (the scanner meets it again every second)."""
    if key not in _reported:
        _reported.add(key)
        log.warning(message, *args, exc_info=True)


def _calendar(tx: Tx, calendars: Calendars, calendar_id: str) -> dict[str, Any] | None:
    cal = calendars.get(calendar_id)
    if cal is None:
        cal = cal_store.get(tx.conn, calendar_id)
        if cal is not None:
            calendars[calendar_id] = cal
    return cal


def _in_window(tx: Tx, start_ts: int, end_ts: int, calendars: Calendars) -> list[dict[str, Any]]:
    """Every occurrence overlapping [start_ts, end_ts) in every calendar. A calendar whose data
    cannot be expanded (a broken recurrence rule, a zone that is gone) is left out and logged,
    so it never stops the moments of the others."""
    try:
        return occurrences.in_window(tx, EventFilter(), start_ts, end_ts, calendars)
    except Exception:
        rows: list[dict[str, Any]] = []
        for calendar_id in store.calendar_ids(tx.conn):
            try:
                rows.extend(occurrences.in_window(tx, EventFilter(calendar_id=calendar_id), start_ts, end_ts, calendars))
            except Exception:
                _report_once(f"calendar:{calendar_id}", "moments: cannot expand the events of calendar %s", calendar_id)
        return rows


def _edge_rows(
    tx: Tx,
    edge: Edge,
    minutes_before: int,
    after_ts: int,
    until_ts: int,
    statuses: Iterable[str],
    calendars: Calendars,
) -> list[tuple[dict[str, Any], int]]:
    """(occurrence row, moment) for every occurrence whose `edge` minus `minutes_before` lies in
    (after_ts, until_ts]. The window asked of in_window is that range shifted by the minutes:
    an occurrence starting (or ending) at t in (a, u] overlaps [a, u + 1) since start ≤ end."""
    if until_ts <= after_ts:
        return []
    shift = minutes_before * 60
    wanted = set(statuses)
    out: list[tuple[dict[str, Any], int]] = []
    for row in _in_window(tx, after_ts + shift, until_ts + shift + 1, calendars):
        if row["status"] not in wanted:
            continue
        at = int(row["start_ts" if edge == "start" else "end_ts"]) - shift
        if after_ts < at <= until_ts:
            out.append((row, at))
    return out


def _effective_reminders(row: dict[str, Any], calendar: dict[str, Any]) -> list[int]:
    """As feeds render VALARMs: the event's list, else (null) the calendar's defaults."""
    value = row.get("reminders")
    if value is None:
        value = calendar.get("default_reminders")
    if not isinstance(value, list):
        return []
    return [m for m in value if isinstance(m, int) and not isinstance(m, bool) and m > 0]


def _moments(
    tx: Tx, after_ts: int, until_ts: int, calendars: Calendars, statuses: Iterable[str] = FIRING_STATUSES
) -> list[Moment]:
    """Every moment in (after_ts, until_ts], in firing order (instant, type, occurrence id)."""
    statuses = tuple(statuses)
    found: list[Moment] = []

    def add(kind: str, minutes: int, pairs: list[tuple[dict[str, Any], int]]) -> None:
        for row, at in pairs:
            cal = _calendar(tx, calendars, row["calendar_id"])
            if cal is None:
                continue
            if kind == REMINDER and minutes not in _effective_reminders(row, cal):
                continue
            found.append(Moment(kind, at, minutes, row, cal))

    add(STARTED, 0, _edge_rows(tx, "start", 0, after_ts, until_ts, statuses, calendars))
    add(ENDED, 0, _edge_rows(tx, "end", 0, after_ts, until_ts, statuses, calendars))
    for minutes in store.reminder_minutes_in_use(tx.conn):
        add(REMINDER, minutes, _edge_rows(tx, "start", minutes, after_ts, until_ts, statuses, calendars))
    found.sort(key=lambda m: (m.at_ts, _ORDER[m.kind], m.event_id, m.minutes))
    return found


def occurrences_at(
    tx: Tx,
    edge: Edge,
    minutes_before: int,
    after_ts: int,
    until_ts: int,
    *,
    statuses: Iterable[str] = FIRING_STATUSES,
) -> list[tuple[dict[str, Any], int]]:
    """Every occurrence whose `edge` ("start" or "end") minus `minutes_before` minutes falls in
    (after_ts, until_ts], as (the occurrence row, that moment in unix seconds), ordered by moment
    then id. E.g. edge="start", minutes_before=15: what starts in 15 minutes.

    Rows are in the store shape `occurrences.in_window` yields (start_ts, end_ts, calendar_id,
    recurring_event_id …); `event_present.present(row, calendar)` gives the API shape."""
    if edge not in ("start", "end"):
        raise ValueError(f"edge must be 'start' or 'end', not {edge!r}")
    out = _edge_rows(tx, edge, minutes_before, after_ts, until_ts, statuses, {})
    out.sort(key=lambda pair: (pair[1], pair[0]["id"]))
    return out


def reminder_moments(
    tx: Tx, after_ts: int, until_ts: int, *, statuses: Iterable[str] = FIRING_STATUSES
) -> list[tuple[dict[str, Any], int, int]]:
    """Every reminder falling in (after_ts, until_ts]: (the occurrence row as in `occurrences_at`,
    its reminder minutes, the moment = start - minutes), ordered by moment, id and minutes."""
    return [(m.row, m.minutes, m.at_ts) for m in _moments(tx, after_ts, until_ts, {}, statuses) if m.kind == REMINDER]


# -- firing --------------------------------------------------------------------------------------


def _floor(now_ts: int, grace_seconds: int) -> int:
    return now_ts - max(int(grace_seconds), MIN_GRACE_SECONDS)


def next_due(tx: Tx, now_ts: int, grace_seconds: int, horizon_ts: int, *, scanned_ts: int | None = None) -> int | None:
    """Read-only: when `fire_due` next has work — `now_ts` if it has some now (the first scan,
    catching up after downtime, or a moment already due), else the earliest moment up to
    `horizon_ts`, else None. `scanned_ts` as in fire_due. Lets the worker write only when there
    is something to write (every commit wakes all the workers)."""
    stored = store.cursor(tx.conn)
    if stored is None:
        return now_ts
    cursor = stored if scanned_ts is None else max(stored, scanned_ts)
    if cursor < _floor(now_ts, grace_seconds):
        return now_ts
    if horizon_ts <= cursor:
        return None
    found = _moments(tx, cursor, horizon_ts, {})
    return found[0].at_ts if found else None


def fire_due(tx: Tx, now_ts: int, grace_seconds: int, *, scanned_ts: int | None = None) -> FireResult:
    """Fire every moment in (max(cursor, now - grace), now] not fired yet, move the cursor to
    now, and prune what no scan can reach any more — in the caller's write transaction.

    `scanned_ts`: an instant up to which the caller has already found nothing to fire since the
    stored cursor (the worker checks read-only between writes); the scan starts after it."""
    result = FireResult()
    stored = store.cursor(tx.conn)
    floor = _floor(now_ts, grace_seconds)
    if stored is None:
        store.set_cursor(tx.conn, now_ts)
        result.first_scan = True
        return result
    cursor = stored if scanned_ts is None else max(stored, scanned_ts)
    calendars: Calendars = {}
    if cursor < floor:
        since = max(cursor, floor - SKIP_COUNT_SECONDS)
        done = store.fired_keys(tx.conn, since, floor)
        result.skipped = sum(1 for m in _moments(tx, since, floor, calendars) if m.key not in done)
        result.skipped_window = (since, floor)
    after = max(cursor, floor)
    if after < now_ts:
        result.scanned = (after, now_ts)
        fired_at = iso_ms(tx.now)
        for moment in _moments(tx, after, now_ts, calendars):
            try:
                with store.savepoint(tx.conn):
                    if not store.mark_fired(tx.conn, *moment.key, fired_at):
                        continue  # fired by an earlier scan of the same instant
                    changes.record(
                        tx,
                        Change(
                            moment.kind,
                            moment.payload(),
                            agent_id=moment.calendar["agent_id"],
                            origin="system",
                            calendar=moment.calendar,
                        ),
                    )
            except Exception:
                result.failed += 1
                log.exception("moments: could not fire %s of %s at %d", moment.kind, moment.event_id, moment.at_ts)
                continue
            result.fired.append(moment)
    store.set_cursor(tx.conn, now_ts)
    result.pruned = store.prune(tx.conn, floor - PRUNE_MARGIN_SECONDS)
    return result
