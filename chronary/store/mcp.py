"""Results of MCP tool calls that carried a `request_id`, so a retried call never acts twice."""

from __future__ import annotations

import json
from typing import Any

import apsw

from chronary.store.rows import one


def get(conn: apsw.Connection, key_id: str, tool: str, request_id: str) -> dict[str, Any] | None:
    """The stored result of this key's earlier call of `tool` with `request_id`, or None."""
    row = one(
        conn,
        "SELECT result FROM mcp_requests WHERE key_id = ? AND tool = ? AND request_id = ?",
        (key_id, tool, request_id),
    )
    if row is None:
        return None
    result: dict[str, Any] = json.loads(row["result"])
    return result


def put(conn: apsw.Connection, key_id: str, tool: str, request_id: str, result: dict[str, Any], when: str) -> None:
    conn.execute(
        "INSERT INTO mcp_requests (key_id, tool, request_id, result, created_at) VALUES (?, ?, ?, ?, ?)",
        (key_id, tool, request_id, json.dumps(result, separators=(",", ":")), when),
    )


def prune(conn: apsw.Connection, before: str) -> int:
    """Forget results stored before `before` (ISO 8601); how many were removed."""
    conn.execute("DELETE FROM mcp_requests WHERE created_at < ?", (before,))
    return int(conn.changes())
