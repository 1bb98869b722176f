"""The webhook outbox: appended inside the transaction of the change it reports."""

from __future__ import annotations

from typing import Any

import apsw

from chronary.store.rows import insert


def append(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, "outbox", row)


def pending(conn: apsw.Connection, limit: int = 500) -> list[dict[str, Any]]:
    return list(
        conn.execute("SELECT * FROM outbox WHERE dispatched_at IS NULL ORDER BY seq LIMIT ?", (limit,))
    )


def mark_dispatched(conn: apsw.Connection, seqs: list[int], when: str) -> None:
    conn.executemany("UPDATE outbox SET dispatched_at = ? WHERE seq = ?", [(when, s) for s in seqs])


def recent(conn: apsw.Connection, limit: int = 100) -> list[dict[str, Any]]:
    return list(conn.execute("SELECT * FROM outbox ORDER BY seq DESC LIMIT ?", (limit,)))
