"""Agents table."""

from __future__ import annotations

from typing import Any

import apsw

from chronary.store.rows import decode, insert, one, page, update

JSON = ("metadata",)


def create(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, "agents", row, JSON)


def get(conn: apsw.Connection, agent_id: str) -> dict[str, Any] | None:
    return decode(one(conn, "SELECT * FROM agents WHERE id = ?", (agent_id,)), JSON)


def list_(
    conn: apsw.Connection,
    *,
    only_id: str | None,
    type_: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    where: list[str] = []
    params: list[Any] = []
    for col, value in (("id", only_id), ("type", type_), ("status", status)):
        if value is not None:
            where.append(f"{col} = ?")
            params.append(value)
    rows, total = page(conn, "agents", where, params, "id", limit, offset)
    return [decode(r, JSON) for r in rows], total


def patch(conn: apsw.Connection, agent_id: str, values: dict[str, Any]) -> None:
    update(conn, "agents", agent_id, values, JSON)


def delete(conn: apsw.Connection, agent_id: str) -> None:
    conn.execute("DELETE FROM agents WHERE id = ?", (agent_id,))


def ids(conn: apsw.Connection, agent_ids: list[str]) -> set[str]:
    marks = ",".join("?" for _ in agent_ids)
    return {r["id"] for r in conn.execute(f"SELECT id FROM agents WHERE id IN ({marks})", agent_ids)}
