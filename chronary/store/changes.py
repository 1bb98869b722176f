"""SQL for the change log and its consumers' cursors (see services/changes.py)."""

from __future__ import annotations

from typing import Any

import apsw

from chronary.store.rows import insert, loads, one


def append(conn: apsw.Connection, row: dict[str, Any]) -> int:
    """Add a change; returns its seq."""
    insert(conn, "changes", row)
    return conn.last_insert_rowid()


def high_water(conn: apsw.Connection) -> int:
    """The seq of the newest change ever recorded (pruned ones included; 0 before the first)."""
    row = one(conn, "SELECT seq FROM sqlite_sequence WHERE name = 'changes'")
    return int(row["seq"]) if row and row["seq"] is not None else 0


def cursor(conn: apsw.Connection, consumer: str) -> int | None:
    row = one(conn, "SELECT seq FROM change_cursors WHERE consumer = ?", (consumer,))
    return None if row is None else int(row["seq"])


def ensure_cursor(conn: apsw.Connection, consumer: str) -> int:
    """The consumer's cursor; a consumer seen for the first time starts after the newest change."""
    conn.execute(
        """INSERT INTO change_cursors (consumer, seq) VALUES (?, ?) ON CONFLICT (consumer) DO NOTHING""",
        (consumer, high_water(conn)),
    )
    return cursor(conn, consumer) or 0


def advance(conn: apsw.Connection, consumer: str, seq: int) -> None:
    conn.execute("UPDATE change_cursors SET seq = max(seq, ?) WHERE consumer = ?", (seq, consumer))


def any_after(conn: apsw.Connection, seq: int) -> bool:
    return one(conn, "SELECT 1 AS x FROM changes WHERE seq > ? LIMIT 1", (seq,)) is not None


def after(conn: apsw.Connection, seq: int, limit: int) -> list[dict[str, Any]]:
    """Changes after `seq`, oldest first; `audience` parsed (a list), `webhook` a bool."""
    rows = list(conn.execute("SELECT * FROM changes WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)))
    for row in rows:
        row["audience"] = loads(row["audience"]) or []
        row["webhook"] = bool(row["webhook"])
    return rows


def prune(conn: apsw.Connection, created_before: str) -> int:
    """Forget changes older than the cutoff that every consumer has passed (a consumer that is
    behind keeps what it has not seen yet, at any age)."""
    conn.execute(
        """DELETE FROM changes WHERE created_at < ?
             AND seq <= coalesce((SELECT min(seq) FROM change_cursors),
                                 (SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)""",
        (created_before,),
    )
    return conn.changes()


def recent(conn: apsw.Connection, limit: int = 100) -> list[dict[str, Any]]:
    """The newest changes first, as stored (for tests and diagnostics)."""
    return list(conn.execute("SELECT * FROM changes ORDER BY seq DESC LIMIT ?", (limit,)))
