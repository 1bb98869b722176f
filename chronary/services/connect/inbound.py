"""What providers push to a connection's inbound URL (`/connect/v1/inbound/{token}`).

The token (inb_…, 256 bits) is the only thing that finds the connection: stored as its sha256,
so the database alone does not reveal a working URL. The connector verifies the provider's
signature where it has one (Slack's signing secret, Telegram's secret token) before anything is
kept; a handshake (Slack's url_verification) is answered and not kept. Every delivery becomes a
record (table `records`, deduplicated by the provider's delivery id so a retried delivery is
kept and relayed once) and a change of type `<provider>.<event>` with origin `inbound:<con>`,
which the one webhook machinery relays, signed and retried, to the provider's subscriptions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chronary.connectors.base import BadSignature, ConnectorError, Inbound
from chronary.errors import NotFound, PayloadTooLarge, Unauthorized, ValidationError
from chronary.services import changes, records
from chronary.services.connect import connections as cons
from chronary.store import connections as con_store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms

if TYPE_CHECKING:
    from chronary.runtime import Runtime

DEDUP_FIELDS = ("event_id", "update_id", "id")  # Slack, Telegram, generic senders


def _dedup_key(connection_id: str, event: str, payload: Any, headers: Mapping[str, str]) -> str | None:
    candidates: list[Any] = []
    for part in (payload, payload.get("body") if isinstance(payload, dict) else None):  # http wraps the body
        if isinstance(part, dict):
            candidates.extend(part.get(name) for name in DEDUP_FIELDS)
    candidates.append(headers.get("x-request-id") or headers.get("idempotency-key"))
    for value in candidates:
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            return f"{connection_id}:{event}:{value}"
    return None


async def receive(runtime: Runtime, token: str, headers: Mapping[str, str], body: bytes) -> Any:
    """Verify, keep and relay one delivery; answers what the provider expects back."""
    if len(body) > runtime.settings.record_payload_max_bytes:
        limit = runtime.settings.record_payload_max_bytes
        raise PayloadTooLarge(f"inbound deliveries are at most {limit} bytes (record_payload_max_bytes)", None)
    digest = hashlib.sha256(token.encode()).hexdigest()
    row = await runtime.db.read(lambda tx: con_store.by_inbound_hash(tx.conn, digest))
    if row is None or not row["secret"]:
        raise NotFound("Unknown inbound URL", None)
    lower = {k.lower(): v for k, v in headers.items()}
    connector = await cons.connector_for(runtime, row)
    try:
        inbound = connector.inbound(lower, body, runtime.clock.now())
    except BadSignature as exc:
        raise Unauthorized(f"The delivery's signature does not check out: {exc.reason}") from None
    except ConnectorError as exc:
        raise ValidationError(f"The delivery cannot be read: {exc.reason}", None) from None
    finally:
        await cons.close(connector)
    if inbound.event is None:
        return inbound.reply
    limit = runtime.settings.record_payload_max_bytes
    record_id = await runtime.db.write(lambda tx: keep(tx, row, inbound, lower, limit))
    if inbound.reply is not None:
        return inbound.reply
    return {"received": True, "recordId": record_id, "event": inbound.event}


def keep(tx: Tx, con: dict[str, Any], inbound: Inbound, headers: Mapping[str, str], limit: int) -> str | None:
    """The record and the change, in one transaction; None when the delivery was seen before."""
    assert inbound.event is not None
    record_id = records.keep(
        tx,
        org_id=con["org_id"],
        provider_type=con["provider"],
        resource_type=inbound.event,
        source="inbound",
        payload=inbound.payload,
        limit=limit,
        connection_id=con["id"],
        dedup_key=_dedup_key(con["id"], inbound.event, inbound.payload, headers),
    )
    if record_id is None:
        return None
    obj = {
        "id": record_id,
        "object": "provider_event",
        "provider_type": con["provider"],
        "connection_id": con["id"],
        "event": inbound.event,
        "received_at": iso_ms(tx.now),
        "payload": inbound.payload,
    }
    log_id = changes.record(
        tx,
        changes.Change(
            f"{con['provider']}.{inbound.event}",
            obj,
            agent_id=None,
            origin=changes.inbound_origin(con["id"]),
        ),
    )
    if log_id:
        records.link_runs(tx, record_id, log_id)
    cons.touch(tx, con["id"])
    return record_id
