"""Events table: stored events (series masters, single events and occurrence exceptions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apsw

from chronary.store.rows import count, decode, insert, one, update

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
    """One page by start, and the total: known from the page itself when it is the last one,
    from `event_counts` (migration 0023) without a time filter, else counted on the start index
    over the filtered range only — never a count(*) of every event on every page."""
    where, params = _where(f)
    clause = " WHERE " + " AND ".join(where) if where else ""
    rows = [decode(r, JSON) for r in conn.execute(*_page_sql(conn, f, limit, offset))]
    if 0 < len(rows) < limit or (not rows and offset == 0):
        return rows, offset + len(rows)
    if f.start_after is None and f.start_before is None:
        return rows, _counted(conn, f)
    return rows, count(conn, f"SELECT count(*) AS n FROM events{clause}", params)


def _page_sql(conn: apsw.Connection, f: EventFilter, limit: int, offset: int) -> tuple[str, list[Any]]:
    """The page query. Across an agent's calendars one ORDER BY sorts all their events; each
    calendar's first offset + limit by start (read in order off its start index), merged, gives
    the same page."""
    calendars: list[str] = []
    if f.agent_id is not None and f.calendar_id is None:
        calendars = [r["id"] for r in conn.execute("SELECT id FROM calendars WHERE agent_id = ? ORDER BY id", (f.agent_id,))]
    if not 0 < len(calendars) <= 50:  # one calendar, or too many for a compound select (or none: an empty page)
        where, params = _where(f)
        clause = " WHERE " + " AND ".join(where) if where else ""
        return f"SELECT * FROM events{clause} ORDER BY start_ts, id LIMIT ? OFFSET ?", [*params, limit, offset]
    parts: list[str] = []
    params = []
    for calendar_id in calendars:
        where, more = _where(
            EventFilter(
                calendar_id=calendar_id,
                start_after=f.start_after,
                start_before=f.start_before,
                status=f.status,
                source=f.source,
            )
        )
        parts.append(f"SELECT * FROM (SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY start_ts, id LIMIT ?)")
        params += [*more, offset + limit]
    return f"SELECT * FROM ({' UNION ALL '.join(parts)}) ORDER BY start_ts, id LIMIT ? OFFSET ?", [*params, limit, offset]


def _counted(conn: apsw.Connection, f: EventFilter) -> int:
    """Events in the filter's calendars with its status and source, from the per-calendar counts."""
    cal_sql, cal_params = _scope_calendars(f)
    where, params = [f"calendar_id IN ({cal_sql})"], list(cal_params)
    for column in ("status", "source"):
        value = getattr(f, column)
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    row = one(conn, f"SELECT coalesce(sum(n), 0) AS n FROM event_counts WHERE {' AND '.join(where)}", params)
    return int(row["n"]) if row else 0


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

    Singles are filtered by overlap in SQL, the index range bounded below by the longest event
    (`span_floor`); masters are those that may still have occurrences in it (`series_in_scope`),
    expanded in Python. Exceptions of series that ended before the window (so not among the
    masters) but were moved into it come with the singles. The scope's status/source filters
    apply to singles and masters (exceptions go with their series, as they always did).
    """
    where, params = _where(
        EventFilter(calendar_id=scope.calendar_id, agent_id=scope.agent_id, status=scope.status, source=scope.source)
    )
    base = " AND ".join(where) if where else "1"
    calendars = _scope_calendars(scope)
    floor = span_floor(conn, *calendars, start_ts)
    singles = conn.execute(
        f"""SELECT * FROM events WHERE {base} AND recurrence IS NULL AND recurring_event_id IS NULL
            AND start_ts < ? AND start_ts > ? AND end_ts > ? ORDER BY start_ts, id""",
        (*params, end_ts, floor, start_ts),
    )
    singles_out = [decode(r, JSON) for r in singles]
    masters, exceptions, strays = series_in_scope(conn, base, params, calendars, start_ts, end_ts)
    if strays:
        singles_out = sorted(singles_out + strays, key=lambda r: (r["start_ts"], r["id"]))
    return singles_out, masters, exceptions


def series_in_scope(
    conn: apsw.Connection,
    where_sql: str,
    params: list[Any] | tuple[Any, ...],
    calendars: tuple[str, list[Any]],
    start_ts: int,
    end_ts: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(masters, their exceptions, strays) of the series matching `where_sql` in `calendars`
    (SQL selecting calendar ids, and its parameters) that bear on [start_ts, end_ts).

    Masters start before the window's end and may still run into it: open-ended ones, and those
    whose last occurrence ends after the window's start (`series_bounds`, migration 0023; the
    range is bounded below by the calendars' longest series, `series_spans`). Exceptions are every
    stored exception of those masters (an exception overrides its occurrence wherever it moved).
    Strays are the exceptions overlapping the window whose series would have been read before
    but ended before the window: they stand on their own, like single events. Shared by
    `in_window` (one scope) and the batched busy query of find-meeting-time (many calendars)."""
    cal_sql, cal_params = calendars
    span = one(
        conn,
        f"SELECT coalesce(max(max_span), 0) AS span FROM series_spans WHERE calendar_id IN ({cal_sql})",
        cal_params,
    )
    series_floor = start_ts - (span["span"] if span else 0) - 1
    masters = [
        decode(r, JSON)
        for r in conn.execute(
            # CROSS JOIN: read from the bounds outward (left to right), never every master of the calendars
            f"""SELECT e.* FROM (
                    SELECT event_id FROM series_bounds
                    WHERE calendar_id IN ({cal_sql}) AND until_ts IS NULL AND start_ts < ?
                    UNION ALL
                    SELECT event_id FROM series_bounds
                    WHERE calendar_id IN ({cal_sql}) AND start_ts < ? AND start_ts > ? AND until_ts > ?
                ) AS b CROSS JOIN events AS e ON e.id = b.event_id
                WHERE {where_sql} AND recurrence IS NOT NULL ORDER BY start_ts, id""",
            (*cal_params, end_ts, *cal_params, end_ts, series_floor, start_ts, *params),
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
    live = {m["id"] for m in masters}
    floor = span_floor(conn, cal_sql, cal_params, start_ts)
    strays = [
        decode(r, JSON)
        for r in conn.execute(
            f"""SELECT * FROM events x WHERE x.calendar_id IN ({cal_sql}) AND x.recurring_event_id IS NOT NULL
                AND x.start_ts < ? AND x.start_ts > ? AND x.end_ts > ?
                AND EXISTS (SELECT 1 FROM events WHERE id = x.recurring_event_id AND {where_sql}
                            AND recurrence IS NOT NULL AND start_ts < ?)
                ORDER BY x.start_ts, x.id""",
            (*cal_params, end_ts, floor, start_ts, *params, end_ts),
        )
        if r["recurring_event_id"] not in live
    ]
    return masters, exceptions, strays


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
