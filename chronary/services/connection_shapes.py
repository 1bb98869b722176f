"""The two forms of a connection: the API struct (`to_struct`) and the dict that connection.*
webhook payloads carry (`present`, sent by `emit`). A leaf module: the connections service and
the sync policy both use it without importing each other.
"""

from __future__ import annotations

from typing import Any

from chronary.schemas.connections import Connection, ConnectionCalendar, LastSync, TokenRefresh, WebhookSubscription
from chronary.services import outbox
from chronary.store import connections as con_store
from chronary.store import oauth as oauth_store
from chronary.store import sync as sync_store
from chronary.store.db import Tx
from chronary.timeutil import from_ts, iso_ms


def present(
    tx: Tx, row: dict[str, Any], expand_calendars: bool = False, calendars: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The dict form (webhook payloads: connection.created/synced/error/deleted)."""
    cals = con_store.calendars(tx.conn, row["id"]) if calendars is None else calendars
    if not expand_calendars:
        cals = [c for c in cals if c["sync"]]
    last = row["last_sync"]
    return {
        "id": row["id"],
        "object": "connection",
        "provider": row["provider"],
        "status": row["status"],
        "status_reason": row["status_reason"],
        "email": row["email"],
        "username": row["username"],
        "agent_id": row["agent_id"],
        "sync_mode": row["sync_mode"],
        "sync_interval_minutes": row["sync_interval_minutes"],
        "last_synced_at": row["last_synced_at"],
        "last_sync": {
            k: (last or {}).get(k) for k in ("started_at", "finished_at", "pulled", "pushed", "conflicts", "error")
        }
        if last
        else None,
        "calendars": [
            {
                "remote_id": c["remote_id"],
                "name": c["name"],
                "color": c["color"],
                "read_only": bool(c["read_only"]),
                "calendar_id": c["calendar_id"] if c["sync"] else None,
                "sync": bool(c["sync"]),
            }
            for c in cals
        ],
        "webhook_subscription": _channel(tx, row["id"]),
        "token_refresh": {"last_at": row["token_last_at"], "failures_count": row["token_failures"]},
        "pending_pushes": sync_store.count_pending(tx.conn, row["id"]),
        "created_at": row["created_at"],
    }


def to_struct(
    tx: Tx, row: dict[str, Any], expand_calendars: bool = False, calendars: list[dict[str, Any]] | None = None
) -> Connection:
    """The API shape of a row, the same values as `present` (built directly, no msgspec.convert)."""
    cals = con_store.calendars(tx.conn, row["id"]) if calendars is None else calendars
    if not expand_calendars:
        cals = [c for c in cals if c["sync"]]
    last = row["last_sync"]
    return Connection(
        id=row["id"],
        object="connection",
        provider=row["provider"],
        status=row["status"],
        status_reason=row["status_reason"],
        email=row["email"],
        username=row["username"],
        agent_id=row["agent_id"],
        sync_mode=row["sync_mode"],
        sync_interval_minutes=row["sync_interval_minutes"],
        last_synced_at=row["last_synced_at"],
        last_sync=LastSync(
            started_at=last.get("started_at"),
            finished_at=last.get("finished_at"),
            pulled=last.get("pulled"),
            pushed=last.get("pushed"),
            conflicts=last.get("conflicts"),
            error=last.get("error"),
        )
        if last
        else None,
        calendars=[
            ConnectionCalendar(
                remote_id=c["remote_id"],
                name=c["name"],
                color=c["color"],
                read_only=bool(c["read_only"]),
                calendar_id=c["calendar_id"] if c["sync"] else None,
                sync=bool(c["sync"]),
            )
            for c in cals
        ],
        webhook_subscription=_channel_struct(tx, row["id"]),
        token_refresh=TokenRefresh(last_at=row["token_last_at"], failures_count=row["token_failures"]),
        pending_pushes=sync_store.count_pending(tx.conn, row["id"]),
        created_at=row["created_at"],
    )


def emit(tx: Tx, type_: str, connection_id: str) -> None:
    row = con_store.get(tx.conn, connection_id)
    if row is not None:
        outbox.emit(tx, type_, present(tx, row), agent_id=row["agent_id"])


def _channel(tx: Tx, connection_id: str) -> dict[str, Any] | None:
    """The push channel that expires first (the one to watch), as {id, expires_at}."""
    found = oauth_store.channels(tx.conn, connection_id)
    if not found:
        return None
    return {"id": found[0]["id"], "expires_at": iso_ms(from_ts(found[0]["expires_ts"]))}


def _channel_struct(tx: Tx, connection_id: str) -> WebhookSubscription | None:
    found = _channel(tx, connection_id)
    return None if found is None else WebhookSubscription(id=found["id"], expires_at=found["expires_at"])
