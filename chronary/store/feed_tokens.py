"""SQL for per-device feed tokens (`feed_tokens`, migration 0026) and the window a scoped feed shows."""

from __future__ import annotations

from typing import Any

import apsw

from chronary.store.rows import count, decode, insert, one

COLUMNS = "id, calendar_id, label, scope, created_at, last_fetched_at, last_user_agent, revoked_at"
JSON = ("scope",)


def create(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, "feed_tokens", row, JSON)


def by_hash(conn: apsw.Connection, digest: str) -> dict[str, Any] | None:
    """The live token with this SHA-256 (the unique index: no scan, nothing learnt from timing)."""
    row = one(conn, f"SELECT {COLUMNS} FROM feed_tokens WHERE hash = ? AND revoked_at IS NULL", (digest,))
    return decode(row, JSON)


def get(conn: apsw.Connection, calendar_id: str, token_id: str) -> dict[str, Any] | None:
    sql = f"SELECT {COLUMNS} FROM feed_tokens WHERE id = ? AND calendar_id = ? AND revoked_at IS NULL"
    return decode(one(conn, sql, (token_id, calendar_id)), JSON)


def list_active(conn: apsw.Connection, calendar_id: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    where = "calendar_id = ? AND revoked_at IS NULL"
    total = count(conn, f"SELECT count(*) AS n FROM feed_tokens WHERE {where}", (calendar_id,))
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM feed_tokens WHERE {where} ORDER BY id LIMIT ? OFFSET ?", (calendar_id, limit, offset)
    )
    return [decode(r, JSON) for r in rows], total


def count_active(conn: apsw.Connection, calendar_id: str) -> int:
    return count(conn, "SELECT count(*) AS n FROM feed_tokens WHERE calendar_id = ? AND revoked_at IS NULL", (calendar_id,))


def revoke(conn: apsw.Connection, token_id: str, when: str) -> None:
    conn.execute("UPDATE feed_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (when, token_id))


def record_fetches(conn: apsw.Connection, fetches: list[tuple[str, str, str | None]]) -> None:
    """(token id, when, User-Agent) of recent fetches; an older `when` never overwrites a newer one."""
    conn.executemany(
        """UPDATE feed_tokens SET last_fetched_at = ?2, last_user_agent = ?3
           WHERE id = ?1 AND (last_fetched_at IS NULL OR last_fetched_at <= ?2)""",
        fetches,
    )


def window_ids(conn: apsw.Connection, calendar_id: str, start_ts: int, end_ts: int) -> set[str]:
    """Ids of the calendar's events that may show in [start_ts, end_ts): single events
    overlapping it; series masters starting before its end whose last occurrence (the loose upper
    bound `series_bounds` keeps; NULL: open-ended) is after its start; exceptions overlapping it or
    replacing an occurrence that started in it (else a client shows the unmoved occurrence)."""
    rows = conn.execute(
        """SELECT e.id AS id FROM events e LEFT JOIN series_bounds b ON b.event_id = e.id
           WHERE e.calendar_id = ?1 AND e.status != 'cancelled' AND e.start_ts < ?3 AND (
                 e.end_ts > ?2
              OR (e.recurring_event_id IS NULL AND e.recurrence IS NOT NULL AND e.recurrence != '[]'
                  AND (b.until_ts IS NULL OR b.until_ts > ?2)))
           UNION
           SELECT e.id FROM events e
           WHERE e.calendar_id = ?1 AND e.recurring_event_id IS NOT NULL AND e.status != 'cancelled'
             AND e.recurrence_id_ts >= ?2 AND e.recurrence_id_ts < ?3""",
        (calendar_id, start_ts, end_ts),
    )
    return {r["id"] for r in rows}
