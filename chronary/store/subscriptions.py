"""SQL for iCal subscriptions and the links from their (UID, RECURRENCE-ID) pairs to events."""

from __future__ import annotations

from typing import Any

import apsw

from chronary.store.rows import insert, one, page, update

TABLE = "ical_subscriptions"


def create(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, TABLE, row)


def get(conn: apsw.Connection, sub_id: str) -> dict[str, Any] | None:
    return one(conn, f"SELECT * FROM {TABLE} WHERE id = ?", (sub_id,))


def list_for_agent(conn: apsw.Connection, agent_id: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    return page(conn, TABLE, ["agent_id = ?"], [agent_id], "id", limit, offset)


def patch(conn: apsw.Connection, sub_id: str, values: dict[str, Any]) -> None:
    update(conn, TABLE, sub_id, values)


def delete(conn: apsw.Connection, sub_id: str) -> None:
    conn.execute(f"DELETE FROM {TABLE} WHERE id = ?", (sub_id,))


def due_ids(conn: apsw.Connection, now_ts: int, limit: int = 50) -> list[str]:
    rows = conn.execute(
        f"SELECT id FROM {TABLE} WHERE status != 'paused' AND next_sync_ts <= ? ORDER BY next_sync_ts, id LIMIT ?",
        (now_ts, limit),
    )
    return [r["id"] for r in rows]


def next_due_ts(conn: apsw.Connection) -> int | None:
    row = one(conn, f"SELECT min(next_sync_ts) AS t FROM {TABLE} WHERE status != 'paused'")
    return None if row is None else row["t"]
