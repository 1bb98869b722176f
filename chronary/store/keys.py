"""API keys, stored only as SHA-256 hashes."""

from __future__ import annotations

from typing import Any

import apsw

from chronary.store.rows import count, decode, insert, one, page

COLUMNS = "id, org_id, agent_id, name, prefix, last4, created_at, last_used_at, revoked_at, permissions"


JSON = ("permissions",)


def create(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, "api_keys", row, JSON)


def by_hash(conn: apsw.Connection, digest: str) -> dict[str, Any] | None:
    return decode(one(conn, f"SELECT {COLUMNS} FROM api_keys WHERE hash = ?", (digest,)), JSON)


def get(conn: apsw.Connection, key_id: str) -> dict[str, Any] | None:
    return decode(one(conn, f"SELECT {COLUMNS} FROM api_keys WHERE id = ?", (key_id,)), JSON)


def list_active(conn: apsw.Connection, agent_id: str | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    where, params = ["revoked_at IS NULL"], []
    if agent_id is not None:
        where.append("agent_id = ?")
        params.append(agent_id)
    rows, total = page(conn, "api_keys", where, params, "id", limit, offset, select=COLUMNS)
    return [decode(r, JSON) for r in rows], total


def count_active(conn: apsw.Connection) -> int:
    return count(conn, "SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL")


def revoke(conn: apsw.Connection, key_id: str, when: str) -> None:
    conn.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (when, key_id))


def revoke_for_agent(conn: apsw.Connection, agent_id: str, when: str) -> None:
    conn.execute("UPDATE api_keys SET revoked_at = ? WHERE agent_id = ? AND revoked_at IS NULL", (when, agent_id))


def touch(conn: apsw.Connection, key_id: str, when: str) -> None:
    conn.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (when, key_id))
