"""Connections and their calendar mappings: rows, filters, the scheduler's due list and leases."""

from __future__ import annotations

from typing import Any

import apsw

from chronary.store.rows import decode, insert, one, page, update

JSON = ("last_sync", "settings")
CALENDAR_PROVIDERS = ("google", "microsoft", "icloud", "caldav")


def create(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, "connections", row, JSON)


def get(conn: apsw.Connection, connection_id: str) -> dict[str, Any] | None:
    return decode(one(conn, "SELECT * FROM connections WHERE id = ?", (connection_id,)), JSON)


def list_(
    conn: apsw.Connection,
    org_id: str,
    provider: str | None,
    agent_id: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    where, params = ["org_id = ?"], [org_id]
    if provider is None:  # /v1/connections: the calendar accounts, not Connect's API-key providers
        where.append(f"provider IN ({', '.join('?' * len(CALENDAR_PROVIDERS))})")
        params.extend(CALENDAR_PROVIDERS)
    for col, value in (("provider", provider), ("agent_id", agent_id), ("status", status)):
        if value is not None:
            where.append(f"{col} = ?")
            params.append(value)
    rows, total = page(conn, "connections", where, params, "id", limit, offset)
    return [decode(r, JSON) for r in rows], total


def patch(conn: apsw.Connection, connection_id: str, values: dict[str, Any]) -> None:
    update(conn, "connections", connection_id, values, JSON)


def delete(conn: apsw.Connection, connection_id: str) -> None:
    conn.execute("DELETE FROM connections WHERE id = ?", (connection_id,))


def due(conn: apsw.Connection, now_ts: int, limit: int = 20) -> list[dict[str, Any]]:
    """Connections whose next round is due and that nobody holds a live lease on."""
    rows = conn.execute(
        """SELECT id, next_sync_at FROM connections
           WHERE secret IS NOT NULL AND sync_mode != 'none' AND next_sync_at <= ?
             AND (lease_until IS NULL OR lease_until < ?)
           ORDER BY next_sync_at LIMIT ?""",
        (now_ts, now_ts, limit),
    )
    return list(rows)


def next_due_at(conn: apsw.Connection) -> int | None:
    row = one(conn, "SELECT min(next_sync_at) AS t FROM connections WHERE secret IS NOT NULL AND sync_mode != 'none'")
    return None if row is None else row["t"]


def acquire_lease(conn: apsw.Connection, connection_id: str, owner: str, now_ts: int, until_ts: int) -> bool:
    conn.execute(
        """UPDATE connections SET lease_owner = ?, lease_until = ?
           WHERE id = ? AND secret IS NOT NULL AND sync_mode != 'none'
             AND (lease_until IS NULL OR lease_until < ? OR lease_owner = ?)""",
        (owner, until_ts, connection_id, now_ts, owner),
    )
    return conn.changes() == 1


def release_lease(conn: apsw.Connection, connection_id: str, owner: str) -> None:
    conn.execute(
        "UPDATE connections SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
        (connection_id, owner),
    )


def nudge(conn: apsw.Connection, connection_id: str, at_ts: int) -> None:
    """Make the next round happen no later than `at_ts` (a local change is waiting to go out)."""
    conn.execute(
        "UPDATE connections SET next_sync_at = min(next_sync_at, ?) WHERE id = ? AND status != 'disconnected'",
        (at_ts, connection_id),
    )


# -- calendar mappings ------------------------------------------------------------------------


def calendars(conn: apsw.Connection, connection_id: str) -> list[dict[str, Any]]:
    return list(
        conn.execute(
            "SELECT * FROM connection_calendars WHERE connection_id = ? ORDER BY position, remote_id", (connection_id,)
        )
    )


def calendars_for(conn: apsw.Connection, connection_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {cid: [] for cid in connection_ids}
    if not connection_ids:
        return out
    marks = ",".join("?" for _ in connection_ids)
    for row in conn.execute(
        f"SELECT * FROM connection_calendars WHERE connection_id IN ({marks}) ORDER BY position, remote_id",
        connection_ids,
    ):
        out[row["connection_id"]].append(row)
    return out


def get_calendar(conn: apsw.Connection, connection_id: str, remote_id: str) -> dict[str, Any] | None:
    return one(
        conn, "SELECT * FROM connection_calendars WHERE connection_id = ? AND remote_id = ?", (connection_id, remote_id)
    )


def upsert_calendar(conn: apsw.Connection, row: dict[str, Any]) -> None:
    """Insert a discovered calendar or refresh its name/color/read-only flag (mapping kept)."""
    conn.execute(
        """INSERT INTO connection_calendars (connection_id, remote_id, name, color, timezone, read_only, position)
           VALUES (:connection_id, :remote_id, :name, :color, :timezone, :read_only, :position)
           ON CONFLICT (connection_id, remote_id) DO UPDATE SET name = excluded.name, color = excluded.color,
             timezone = excluded.timezone, read_only = excluded.read_only, position = excluded.position""",
        {**row, "read_only": int(bool(row["read_only"]))},
    )


def remove_calendar(conn: apsw.Connection, connection_id: str, remote_id: str) -> None:
    conn.execute("DELETE FROM connection_calendars WHERE connection_id = ? AND remote_id = ?", (connection_id, remote_id))


def patch_calendar(conn: apsw.Connection, connection_id: str, remote_id: str, values: dict[str, Any]) -> None:
    if not values:
        return
    sets = ", ".join(f"{col} = ?" for col in values)
    vals = [int(v) if isinstance(v, bool) else v for v in values.values()]
    conn.execute(
        f"UPDATE connection_calendars SET {sets} WHERE connection_id = ? AND remote_id = ?",
        (*vals, connection_id, remote_id),
    )


def reset_cursors(conn: apsw.Connection, connection_id: str) -> None:
    conn.execute("UPDATE connection_calendars SET cursor = NULL WHERE connection_id = ?", (connection_id,))


def synced_targets(conn: apsw.Connection, calendar_id: str) -> list[dict[str, Any]]:
    """Mappings (with their connection's status) that mirror this Chronary calendar."""
    return list(
        conn.execute(
            """SELECT cc.*, c.status AS connection_status, c.provider AS provider FROM connection_calendars cc
           JOIN connections c ON c.id = cc.connection_id
           WHERE cc.calendar_id = ? AND cc.sync = 1 AND c.secret IS NOT NULL""",
            (calendar_id,),
        )
    )


def mapped_calendar_ids(conn: apsw.Connection, connection_id: str) -> list[str]:
    return [
        r["calendar_id"]
        for r in conn.execute(
            "SELECT calendar_id FROM connection_calendars WHERE connection_id = ? AND calendar_id IS NOT NULL",
            (connection_id,),
        )
    ]


def by_inbound_hash(conn: apsw.Connection, inbound_hash: str) -> dict[str, Any] | None:
    return decode(one(conn, "SELECT * FROM connections WHERE inbound_hash = ?", (inbound_hash,)), JSON)
