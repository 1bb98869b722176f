"""Records: payloads that came in (inbound deliveries, poll items, imports), full-text indexed."""

from __future__ import annotations

from typing import Any

import apsw

from chronary.store.rows import count, one

COLUMNS = "id, org_id, provider_type, resource_type, source, connection_id, dedup_key, payload, size, received_at"


def fts_query(text: str) -> str:
    """User words as an FTS5 query: each word a quoted prefix term, all required (no operators)."""
    words = [w for w in text.replace('"', " ").split() if w]
    return " ".join(f'"{w}"*' for w in words)


def list_(
    conn: apsw.Connection,
    org_id: str,
    provider_type: str | None,
    resource_type: str | None,
    source: str | None,
    search: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    where, params = ["r.org_id = ?"], [org_id]
    for col, value in (("provider_type", provider_type), ("resource_type", resource_type), ("source", source)):
        if value is not None:
            where.append(f"r.{col} = ?")
            params.append(value)
    join = ""
    if search:
        query = fts_query(search)
        if not query:
            return [], 0
        join = "JOIN records_fts f ON f.rowid = r.rid"
        where.append("records_fts MATCH ?")
        params.append(query)
    clause = " AND ".join(where)
    total = count(conn, f"SELECT count(*) AS n FROM records r {join} WHERE {clause}", params)
    rows = conn.execute(
        f"SELECT r.* FROM records r {join} WHERE {clause} ORDER BY r.received_at DESC, r.rid DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    return list(rows), total


def summary(conn: apsw.Connection, org_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        """SELECT provider_type, resource_type, count(*) AS count, min(received_at) AS first_seen,
                  max(received_at) AS last_seen
           FROM records WHERE org_id = ? GROUP BY provider_type, resource_type ORDER BY provider_type, resource_type""",
        (org_id,),
    )
    return list(rows)


def get(conn: apsw.Connection, record_id: str) -> dict[str, Any] | None:
    return one(conn, "SELECT * FROM records WHERE id = ?", (record_id,))


def delete(conn: apsw.Connection, record_id: str) -> None:
    conn.execute("DELETE FROM records WHERE id = ?", (record_id,))


def add(conn: apsw.Connection, row: dict[str, Any]) -> bool:
    """Keep one payload; False when its dedup key was seen before (nothing written)."""
    conn.execute(
        f"""INSERT INTO records ({COLUMNS})
            VALUES (:id, :org_id, :provider_type, :resource_type, :source, :connection_id, :dedup_key, :payload,
                    :size, :received_at)
            ON CONFLICT DO NOTHING""",
        row,
    )
    return conn.changes() == 1


def link(conn: apsw.Connection, record_id: str, execution_id: str, replay: bool) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO record_executions (record_id, execution_id, replay) VALUES (?, ?, ?)",
        (record_id, execution_id, 1 if replay else 0),
    )


def executions_of(conn: apsw.Connection, record_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {rid: [] for rid in record_ids}
    if not record_ids:
        return out
    marks = ", ".join("?" * len(record_ids))
    rows = conn.execute(
        f"""SELECT l.record_id, l.execution_id, l.replay, e.flow_id, e.status FROM record_executions l
            LEFT JOIN executions e ON e.id = l.execution_id
            WHERE l.record_id IN ({marks}) ORDER BY l.execution_id""",
        record_ids,
    )
    for r in rows:
        out[r["record_id"]].append(r)
    return out


def prune(conn: apsw.Connection, before: str) -> int:
    conn.execute("DELETE FROM records WHERE received_at < ?", (before,))
    return conn.changes()
