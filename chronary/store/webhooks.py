"""Webhook endpoints, deliveries and attempts: all the SQL behind the webhook feature."""

from __future__ import annotations

from typing import Any

import apsw

from chronary.store.rows import decode, insert, one, page, update

ENDPOINT_JSON = ("events",)
OPEN = "('pending', 'retrying')"
# a delivery may go only when no earlier open delivery of the same resource waits before it
UNBLOCKED = f"""NOT EXISTS (
    SELECT 1 FROM webhook_deliveries e
    WHERE e.endpoint_id = d.endpoint_id AND e.resource_id = d.resource_id
      AND e.status IN {OPEN} AND (e.seq < d.seq OR (e.seq = d.seq AND e.id < d.id)))"""


# --- endpoints ---------------------------------------------------------------------------


def create_endpoint(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, "webhook_endpoints", row, ENDPOINT_JSON)


def get_endpoint(conn: apsw.Connection, endpoint_id: str) -> dict[str, Any] | None:
    return decode(one(conn, "SELECT * FROM webhook_endpoints WHERE id = ?", (endpoint_id,)), ENDPOINT_JSON)


def list_endpoints(
    conn: apsw.Connection,
    org_id: str,
    status: str | None,
    limit: int,
    offset: int,
    provider_type: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """/v1/webhooks' endpoints (provider_type None), or one provider's Connect subscriptions."""
    where, params = ["org_id = ?"], [org_id]
    if provider_type is None:
        where.append("provider_type IS NULL")
    else:
        where.append("provider_type = ?")
        params.append(provider_type)
    if status is not None:
        where.append("status = ?")
        params.append(status)
    rows, total = page(conn, "webhook_endpoints", where, params, "id", limit, offset)
    return [decode(r, ENDPOINT_JSON) for r in rows], total


def active_endpoints(conn: apsw.Connection) -> list[dict[str, Any]]:
    """Endpoints that receive new deliveries (paused ones too: theirs wait for resume)."""
    rows = conn.execute("SELECT * FROM webhook_endpoints WHERE status IN ('active', 'paused') ORDER BY id")
    return [decode(r, ENDPOINT_JSON) for r in rows]


def patch_endpoint(conn: apsw.Connection, endpoint_id: str, values: dict[str, Any]) -> None:
    update(conn, "webhook_endpoints", endpoint_id, values, ENDPOINT_JSON)


def delete_endpoint(conn: apsw.Connection, endpoint_id: str) -> None:
    conn.execute("DELETE FROM webhook_endpoints WHERE id = ?", (endpoint_id,))


def delete_for_connection(conn: apsw.Connection, connection_id: str) -> None:
    """A connection's provider webhook subscriptions go with it."""
    conn.execute("DELETE FROM webhook_endpoints WHERE connection_id = ?", (connection_id,))


# --- deliveries --------------------------------------------------------------------------


def create_delivery(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, "webhook_deliveries", row)


def get_delivery(conn: apsw.Connection, delivery_id: str) -> dict[str, Any] | None:
    return one(conn, "SELECT * FROM webhook_deliveries WHERE id = ?", (delivery_id,))


def patch_delivery(conn: apsw.Connection, delivery_id: str, values: dict[str, Any]) -> None:
    update(conn, "webhook_deliveries", delivery_id, values)


def list_deliveries(
    conn: apsw.Connection, endpoint_id: str, status: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    where, params = ["endpoint_id = ?"], [endpoint_id]
    if status is not None:
        where.append("status = ?")
        params.append(status)
    return page(conn, "webhook_deliveries", where, params, "id DESC", limit, offset)


def due_in_order(conn: apsw.Connection, endpoint_id: str, now: str, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` due open deliveries of this endpoint in change order, each with `blocked`
    (1: an earlier open delivery of its resource waits before it). Walks the queue index (0021)."""
    return list(
        conn.execute(
            f"""SELECT d.*, NOT {UNBLOCKED} AS blocked FROM webhook_deliveries d INDEXED BY webhook_deliveries_queue
                WHERE d.endpoint_id = ? AND d.status IN {OPEN} AND d.next_attempt_at <= ?
                ORDER BY d.seq, d.id LIMIT ?""",
            (endpoint_id, now, limit),
        )
    )


def due_times(conn: apsw.Connection) -> dict[str, str]:
    """Active endpoint id -> when its earliest sendable delivery falls due (endpoints with none
    left out). One index probe per endpoint, whatever the backlog."""
    rows = conn.execute(
        f"""SELECT w.id AS id, (
                SELECT d.next_attempt_at FROM webhook_deliveries d
                WHERE d.endpoint_id = w.id AND d.status IN {OPEN} AND d.next_attempt_at IS NOT NULL AND {UNBLOCKED}
                ORDER BY d.next_attempt_at LIMIT 1) AS at
            FROM webhook_endpoints w WHERE w.status = 'active'"""
    )
    return {r["id"]: r["at"] for r in rows if r["at"] is not None}


def close_open_deliveries(conn: apsw.Connection, endpoint_id: str, reason: str, now: str) -> int:
    conn.execute(
        f"""UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, last_error = ?,
                   completed_at = ?, updated_at = ?
            WHERE endpoint_id = ? AND status IN {OPEN}""",
        (reason, now, now, endpoint_id),
    )
    return conn.changes()


# --- attempts ----------------------------------------------------------------------------


def start_attempt(conn: apsw.Connection, delivery_id: str, number: int, now: str) -> int:
    conn.execute(
        "INSERT INTO webhook_attempts (delivery_id, number, outcome, started_at) VALUES (?, ?, 'in_flight', ?)",
        (delivery_id, number, now),
    )
    return conn.last_insert_rowid()


def finish_attempt(conn: apsw.Connection, attempt_id: int, values: dict[str, Any]) -> None:
    sets = ", ".join(f"{col} = ?" for col in values)
    conn.execute(f"UPDATE webhook_attempts SET {sets} WHERE id = ?", (*values.values(), attempt_id))


def delete_attempt(conn: apsw.Connection, attempt_id: int) -> None:
    conn.execute("DELETE FROM webhook_attempts WHERE id = ?", (attempt_id,))


def attempts_for(conn: apsw.Connection, delivery_id: str) -> list[dict[str, Any]]:
    return list(conn.execute("SELECT * FROM webhook_attempts WHERE delivery_id = ? ORDER BY number, id", (delivery_id,)))


def interrupted_attempts(conn: apsw.Connection) -> list[dict[str, Any]]:
    return list(conn.execute("SELECT * FROM webhook_attempts WHERE outcome = 'in_flight'"))


def reopen_stranded(conn: apsw.Connection, now: str) -> int:
    """Open deliveries with no due time (claimed by a process that died): due now."""
    conn.execute(
        f"UPDATE webhook_deliveries SET next_attempt_at = ?, updated_at = ? "
        f"WHERE status IN {OPEN} AND next_attempt_at IS NULL",
        (now, now),
    )
    return conn.changes()


def outbox_high_water(conn: apsw.Connection) -> int:
    """The newest change a webhook could carry: a new endpoint starts after it."""
    row = one(conn, "SELECT coalesce(max(seq), 0) AS seq FROM changes WHERE webhook = 1")
    return int(row["seq"]) if row else 0


def prune_deliveries(conn: apsw.Connection, completed_before: str) -> int:
    """Forget finished deliveries (and their attempts, by cascade) completed before the cutoff."""
    conn.execute(
        "DELETE FROM webhook_deliveries WHERE status IN ('succeeded', 'failed') AND completed_at < ?", (completed_before,)
    )
    return conn.changes()
