"""Events table: stored events (series masters, single events and occurrence exceptions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apsw

from chronary.store.rows import decode, insert, one, page, update

JSON = ("reminders", "recurrence", "attendees", "metadata", "remote")


@dataclass
class EventFilter:
    calendar_id: str | None = None
    agent_id: str | None = None
    start_after: int | None = None  # start_ts >= this
    start_before: int | None = None  # start_ts < this
    status: str | None = None
    source: str | None = None


def _where(f: EventFilter) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if f.calendar_id is not None:
        where.append("calendar_id = ?")
        params.append(f.calendar_id)
    if f.agent_id is not None:
        where.append("calendar_id IN (SELECT id FROM calendars WHERE agent_id = ?)")
        params.append(f.agent_id)
    if f.start_after is not None:
        where.append("start_ts >= ?")
        params.append(f.start_after)
    if f.start_before is not None:
        where.append("start_ts < ?")
        params.append(f.start_before)
    if f.status is not None:
        where.append("status = ?")
        params.append(f.status)
    if f.source is not None:
        where.append("source = ?")
        params.append(f.source)
    return where, params


def create(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, "events", row, JSON)


def get(conn: apsw.Connection, event_id: str) -> dict[str, Any] | None:
    return decode(one(conn, "SELECT * FROM events WHERE id = ?", (event_id,)), JSON)


def list_(conn: apsw.Connection, f: EventFilter, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    where, params = _where(f)
    rows, total = page(conn, "events", where, params, "start_ts, id", limit, offset)
    return [decode(r, JSON) for r in rows], total


def patch(conn: apsw.Connection, event_id: str, values: dict[str, Any]) -> None:
    update(conn, "events", event_id, values, JSON)


def delete(conn: apsw.Connection, event_id: str) -> None:
    conn.execute("DELETE FROM events WHERE id = ?", (event_id,))


def span_floor(conn: apsw.Connection, calendars_sql: str, params: list[Any] | tuple[Any, ...], start_ts: int) -> int:
    """The earliest start an event overlapping a window starting at `start_ts` can have in these
    calendars (`calendars_sql` selects their ids): start_ts minus their longest event (event_spans,
    kept by triggers). Bounding the index range by it keeps window queries flat as history grows."""
    row = one(
        conn,
        f"SELECT coalesce(max(max_span), 0) AS span FROM event_spans WHERE calendar_id IN ({calendars_sql})",
        params,
    )
    return start_ts - (row["span"] if row else 0) - 1


def _scope_calendars(scope: EventFilter) -> tuple[str, list[Any]]:
    if scope.calendar_id is not None:
        return "?", [scope.calendar_id]
    if scope.agent_id is not None:
        return "SELECT id FROM calendars WHERE agent_id = ?", [scope.agent_id]
    return "SELECT calendar_id FROM event_spans", []


def overlapping(
    conn: apsw.Connection,
    scope: EventFilter,
    start_ts: int,
    end_ts: int,
    statuses: tuple[str, ...],
    exclude_id: str | None,
) -> list[dict[str, Any]]:
    """Stored events in the scope (an agent or a calendar) with these statuses overlapping [start, end)."""
    where, params = _where(EventFilter(calendar_id=scope.calendar_id, agent_id=scope.agent_id))
    marks = ",".join("?" for _ in statuses)
    floor = span_floor(conn, *_scope_calendars(scope), start_ts)
    where += [f"status IN ({marks})", "start_ts < ?", "start_ts > ?", "end_ts > ?", "id IS NOT ?"]
    params += [*statuses, end_ts, floor, start_ts, exclude_id]
    rows = conn.execute(f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY start_ts", params)
    return [decode(r, JSON) for r in rows]


def in_window(
    conn: apsw.Connection, scope: EventFilter, start_ts: int, end_ts: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """What a window needs: (single events overlapping it, series masters that may, their exceptions).

    Singles and exceptions are filtered by overlap in SQL, the index range bounded below by the
    longest event (`span_floor`); masters by start only (their occurrences are expanded in
    Python). The scope's status/source filters apply to all three.
    """
    where, params = _where(
        EventFilter(calendar_id=scope.calendar_id, agent_id=scope.agent_id, status=scope.status, source=scope.source)
    )
    base = " AND ".join(where) if where else "1"
    floor = span_floor(conn, *_scope_calendars(scope), start_ts)
    singles = conn.execute(
        f"""SELECT * FROM events WHERE {base} AND recurrence IS NULL AND recurring_event_id IS NULL
            AND start_ts < ? AND start_ts > ? AND end_ts > ? ORDER BY start_ts, id""",
        (*params, end_ts, floor, start_ts),
    )
    singles_out = [decode(r, JSON) for r in singles]
    masters, exceptions = series_in_scope(conn, base, params, end_ts)
    return singles_out, masters, exceptions


def series_in_scope(
    conn: apsw.Connection, where_sql: str, params: list[Any] | tuple[Any, ...], end_ts: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Series masters matching `where_sql` that start before `end_ts`, and all their stored
    exceptions: the part of a window that must be expanded in Python. Shared by `in_window`
    (one scope) and the batched busy query of find-meeting-time (many calendars)."""
    masters = [
        decode(r, JSON)
        for r in conn.execute(
            f"SELECT * FROM events WHERE {where_sql} AND recurrence IS NOT NULL AND start_ts < ? ORDER BY start_ts, id",
            (*params, end_ts),
        )
    ]
    exceptions: list[dict[str, Any]] = []
    if masters:
        marks = ",".join("?" for _ in masters)
        exceptions = [
            decode(r, JSON)
            for r in conn.execute(
                f"SELECT * FROM events WHERE recurring_event_id IN ({marks}) ORDER BY start_ts, id",
                [m["id"] for m in masters],
            )
        ]
    return masters, exceptions


def expired_holds(conn: apsw.Connection, now_ts: int, limit: int = 200) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT * FROM events WHERE status = 'hold' AND hold_expires_at <= ? ORDER BY hold_expires_at LIMIT ?",
        (now_ts, limit),
    )
    return [decode(r, JSON) for r in rows]


def next_hold_expiry(conn: apsw.Connection) -> int | None:
    row = one(conn, "SELECT min(hold_expires_at) AS t FROM events WHERE status = 'hold'")
    return None if row is None else row["t"]


def series_exceptions(conn: apsw.Connection, series_id: str) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM events WHERE recurring_event_id = ? ORDER BY start_ts, id", (series_id,))
    return [decode(r, JSON) for r in rows]
