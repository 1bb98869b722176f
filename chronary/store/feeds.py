"""SQL for iCal feeds: what a feed shows, its token, and when its content last changed."""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from typing import Any

import apsw

from chronary.store.rows import loads, one

FEED_COLUMNS = (
    "id",
    "ical_uid",
    "title",
    "description",
    "location",
    "start_ts",
    "end_ts",
    "all_day",
    "status",
    "reminders",
    "recurrence",
    "recurring_event_id",
    "recurrence_id_ts",
    "attendees",
    "remote",
    "sequence",
    "created_at",
    "updated_at",
    "transparency",
)
_FEED_JSON = ("reminders", "recurrence", "attendees", "remote")


# The rows a feed shows, each with its series master when it overrides an occurrence: every
# master and exception plus single events ending after the window start; cancelled events and
# exceptions whose series is gone or cancelled are left out (a cancelled occurrence is an EXDATE).
_SHOWN = """FROM events e LEFT JOIN events m ON m.id = e.recurring_event_id AND m.calendar_id = e.calendar_id
       AND m.recurrence IS NOT NULL AND m.recurrence != '[]' AND m.recurring_event_id IS NULL
     WHERE e.calendar_id = ? AND (e.recurrence IS NOT NULL OR e.recurring_event_id IS NOT NULL OR e.end_ts > ?)
       AND e.status != 'cancelled' AND (e.recurring_event_id IS NULL OR (m.id IS NOT NULL AND m.status != 'cancelled'))"""
_ALL = "FROM events WHERE calendar_id = ? AND (recurrence IS NOT NULL OR recurring_event_id IS NOT NULL OR end_ts > ?)"
_ORDER = "ORDER BY e.start_ts, e.id"
# everything a shown row's VEVENT depends on besides the calendar (its zone and default reminders)
_VERSION = """e.id, e.updated_at, e.sequence, e.transparency, CASE WHEN m.id IS NULL THEN e.ical_uid ELSE m.ical_uid END,
       m.updated_at, CASE WHEN e.recurrence IS NOT NULL AND e.recurrence != '[]' THEN
         (SELECT group_concat(x.recurrence_id_ts) FROM events x WHERE x.recurring_event_id = e.id
           AND x.recurring_event_id IS NOT NULL AND +x.calendar_id = e.calendar_id AND x.status = 'cancelled'
           AND x.recurrence_id_ts IS NOT NULL) END"""


def _plain(conn: apsw.Connection) -> apsw.Cursor:
    cursor = conn.cursor()
    cursor.row_trace = lambda _cursor, row: row
    return cursor


def feed_versions(conn: apsw.Connection, calendar_id: str, since_ts: int) -> array[int]:
    """One number per shown row, in feed order, that changes whenever the row's VEVENT would:
    the hash of `_VERSION`, computed without a Python-level loop (no object is kept per row)."""
    cursor = _plain(conn).execute(f"SELECT {_VERSION} {_SHOWN} {_ORDER}", (calendar_id, since_ts))
    return array("q", map(hash, cursor))


def feed_ids(conn: apsw.Connection, calendar_id: str, since_ts: int, ranges: list[tuple[int, int]]) -> Iterator[list[str]]:
    """The ids of the shown rows at positions [a, b) of each range (sorted, not overlapping)."""
    if len(ranges) <= 4:  # a few chunks changed: skip to each
        for a, b in ranges:
            sql = f"SELECT e.id {_SHOWN} {_ORDER} LIMIT ? OFFSET ?"
            yield [eid for (eid,) in _plain(conn).execute(sql, (calendar_id, since_ts, b - a, a))]
        return
    cursor = _plain(conn).execute(f"SELECT e.id {_SHOWN} {_ORDER}", (calendar_id, since_ts))
    position = 0
    for a, b in ranges:
        ids: list[str] = []
        for (eid,) in cursor:
            if position >= a:
                ids.append(eid)
            position += 1
            if position >= b:
                break
        yield ids


def feed_summary(conn: apsw.Connection, calendar_id: str, since_ts: int) -> tuple[int | None, str | None]:
    """(earliest start, newest updated_at) over every row in the window, cancelled ones included."""
    row = _plain(conn).execute(f"SELECT min(start_ts), max(updated_at) {_ALL}", (calendar_id, since_ts)).fetchone()
    return (None, None) if row is None else (row[0], row[1])


def feed_zones(conn: apsw.Connection, calendar_id: str, since_ts: int) -> set[Any]:
    """The `remote.tzid` values of shown timed rows (an override's is its series'): the zones the
    feed needs a VTIMEZONE for besides the calendar's; NULL where there is none."""
    sql = f"""SELECT DISTINCT CASE
                  WHEN m.id IS NULL THEN (CASE WHEN json_valid(e.remote) THEN json_extract(e.remote, '$.tzid') END)
                  WHEN m.all_day = 0 AND json_valid(m.remote) THEN json_extract(m.remote, '$.tzid') END
               {_SHOWN} AND e.all_day = 0"""
    return {zone for (zone,) in _plain(conn).execute(sql, (calendar_id, since_ts))}


def feed_exdates(conn: apsw.Connection, calendar_id: str, series_ids: list[str]) -> dict[str, list[int]]:
    """The original starts of the cancelled occurrences of these series, by series id."""
    out: dict[str, list[int]] = {}
    for start in range(0, len(series_ids), 500):
        batch = series_ids[start : start + 500]
        rows = _plain(conn).execute(
            f"""SELECT recurring_event_id, recurrence_id_ts FROM events WHERE +calendar_id = ?
                 AND recurring_event_id IN ({", ".join("?" * len(batch))})
                 AND status = 'cancelled' AND recurrence_id_ts IS NOT NULL""",
            (calendar_id, *batch),
        )
        for series, original in rows:
            out.setdefault(series, []).append(original)
    return out


def _row(values: tuple[Any, ...]) -> dict[str, Any]:
    row = dict(zip(FEED_COLUMNS, values, strict=True))
    for col in _FEED_JSON:
        if row[col] is not None:
            row[col] = loads(row[col])
    return row


def feed_rows(conn: apsw.Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The FEED_COLUMNS of these events by id (the ones a build has to render)."""
    cursor = _plain(conn)
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        batch = ids[start : start + 500]
        marks = ", ".join("?" * len(batch))
        for values in cursor.execute(f"SELECT {', '.join(FEED_COLUMNS)} FROM events WHERE id IN ({marks})", batch):
            out[values[0]] = _row(values)
    return out


def set_token(conn: apsw.Connection, calendar_id: str, token: str) -> None:
    conn.execute("UPDATE calendars SET feed_token = ? WHERE id = ?", (token, calendar_id))


def touch(conn: apsw.Connection, calendar_id: str, changed_at: str) -> None:
    conn.execute(
        """INSERT INTO feed_state (calendar_id, changed_at) VALUES (?, ?)
           ON CONFLICT (calendar_id) DO UPDATE SET changed_at = excluded.changed_at""",
        (calendar_id, changed_at),
    )


def changed_at(conn: apsw.Connection, calendar_id: str) -> str | None:
    row = one(conn, "SELECT changed_at FROM feed_state WHERE calendar_id = ?", (calendar_id,))
    return None if row is None else row["changed_at"]
