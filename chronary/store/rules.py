"""Availability rule sets, and the batched reads availability needs for many agents at once.

Find-meeting-time asks about up to 50 agents; reading each agent's events separately would cost
three queries per agent, so `busy_sources` reads every agent's singles, series masters and
exceptions in three queries total, with only the columns availability uses for single events.
"""

from __future__ import annotations

from typing import Any

import apsw

from chronary.store import events as event_store
from chronary.store.rows import decode, insert, one

JSON = ("working_hours", "overrides")


def get(conn: apsw.Connection, agent_id: str) -> dict[str, Any] | None:
    return decode(one(conn, "SELECT * FROM availability_rules WHERE agent_id = ?", (agent_id,)), JSON)


def for_agents(conn: apsw.Connection, agent_ids: list[str]) -> dict[str, dict[str, Any]]:
    marks = ",".join("?" for _ in agent_ids)
    rows = conn.execute(f"SELECT * FROM availability_rules WHERE agent_id IN ({marks})", agent_ids)
    return {r["agent_id"]: decode(r, JSON) for r in rows}


def put(conn: apsw.Connection, row: dict[str, Any]) -> None:
    """Insert or replace the agent's one rule set (keeps id and created_at of an existing one)."""
    conn.execute("DELETE FROM availability_rules WHERE agent_id = ?", (row["agent_id"],))
    insert(conn, "availability_rules", row, JSON)


def delete(conn: apsw.Connection, agent_id: str) -> bool:
    conn.execute("DELETE FROM availability_rules WHERE agent_id = ?", (agent_id,))
    return conn.changes() > 0


def agents(conn: apsw.Connection, agent_ids: list[str]) -> dict[str, dict[str, Any]]:
    marks = ",".join("?" for _ in agent_ids)
    rows = conn.execute(f"SELECT id, org_id, timezone, status FROM agents WHERE id IN ({marks})", agent_ids)
    return {r["id"]: r for r in rows}


def busy_sources(
    conn: apsw.Connection, agent_ids: list[str], start_ts: int, end_ts: int, now_ts: int
) -> tuple[list[tuple[str, int, int]], list[dict[str, Any]], list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """(singles, masters, exceptions, calendars by id) for these agents around [start, end).

    Singles are (agent_id, start_ts, end_ts) tuples of the blocking single events overlapping
    the window: not cancelled, not transparent, not a hold past its expiry — read without the dict row tracer,
    since a month of 50 busy agents is thousands of rows. Masters (full rows, to be expanded)
    start before the window's end; exceptions are every stored exception of those masters.
    Singles mirror store.events.in_window (one scope at a time); masters and exceptions come
    from the same store.events.series_in_scope, whose strays (exceptions of series that ended
    before the window, moved into it) join the singles.
    """
    marks = ",".join("?" for _ in agent_ids)
    cals = {
        r["id"]: r
        for r in conn.execute(f"SELECT id, agent_id, timezone FROM calendars WHERE agent_id IN ({marks})", agent_ids)
    }
    if not cals:
        return [], [], [], {}
    cal_marks = ",".join("?" for _ in cals)
    cal_ids = list(cals)
    cursor = conn.cursor()
    cursor.row_trace = None
    singles = list(
        cursor.execute(
            f"""SELECT c.agent_id, e.start_ts, e.end_ts
            FROM events e JOIN calendars c ON c.id = e.calendar_id
            WHERE e.calendar_id IN ({cal_marks}) AND e.recurrence IS NULL AND e.recurring_event_id IS NULL
              AND e.status != 'cancelled' AND e.transparency != 'transparent'
              AND (e.status != 'hold' OR e.hold_expires_at IS NULL OR e.hold_expires_at > ?)
              AND e.start_ts < ? AND e.start_ts > ? AND e.end_ts > ?""",
            (*cal_ids, now_ts, end_ts, event_store.span_floor(conn, cal_marks, cal_ids, start_ts), start_ts),
        )
    )
    masters, exceptions, strays = event_store.series_in_scope(
        conn, f"calendar_id IN ({cal_marks})", cal_ids, (cal_marks, cal_ids), start_ts, end_ts
    )
    for x in strays:  # exceptions of series over before the window, moved into it: blocking as singles are
        hold_lapsed = x["status"] == "hold" and x["hold_expires_at"] is not None and x["hold_expires_at"] <= now_ts
        if x["status"] != "cancelled" and x["transparency"] != "transparent" and not hold_lapsed:
            singles.append((cals[x["calendar_id"]]["agent_id"], x["start_ts"], x["end_ts"]))
    return singles, masters, exceptions, cals


def feeding_sources(conn: apsw.Connection, agent_ids: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(connections, iCal subscriptions) that fill these agents' calendars, each row with the
    `calendar_id` it fills (a connection mapping two calendars is two rows) and its freshness.

    Only explanations (explain=true) read this: the busy queries above never do."""
    marks = ",".join("?" for _ in agent_ids)
    connections = list(
        conn.execute(
            f"""SELECT c.id, c.agent_id, c.provider, c.status, c.status_reason AS error, c.last_synced_at,
                   cc.calendar_id
            FROM connection_calendars cc JOIN connections c ON c.id = cc.connection_id
            JOIN calendars k ON k.id = cc.calendar_id
            WHERE k.agent_id IN ({marks}) AND cc.sync = 1
            ORDER BY c.id, cc.calendar_id""",
            agent_ids,
        )
    )
    subscriptions = list(
        conn.execute(
            f"""SELECT s.id, s.agent_id, s.label, s.status, s.last_error AS error, s.last_synced_at, s.calendar_id
            FROM ical_subscriptions s JOIN calendars k ON k.id = s.calendar_id
            WHERE k.agent_id IN ({marks})
            ORDER BY s.id""",
            agent_ids,
        )
    )
    return connections, subscriptions


def sources_by_id(
    conn: apsw.Connection, connection_ids: list[str], subscription_ids: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The same rows (without `calendar_id`) for the connections and subscriptions events name in
    their `remote`, when those no longer fill the calendar (sync turned off after the import)."""
    connections: list[dict[str, Any]] = []
    subscriptions: list[dict[str, Any]] = []
    if connection_ids:
        marks = ",".join("?" for _ in connection_ids)
        connections = list(
            conn.execute(
                f"""SELECT id, agent_id, provider, status, status_reason AS error, last_synced_at
                FROM connections WHERE id IN ({marks})""",
                connection_ids,
            )
        )
    if subscription_ids:
        marks = ",".join("?" for _ in subscription_ids)
        subscriptions = list(
            conn.execute(
                f"""SELECT id, agent_id, label, status, last_error AS error, last_synced_at
                FROM ical_subscriptions WHERE id IN ({marks})""",
                subscription_ids,
            )
        )
    return connections, subscriptions
