"""The webhook outbox: appended inside the transaction of the change it reports."""

from __future__ import annotations

from typing import Any

import apsw

from chronary.store.rows import insert


def append(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, "outbox", row)


def pending(conn: apsw.Connection, limit: int = 500) -> list[dict[str, Any]]:
    return list(conn.execute("SELECT * FROM outbox WHERE dispatched_at IS NULL ORDER BY seq LIMIT ?", (limit,)))


def mark_dispatched(conn: apsw.Connection, seqs: list[int], when: str) -> None:
    conn.executemany("UPDATE outbox SET dispatched_at = ? WHERE seq = ?", [(when, s) for s in seqs])


def prune(conn: apsw.Connection, dispatched_before: str) -> int:
    """Forget rows fanned out before the cutoff (AUTOINCREMENT keeps `seq` from being reused)."""
    conn.execute("DELETE FROM outbox WHERE dispatched_at IS NOT NULL AND dispatched_at < ?", (dispatched_before,))
    return conn.changes()


def recent(conn: apsw.Connection, limit: int = 100) -> list[dict[str, Any]]:
    return list(conn.execute("SELECT * FROM outbox ORDER BY seq DESC LIMIT ?", (limit,)))
