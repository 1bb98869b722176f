"""Webhook endpoints (whk_) and their delivery log: the rules behind /v1/webhooks.

Org keys only. The signing secret (whsec_…) is stored encrypted with the server's SecretBox —
the worker must be able to sign with it, so it cannot be a hash — and appears in a response
only on create and rotate. URL reachability is checked by the API layer before the write
transaction (it may resolve DNS); this module checks everything that needs no network.

Operations answer with the structs of `schemas.webhooks` (Webhook / WebhookWithSecret, Delivery /
DeliveryDetail; `Page[…]` for lists), built directly from store rows; `load` stays the row.
"""

from __future__ import annotations

import secrets
from typing import Any

import msgspec

from chronary import ids
from chronary.crypto import SecretBox
from chronary.errors import Conflict, ValidationError, not_found
from chronary.schemas.common import set_fields
from chronary.schemas.webhooks import (
    Delivery,
    DeliveryAttempt,
    DeliveryDetail,
    Webhook,
    WebhookCreate,
    WebhookUpdate,
    WebhookWithSecret,
)
from chronary.services.context import Page, Principal
from chronary.store import agents as agent_store
from chronary.store import webhooks as store
from chronary.store.db import Tx
from chronary.store.rows import dumps, loads
from chronary.timeutil import iso_ms
from chronary.webhooks import dispatch
from chronary.webhooks.types import ALL, EVENT_TYPES, TEST_TYPE

SECRET_PREFIX = "whsec_"


def present(row: dict[str, Any]) -> Webhook:
    """The API shape of an endpoint row (built directly: lists are hot paths)."""
    return Webhook(
        id=row["id"],
        url=row["url"],
        events=row["events"],
        status=row["status"],
        disabled_reason=row["disabled_reason"],
        description=row["description"],
        agent_id=row["agent_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _with_secret(row: dict[str, Any], secret: str) -> WebhookWithSecret:
    """The endpoint with its signing secret: only on create and rotate, the one time it is shown."""
    return WebhookWithSecret(**msgspec.structs.asdict(present(row)), secret=secret)


def _delivery_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The fields a delivery row shows in both the list shape and the detail shape."""
    return {
        "id": row["id"],
        "webhook_id": row["endpoint_id"],
        "event_id": row["event_id"],
        "event_type": row["event_type"],
        "resource_id": row["resource_id"],
        "status": row["status"],
        "attempts": row["attempts"],
        "next_attempt_at": row["next_attempt_at"],
        "last_attempt_at": row["last_attempt_at"],
        "last_status_code": row["last_status_code"],
        "last_response_body": row["last_response_body"],
        "last_error": row["last_error"],
        "last_duration_ms": row["last_duration_ms"],
        "completed_at": row["completed_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def present_delivery(row: dict[str, Any]) -> Delivery:
    """The API shape of a delivery row."""
    return Delivery(**_delivery_fields(row))


def _attempt(row: dict[str, Any]) -> DeliveryAttempt:
    return DeliveryAttempt(
        number=row["number"],
        outcome=row["outcome"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        status_code=row["status_code"],
        response_body=row["response_body"],
        error=row["error"],
        duration_ms=row["duration_ms"],
    )


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def check_events(events: list[str]) -> list[str]:
    """Known types, or exactly ["*"]; duplicates dropped, order kept."""
    out: list[str] = []
    for i, name in enumerate(events):
        if name == ALL:
            if len(events) != 1:
                raise ValidationError('"*" means every event type and must be the only entry', f"events[{i}]")
        elif name not in EVENT_TYPES:
            raise ValidationError(f"unknown event type {name!r}; see the webhook docs for the list", f"events[{i}]")
        if name not in out:
            out.append(name)
    return out


def load(tx: Tx, principal: Principal, webhook_id: str) -> dict[str, Any]:
    principal.require_org("webhooks")
    row = store.get_endpoint(tx.conn, webhook_id)
    if row is None or row["org_id"] != principal.org_id or row["provider_type"] is not None:
        raise not_found("webhook", webhook_id)  # provider subscriptions live at /connect/v1
    return row


def create(tx: Tx, principal: Principal, data: WebhookCreate, box: SecretBox) -> WebhookWithSecret:
    principal.require_org("webhooks")
    events = check_events(data.events)
    if data.agent_id is not None and agent_store.get(tx.conn, data.agent_id) is None:
        raise ValidationError(f"agent_id {data.agent_id!r} does not exist", "agent_id")
    secret = new_secret()
    now = iso_ms(tx.now)
    row: dict[str, Any] = {
        "id": ids.new_id("whk"),
        "org_id": principal.org_id,
        "url": data.url,
        "events": events,
        "description": data.description,
        "agent_id": data.agent_id,
        "status": "active",
        "disabled_reason": None,
        "secret_enc": box.encrypt(secret),
        "failing_since": None,
        "since_seq": store.outbox_high_water(tx.conn),
        "created_at": now,
        "updated_at": now,
    }
    store.create_endpoint(tx.conn, row)
    return _with_secret(row, secret)


def list_(tx: Tx, principal: Principal, status: str | None, limit: int, offset: int) -> Page[Webhook]:
    principal.require_org("webhooks")
    rows, total = store.list_endpoints(tx.conn, principal.org_id, status, limit, offset)
    return Page([present(r) for r in rows], total, limit, offset)


def get(tx: Tx, principal: Principal, webhook_id: str) -> Webhook:
    return present(load(tx, principal, webhook_id))


def update(tx: Tx, principal: Principal, webhook_id: str, data: WebhookUpdate) -> Webhook:
    row = load(tx, principal, webhook_id)
    changes = set_fields(data)
    if not changes:
        raise ValidationError("PATCH needs at least one field to change", None)
    for field in ("url", "events", "status"):
        if field in changes and changes[field] is None:
            raise ValidationError(f"{field} cannot be null", field)
    if "events" in changes:
        changes["events"] = check_events(changes["events"])
    if "status" in changes and changes["status"] != row["status"]:
        # leaving paused or disabled starts with a clean record (no attempts ran meanwhile)
        changes.update(disabled_reason=None, failing_since=None)
    changes["updated_at"] = iso_ms(tx.now)
    store.patch_endpoint(tx.conn, webhook_id, changes)
    return present({**row, **changes})


def delete(tx: Tx, principal: Principal, webhook_id: str) -> None:
    load(tx, principal, webhook_id)
    store.delete_endpoint(tx.conn, webhook_id)  # deliveries and attempts cascade


def rotate_secret(tx: Tx, principal: Principal, webhook_id: str, box: SecretBox) -> WebhookWithSecret:
    """A new secret, effective for every attempt from now on (the old one stops at once)."""
    row = load(tx, principal, webhook_id)
    secret = new_secret()
    values = {"secret_enc": box.encrypt(secret), "updated_at": iso_ms(tx.now)}
    store.patch_endpoint(tx.conn, webhook_id, values)
    return _with_secret({**row, **values}, secret)


def send_test(tx: Tx, principal: Principal, webhook_id: str) -> Delivery:
    """Queue a `webhook.test` delivery to this endpoint only; returns the delivery."""
    row = load(tx, principal, webhook_id)
    now = iso_ms(tx.now)
    event_id = ids.new_id("whe")
    obj = msgspec.to_builtins(present(row))  # the endpoint as a dict, keys in the API's order
    payload = dumps({"id": event_id, "type": TEST_TYPE, "created_at": now, "data": {"object": obj}})
    event = {"id": event_id, "type": TEST_TYPE, "resource_id": event_id}
    delivery = dispatch.new_delivery(webhook_id, event, payload or "", 0, now)
    store.create_delivery(tx.conn, delivery)
    stored = store.get_delivery(tx.conn, delivery["id"])
    assert stored is not None  # written just above, in this transaction
    return present_delivery(stored)


def list_deliveries(
    tx: Tx, principal: Principal, webhook_id: str, status: str | None, limit: int, offset: int
) -> Page[Delivery]:
    load(tx, principal, webhook_id)
    rows, total = store.list_deliveries(tx.conn, webhook_id, status, limit, offset)
    return Page([present_delivery(r) for r in rows], total, limit, offset)


def _load_delivery(tx: Tx, principal: Principal, delivery_id: str) -> dict[str, Any]:
    principal.require_org("webhook deliveries")
    row = store.get_delivery(tx.conn, delivery_id)
    if row is None:
        raise not_found("webhook delivery", delivery_id)
    endpoint = store.get_endpoint(tx.conn, row["endpoint_id"])
    if endpoint is None or endpoint["org_id"] != principal.org_id:
        raise not_found("webhook delivery", delivery_id)
    return row


def get_delivery(tx: Tx, principal: Principal, delivery_id: str) -> DeliveryDetail:
    row = _load_delivery(tx, principal, delivery_id)
    return DeliveryDetail(
        **_delivery_fields(row),
        payload=loads(row["payload"]),
        attempt_log=[_attempt(a) for a in store.attempts_for(tx.conn, delivery_id)],
    )


def redeliver(tx: Tx, principal: Principal, delivery_id: str) -> DeliveryDetail:
    """Attempt again now with the same payload id, whatever the delivery's state."""
    row = _load_delivery(tx, principal, delivery_id)
    if row["status"] in ("pending", "retrying") and row["next_attempt_at"] is None:
        raise Conflict(f"Delivery {delivery_id} is being sent right now; try again when it finishes")
    now = iso_ms(tx.now)
    values = {
        "status": "pending" if row["status"] != "retrying" else "retrying",
        "next_attempt_at": now,
        "completed_at": None,
        "updated_at": now,
    }
    store.patch_delivery(tx.conn, delivery_id, values)
    return get_delivery(tx, principal, delivery_id)
