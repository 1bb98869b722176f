"""Connect API storage: custom providers, the proxy/action audit log and the records of inbound
payloads. Connections themselves are `store.connections` (one table for both APIs)."""

from __future__ import annotations

from typing import Any

import apsw

from chronary.store import connections as con_store
from chronary.store.rows import count, decode, insert, one, page

PROVIDER_JSON = ("auth",)


# --- custom providers ----------------------------------------------------------------------------


def create_provider(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, "custom_providers", row, PROVIDER_JSON)


def get_provider(conn: apsw.Connection, org_id: str, provider_type: str) -> dict[str, Any] | None:
    row = one(conn, "SELECT * FROM custom_providers WHERE org_id = ? AND type = ?", (org_id, provider_type))
    return decode(row, PROVIDER_JSON)


def list_providers(conn: apsw.Connection, org_id: str) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM custom_providers WHERE org_id = ? ORDER BY type", (org_id,))
    return [decode(r, PROVIDER_JSON) for r in rows]


def delete_provider(conn: apsw.Connection, org_id: str, provider_type: str) -> None:
    conn.execute("DELETE FROM custom_providers WHERE org_id = ? AND type = ?", (org_id, provider_type))


# --- connections of a provider -----------------------------------------------------------------


def connections_of(conn: apsw.Connection, org_id: str, provider_type: str) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM connections WHERE org_id = ? AND provider = ? ORDER BY id", (org_id, provider_type))
    return [decode(r, con_store.JSON) for r in rows]


def count_connections(conn: apsw.Connection, org_id: str, provider_type: str) -> int:
    return count(conn, "SELECT count(*) AS n FROM connections WHERE org_id = ? AND provider = ?", (org_id, provider_type))


# --- the audit log -------------------------------------------------------------------------------


def log_call(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, "connect_calls", row)


def calls(
    conn: apsw.Connection,
    org_id: str,
    provider_type: str | None,
    connection_id: str | None,
    kind: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    where, params = ["org_id = ?"], [org_id]
    for col, value in (("provider_type", provider_type), ("connection_id", connection_id), ("kind", kind)):
        if value is not None:
            where.append(f"{col} = ?")
            params.append(value)
    return page(conn, "connect_calls", where, params, "id DESC", limit, offset)


def prune_calls(conn: apsw.Connection, before: str) -> int:
    conn.execute("DELETE FROM connect_calls WHERE created_at < ?", (before,))
    return conn.changes()
