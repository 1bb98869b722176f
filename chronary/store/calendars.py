"""Calendars table; `revision` is what feed caches and sync cursors key on."""

from __future__ import annotations

from typing import Any

import apsw

from chronary.store.rows import decode, insert, one, page, update

JSON = ("metadata", "default_reminders")


def create(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, "calendars", row, JSON)


def get(conn: apsw.Connection, calendar_id: str) -> dict[str, Any] | None:
    return decode(one(conn, "SELECT * FROM calendars WHERE id = ?", (calendar_id,)), JSON)


def by_feed_token(conn: apsw.Connection, token: str) -> dict[str, Any] | None:
    return decode(one(conn, "SELECT * FROM calendars WHERE feed_token = ?", (token,)), JSON)


def list_(
    conn: apsw.Connection, *, agent_id: str | None, include_agent_owned: bool, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """agent_id given: that agent's calendars; else org-level ones, plus agent-owned if asked."""
    where: list[str] = []
    params: list[Any] = []
    if agent_id is not None:
        where.append("agent_id = ?")
        params.append(agent_id)
    elif not include_agent_owned:
        where.append("agent_id IS NULL")
    rows, total = page(conn, "calendars", where, params, "id", limit, offset)
    return [decode(r, JSON) for r in rows], total


def ids_for_agent(conn: apsw.Connection, agent_id: str) -> list[str]:
    return [r["id"] for r in conn.execute("SELECT id FROM calendars WHERE agent_id = ? ORDER BY id", (agent_id,))]


def all_day_event_ids(conn: apsw.Connection, calendar_id: str) -> list[str]:
    """Its all-day events (series, singles and exceptions): re-anchored when its timezone changes."""
    return [
        r["id"]
        for r in conn.execute("SELECT id FROM events WHERE calendar_id = ? AND all_day = 1 ORDER BY id", (calendar_id,))
    ]


def patch(conn: apsw.Connection, calendar_id: str, values: dict[str, Any]) -> None:
    update(conn, "calendars", calendar_id, values, JSON)


def bump_revision(conn: apsw.Connection, calendar_id: str, updated_at: str | None = None) -> None:
    conn.execute("UPDATE calendars SET revision = revision + 1 WHERE id = ?", (calendar_id,))


def delete(conn: apsw.Connection, calendar_id: str) -> None:
    conn.execute("DELETE FROM calendars WHERE id = ?", (calendar_id,))
