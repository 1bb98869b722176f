"""SQL for iCal feeds: what a feed shows, its token, and when its content last changed."""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass
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
_JOINED = """FROM events e LEFT JOIN events m ON m.id = e.recurring_event_id AND m.calendar_id = e.calendar_id
       AND m.recurrence IS NOT NULL AND m.recurrence != '[]' AND m.recurring_event_id IS NULL"""
_WINDOW = "(e.recurrence IS NOT NULL OR e.recurring_event_id IS NOT NULL OR e.end_ts > ?)"
_IN_WINDOW = f"e.calendar_id = ? AND {_WINDOW}"
_IS_SHOWN = "e.status != 'cancelled' AND (e.recurring_event_id IS NULL OR (m.id IS NOT NULL AND m.status != 'cancelled'))"
_SHOWN = f"{_JOINED} WHERE {_IN_WINDOW} AND {_IS_SHOWN}"
# A row's id and own columns a change made in the same millisecond as the newest row (or under a
# stopped clock) shows in, besides updated_at: the sequence moves on every change but transparency.
_TIE = """(e.id || ':' || e.sequence || ':' || ifnull(e.transparency, '') || ':' || e.status || ':' || e.start_ts
           || ':' || e.end_ts || ':' || ifnull(e.recurrence, '') || ':' || ifnull(e.remote, ''))"""
_ORDER = "ORDER BY e.start_ts, e.id"
# everything a shown row's VEVENT depends on besides the calendar (its zone and default reminders)
_VERSION = """e.id, e.updated_at, e.sequence, e.transparency, CASE WHEN m.id IS NULL THEN e.ical_uid ELSE m.ical_uid END,
       m.updated_at, CASE WHEN e.remote IS NOT NULL AND json_valid(e.remote) THEN json_extract(e.remote, '$.tzid') END,
       CASE WHEN e.recurrence IS NOT NULL AND e.recurrence != '[]' THEN
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


def feed_span(
    conn: apsw.Connection, calendar_id: str, since_ts: int, after: tuple[int, str] | None, before: tuple[int, str] | None
) -> Iterator[tuple[Any, ...]]:
    """(id, start_ts, *version) of the shown rows strictly between two (start_ts, id) feed
    positions (None: the feed's start or end), in feed order: found through the start index,
    not counted; `version` is what `feed_versions` hashes, so a caller can check the rows."""
    where, args = "", [calendar_id, since_ts]
    if after is not None:
        where += " AND e.start_ts >= ? AND (e.start_ts > ? OR e.id > ?)"
        args += [after[0], after[0], after[1]]
    if before is not None:
        where += " AND e.start_ts <= ? AND (e.start_ts < ? OR e.id < ?)"
        args += [before[0], before[0], before[1]]
    return _plain(conn).execute(f"SELECT e.id, e.start_ts, {_VERSION} {_SHOWN}{where} {_ORDER}", args)


def feed_positions(
    conn: apsw.Connection, calendar_id: str, since_ts: int, ranges: list[tuple[int, int]]
) -> Iterator[list[tuple[Any, ...]]]:
    """(id, start_ts) of the shown rows at positions [a, b) of each range (sorted, apart), in
    one pass counting every row."""
    cursor = _plain(conn).execute(f"SELECT e.id, e.start_ts {_SHOWN} {_ORDER}", (calendar_id, since_ts))
    position = 0
    for a, b in ranges:
        rows: list[tuple[Any, ...]] = []
        for row in cursor:
            if position >= a:
                rows.append(row)
            position += 1
            if position >= b:
                break
        yield rows


@dataclass(frozen=True)
class FeedStats:
    shown: int  # rows the feed shows
    first: int | None  # earliest start and newest updated_at over every row in the window,
    newest: str | None  # cancelled ones included
    zones: set[Any]  # remote.tzid of shown timed rows (an override's is its series'); NULL: none
    changed: list[str]  # rows updated after `newer_than` or stored at or after `rowid_from`
    tied: frozenset[str]  # `_TIE` of the rows updated at `newer_than` itself
    rowid: int  # the events table's largest rowid: every row stored later has a larger one


def feed_stats(
    conn: apsw.Connection, calendar_id: str, since_ts: int, newer_than: str | None = None, rowid_from: int | None = None
) -> FeedStats:
    """What a build needs besides the VEVENTs, and which rows changed since the previous build,
    in one pass over the calendar's rows in the window without a Python-level loop."""
    row = (
        _plain(conn)
        .execute(
            f"""SELECT count(*) FILTER (WHERE {_IS_SHOWN}), min(e.start_ts), max(e.updated_at),
                  json_group_array(DISTINCT CASE
                    WHEN m.id IS NULL THEN (CASE WHEN e.remote IS NOT NULL AND json_valid(e.remote)
                                            THEN json_extract(e.remote, '$.tzid') END)
                    WHEN m.all_day = 0 AND json_valid(m.remote) THEN json_extract(m.remote, '$.tzid') END)
                    FILTER (WHERE {_IS_SHOWN} AND e.all_day = 0),
                  json_group_array(e.id) FILTER (WHERE e.updated_at > ?1 OR e.rowid >= ?2),
                  json_group_array({_TIE}) FILTER (WHERE e.updated_at = ?1),
                  (SELECT max(rowid) FROM events)
                {_JOINED} WHERE e.calendar_id = ?3 AND {_WINDOW}""",
            (
                "~" if newer_than is None else newer_than,  # "~" sorts after every ISO timestamp
                2**62 if rowid_from is None else rowid_from,
                calendar_id,
                since_ts,
            ),
        )
        .fetchone()
    )
    assert row is not None  # an aggregate always answers one row
    shown, first, newest, zones, changed, tied, rowid = row
    return FeedStats(shown, first, newest, set(loads(zones)), loads(changed), frozenset(loads(tied)), rowid or 0)


def feed_tie(conn: apsw.Connection, calendar_id: str, since_ts: int, newest: str, ids: list[str] | None) -> frozenset[str]:
    """What `feed_stats` gives as `tied` for rows updated at `newest`: those among `ids` (when
    every such row is one of them), else found by a pass over the window."""
    where = f"e.calendar_id = ? AND {_WINDOW} AND e.updated_at = ?"
    args: list[Any] = [calendar_id, since_ts, newest]
    if ids is not None:
        if not ids:
            return frozenset()
        where += f" AND e.id IN ({', '.join('?' * len(ids))})"
        args += ids
    return frozenset(tie for (tie,) in _plain(conn).execute(f"SELECT {_TIE} FROM events e WHERE {where}", args))


def feed_related(conn: apsw.Connection, calendar_id: str, ids: list[str]) -> set[str]:
    """The rows whose VEVENT depends on these: the series of exceptions among them (EXDATEs)
    and the exceptions of series among them (UID, zone)."""
    out: set[str] = set()
    for start in range(0, len(ids), 500):
        batch = ids[start : start + 500]
        marks = ", ".join("?" * len(batch))
        rows = _plain(conn).execute(
            f"""SELECT recurring_event_id FROM events WHERE id IN ({marks}) AND recurring_event_id IS NOT NULL
                UNION SELECT id FROM events WHERE recurring_event_id IN ({marks}) AND +calendar_id = ?""",
            (*batch, *batch, calendar_id),
        )
        out.update(eid for (eid,) in rows)
    return out


def feed_current(conn: apsw.Connection, calendar_id: str, since_ts: int, ids: list[str]) -> list[tuple[Any, ...]]:
    """(id, start_ts, *version) of those of these rows the feed shows (as `feed_span` gives them)."""
    out: list[tuple[Any, ...]] = []
    for start in range(0, len(ids), 500):
        batch = ids[start : start + 500]
        sql = f"SELECT e.id, e.start_ts, {_VERSION} {_SHOWN} AND e.id IN ({', '.join('?' * len(batch))})"
        out.extend(_plain(conn).execute(sql, (calendar_id, since_ts, *batch)))
    return out


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
