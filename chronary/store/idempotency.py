"""Stored answers of requests sent with an Idempotency-Key (services/idempotency.py decides)."""

from __future__ import annotations

import json
from typing import Any

import apsw

from chronary.store.rows import one


def get(conn: apsw.Connection, holder: str, key: str) -> dict[str, Any] | None:
    return one(conn, "SELECT * FROM idempotency_keys WHERE holder = ? AND key = ?", (holder, key))


def claim(conn: apsw.Connection, row: dict[str, Any]) -> None:
    """Insert or take over the key's row as running (an expired or abandoned one is replaced)."""
    conn.execute(
        """INSERT OR REPLACE INTO idempotency_keys
               (holder, key, method, target, body_hash, fields, state, owner, status, headers, body,
                created_at, expires_at)
           VALUES (:holder, :key, :method, :target, :body_hash, :fields, 'running', :owner, NULL, NULL, NULL,
                   :created_at, :expires_at)""",
        row,
    )


def finish(
    conn: apsw.Connection, holder: str, key: str, owner: str, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    conn.execute(
        """UPDATE idempotency_keys SET state = 'done', status = ?, headers = ?, body = ?
            WHERE holder = ? AND key = ? AND owner = ? AND state = 'running'""",
        (status, json.dumps(headers), body, holder, key, owner),
    )


def release(conn: apsw.Connection, holder: str, key: str, owner: str) -> None:
    """Forget a running key whose request ended without an answer worth keeping (5xx, 429)."""
    conn.execute(
        "DELETE FROM idempotency_keys WHERE holder = ? AND key = ? AND owner = ? AND state = 'running'",
        (holder, key, owner),
    )


def prune(conn: apsw.Connection, now: int, limit: int = 100) -> int:
    """Drop up to `limit` expired keys (called on the write path, so bounded)."""
    conn.execute(
        """DELETE FROM idempotency_keys WHERE (holder, key) IN
               (SELECT holder, key FROM idempotency_keys WHERE expires_at <= ? LIMIT ?)""",
        (now, limit),
    )
    return int(conn.changes())
