"""Record a webhook event in the same transaction as the change it describes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chronary import ids
from chronary.store import outbox
from chronary.store.db import Tx
from chronary.store.rows import dumps
from chronary.timeutil import iso_ms


def emit(
    tx: Tx,
    type_: str,
    obj: dict[str, Any],
    *,
    agent_id: str | None,
    previous: dict[str, Any] | None = None,
    also_agent_ids: Iterable[str] = (),
) -> str:
    """Append the event; the webhook worker delivers it. Returns the payload id (`whe_…`).

    `agent_id` owns the change; `also_agent_ids` are other agents it concerns (proposal
    participants), whose agent-scoped endpoints receive it too.
    """
    event_id = ids.new_id("whe")
    created = iso_ms(tx.now)
    data: dict[str, Any] = {"object": obj}
    if previous:
        data["previous"] = previous
    payload = {"id": event_id, "type": type_, "created_at": created, "data": data}
    outbox.append(
        tx.conn,
        {
            "id": event_id,
            "type": type_,
            "agent_id": agent_id,
            "resource_id": obj.get("id", ""),
            "payload": dumps(payload),
            "created_at": created,
            "audience": dumps(sorted({a for a in also_agent_ids if a and a != agent_id})) if also_agent_ids else None,
        },
    )
    return event_id


def changed_fields(before: dict[str, Any], after: dict[str, Any], ignore: tuple[str, ...] = ("updated_at",)) -> dict:
    """Old values of the fields that changed: the `previous` part of an *.updated payload."""
    return {k: before.get(k) for k in after if k not in ignore and before.get(k) != after.get(k)}
