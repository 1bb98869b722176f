"""Announce a change as a webhook: a thin wrapper of `services.changes.record`.

Kept for the services that announce agent.*, calendar.*, proposal.*, connection.* and
ical_subscription.* changes; the change goes through the one change path (the change log, the
registered listeners), written in the transaction of the change it describes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chronary.services.changes import Change, Resource, changed_fields, plain, record
from chronary.store import outbox as store
from chronary.store.db import Tx

__all__ = ["Resource", "changed_fields", "emit", "plain", "wants"]


def emit(
    tx: Tx,
    type_: str,
    obj: Resource,
    *,
    agent_id: str | None,
    previous: dict[str, Any] | None = None,
    also_agent_ids: Iterable[str] = (),
    origin: str | None = None,
) -> str:
    """Record the change; the webhook worker delivers it. Returns the payload id (`whe_…`).

    `obj` is the resource as the API returns it (struct or dict; the payload JSON is the same).
    `agent_id` owns the change; `also_agent_ids` are other agents it concerns (proposal
    participants), whose agent-scoped endpoints receive it too. `origin` defaults to the
    transaction's (`Tx.origin`: "api" for requests).
    """
    event_id = record(
        tx,
        Change(type_, obj, previous=previous, agent_id=agent_id, audience=tuple(also_agent_ids), origin=origin),
    )
    assert event_id is not None
    return event_id


RECEIVER_TABLES = ("webhook_endpoints",)  # what has_receivers reads


def wants(tx: Tx, change: Change) -> bool:
    """Does the webhook consumer have work in this change now? Only when it is sent as a webhook
    and some endpoint could receive it (asked once per transaction, or commit group): the webhook worker is then
    woken by the commit; otherwise it passes the change on its own poll."""
    if not change.webhook:
        return False
    return tx.memo("outbox.receivers", RECEIVER_TABLES, lambda: store.has_receivers(tx.conn))
