"""A record as changes and flow templates see it: a leaf module (the records service and the
flow runner both use it without importing each other)."""

from __future__ import annotations

import json
from typing import Any

from chronary.errors import NotFound
from chronary.services.context import Principal
from chronary.store import records as store
from chronary.store.db import Tx


def obj(row: dict[str, Any], payload: Any) -> dict[str, Any]:
    """The record as changes carry it (`record.received`'s data.object) and templates read it."""
    return {
        "id": row["id"],
        "object": "record",
        "provider_type": row["provider_type"],
        "resource_type": row["resource_type"],
        "source": row["source"],
        "connection_id": row["connection_id"],
        "received_at": row["received_at"],
        "payload": payload,
    }


def load(tx: Tx, principal: Principal, record_id: str) -> dict[str, Any]:
    row = store.get(tx.conn, record_id)
    if row is None or row["org_id"] != principal.org_id:
        raise NotFound(f"No record {record_id}", "id")
    return row


def as_dict(tx: Tx, principal: Principal, record_id: str) -> dict[str, Any]:
    """A record as flow templates see it (`record.payload`, `record.provider_type`, …)."""
    principal.require("records.view")
    row = load(tx, principal, record_id)
    return obj(row, json.loads(row["payload"]))
