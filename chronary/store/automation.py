"""Automation storage: flows, trigger subscriptions, executions and their step logs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import apsw

from chronary.store.rows import count, decode, dumps, insert, one, page, update
from chronary.timeutil import to_ts

FLOW_JSON = ("steps",)
TRIGGER_JSON = ("config", "state")
EXECUTION_JSON = ("trigger_data",)
STEP_JSON = ("input", "output")


# --- flows ---------------------------------------------------------------------------------------


def create_flow(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, "flows", row, FLOW_JSON)


def get_flow(conn: apsw.Connection, flow_id: str) -> dict[str, Any] | None:
    return decode(one(conn, "SELECT * FROM flows WHERE id = ?", (flow_id,)), FLOW_JSON)


def list_flows(
    conn: apsw.Connection, org_id: str, status: str | None, limit: int, offset: int, agent_id: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    where, params = ["org_id = ?"], [org_id]
    if agent_id is not None:
        where.append("agent_id = ?")
        params.append(agent_id)
    if status is not None:
        where.append("status = ?")
        params.append(status)
    rows, total = page(conn, "flows", where, params, "id", limit, offset)
    return [decode(r, FLOW_JSON) for r in rows], total


def patch_flow(conn: apsw.Connection, flow_id: str, values: dict[str, Any]) -> None:
    update(conn, "flows", flow_id, values, FLOW_JSON)


def delete_flow(conn: apsw.Connection, flow_id: str) -> None:
    conn.execute("DELETE FROM flows WHERE id = ?", (flow_id,))


# --- triggers ------------------------------------------------------------------------------------


def create_trigger(conn: apsw.Connection, row: dict[str, Any], match_types: list[str]) -> None:
    insert(conn, "flow_triggers", row, TRIGGER_JSON)
    for match_type in match_types:
        conn.execute("INSERT INTO flow_trigger_types (match_type, trigger_id) VALUES (?, ?)", (match_type, row["id"]))


def get_trigger(conn: apsw.Connection, trigger_id: str) -> dict[str, Any] | None:
    return decode(one(conn, "SELECT * FROM flow_triggers WHERE id = ?", (trigger_id,)), TRIGGER_JSON)


def trigger_of(conn: apsw.Connection, flow_id: str) -> dict[str, Any] | None:
    return decode(one(conn, "SELECT * FROM flow_triggers WHERE flow_id = ?", (flow_id,)), TRIGGER_JSON)


def triggers_of(conn: apsw.Connection, flow_ids: list[str]) -> dict[str, dict[str, Any]]:
    if not flow_ids:
        return {}
    marks = ", ".join("?" * len(flow_ids))
    rows = conn.execute(f"SELECT * FROM flow_triggers WHERE flow_id IN ({marks})", flow_ids)
    return {r["flow_id"]: decode(r, TRIGGER_JSON) for r in rows}


def delete_trigger(conn: apsw.Connection, trigger_id: str) -> None:
    conn.execute("DELETE FROM flow_triggers WHERE id = ?", (trigger_id,))


def patch_trigger(conn: apsw.Connection, trigger_id: str, values: dict[str, Any]) -> None:
    update(conn, "flow_triggers", trigger_id, values, TRIGGER_JSON)


def listening(conn: apsw.Connection, match_type: str) -> list[dict[str, Any]]:
    """Enabled flows' triggers waiting for this change type (with the flow's row fields)."""
    rows = conn.execute(
        """SELECT t.* FROM flow_trigger_types m JOIN flow_triggers t ON t.id = m.trigger_id
           JOIN flows f ON f.id = t.flow_id
           WHERE m.match_type = ? AND f.status = 'enabled'""",
        (match_type,),
    )
    return [decode(r, TRIGGER_JSON) for r in rows]


def due_triggers(conn: apsw.Connection, now_ts: int, limit: int = 50) -> list[dict[str, Any]]:
    rows = conn.execute(
        """SELECT t.* FROM flow_triggers t JOIN flows f ON f.id = t.flow_id
           WHERE t.next_run_ts IS NOT NULL AND t.next_run_ts <= ? AND f.status = 'enabled'
           ORDER BY t.next_run_ts LIMIT ?""",
        (now_ts, limit),
    )
    return [decode(r, TRIGGER_JSON) for r in rows]


def next_trigger_ts(conn: apsw.Connection) -> int | None:
    row = one(
        conn,
        """SELECT min(t.next_run_ts) AS t FROM flow_triggers t JOIN flows f ON f.id = t.flow_id
           WHERE t.next_run_ts IS NOT NULL AND f.status = 'enabled'""",
    )
    return None if row is None else row["t"]


# --- executions ----------------------------------------------------------------------------------


def create_execution(conn: apsw.Connection, row: dict[str, Any]) -> bool:
    """Queue a run; False when one with the same (flow, dedup_key) exists (never twice)."""
    cols = ", ".join(row)
    marks = ", ".join(f":{c}" for c in row)
    values = {k: (v if k not in EXECUTION_JSON else _json(v)) for k, v in row.items()}
    conn.execute(f"INSERT INTO executions ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING", values)
    return conn.changes() == 1


def _json(value: Any) -> str | None:
    return dumps(value)


def get_execution(conn: apsw.Connection, execution_id: str) -> dict[str, Any] | None:
    return decode(one(conn, "SELECT * FROM executions WHERE id = ?", (execution_id,)), EXECUTION_JSON)


def patch_execution(conn: apsw.Connection, execution_id: str, values: dict[str, Any]) -> None:
    update(conn, "executions", execution_id, values, EXECUTION_JSON)


def list_executions(
    conn: apsw.Connection,
    org_id: str,
    flow_id: str | None,
    status: str | None,
    limit: int,
    offset: int,
    agent_id: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Newest first; `agent_id`: only the runs of flows that agent's keys saved."""
    where, params = ["org_id = ?"], [org_id]
    for col, value in (("flow_id", flow_id), ("status", status)):
        if value is not None:
            where.append(f"{col} = ?")
            params.append(value)
    if agent_id is not None:
        where.append("flow_id IN (SELECT id FROM flows WHERE agent_id = ?)")
        params.append(agent_id)
    rows, total = page(conn, "executions", where, params, "id DESC", limit, offset)
    return [decode(r, EXECUTION_JSON) for r in rows], total


def claimable(conn: apsw.Connection, now_ts: int, limit: int = 20) -> list[dict[str, Any]]:
    """Queued or waiting runs that are due, and running ones whose lease ran out (a crash)."""
    rows = conn.execute(
        """SELECT * FROM executions
           WHERE (status IN ('queued', 'waiting') AND run_after_ts <= ?)
              OR (status = 'running' AND lease_until_ts < ?)
           ORDER BY run_after_ts, id LIMIT ?""",
        (now_ts, now_ts, limit),
    )
    return [decode(r, EXECUTION_JSON) for r in rows]


def running_count(conn: apsw.Connection, flow_id: str, now_ts: int) -> int:
    return count(
        conn,
        "SELECT count(*) AS n FROM executions WHERE flow_id = ? AND status = 'running' AND lease_until_ts >= ?",
        (flow_id, now_ts),
    )


def claim(conn: apsw.Connection, execution_id: str, owner: str, now_ts: int, until_ts: int) -> bool:
    conn.execute(
        """UPDATE executions SET status = 'running', lease_owner = ?, lease_until_ts = ?
           WHERE id = ? AND ((status IN ('queued', 'waiting') AND run_after_ts <= ?)
                             OR (status = 'running' AND lease_until_ts < ?))""",
        (owner, until_ts, execution_id, now_ts, now_ts),
    )
    return conn.changes() == 1


def next_due_ts(conn: apsw.Connection) -> int | None:
    row = one(conn, "SELECT min(run_after_ts) AS t FROM executions WHERE status IN ('queued', 'waiting')")
    return None if row is None else row["t"]


def prune_executions(conn: apsw.Connection, finished_before: str) -> int:
    conn.execute(
        "DELETE FROM executions WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished_at < ?",
        (finished_before,),
    )
    return conn.changes()


# --- step logs -----------------------------------------------------------------------------------


def steps_of(conn: apsw.Connection, execution_id: str) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM execution_steps WHERE execution_id = ? ORDER BY seq", (execution_id,))
    return [decode(r, STEP_JSON) for r in rows]


def upsert_step(conn: apsw.Connection, row: dict[str, Any]) -> None:
    values = {k: (_json(v) if k in STEP_JSON else v) for k, v in row.items()}
    cols = ", ".join(values)
    marks = ", ".join(f":{c}" for c in values)
    sets = ", ".join(f"{c} = excluded.{c}" for c in values if c not in ("execution_id", "path", "seq"))
    conn.execute(
        f"INSERT INTO execution_steps ({cols}) VALUES ({marks}) ON CONFLICT (execution_id, path) DO UPDATE SET {sets}",
        values,
    )


def clear_steps(conn: apsw.Connection, execution_id: str) -> None:
    conn.execute("DELETE FROM execution_steps WHERE execution_id = ?", (execution_id,))


def checkpoint(conn: apsw.Connection) -> None:
    """Hand freed pages back and keep the WAL short after pruning (outside any transaction)."""
    conn.execute("PRAGMA incremental_vacuum(2000)")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def requeue_foreign(conn: apsw.Connection, owner: str, now_ts: int) -> int:
    conn.execute(
        """UPDATE executions SET status = 'queued', run_after_ts = ?, lease_owner = NULL, lease_until_ts = NULL
           WHERE status = 'running' AND (lease_owner IS NULL OR lease_owner != ?)""",
        (now_ts, owner),
    )
    return conn.changes()


def claim_one(conn: apsw.Connection, execution_id: str, owner: str, now: datetime) -> bool:
    """Take one queued run at once (the test endpoint runs its execution in the request)."""
    now_ts = to_ts(now)
    return claim(conn, execution_id, owner, now_ts, now_ts + 300)


def by_dedup(conn: apsw.Connection, dedup_key: str) -> list[str]:
    """The runs one trigger event queued (one per flow that wanted it)."""
    return [r["id"] for r in conn.execute("SELECT id FROM executions WHERE dedup_key = ?", (dedup_key,))]
