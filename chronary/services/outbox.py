"""Record a webhook event in the same transaction as the change it describes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from chronary import ids
from chronary.store import outbox
from chronary.store.db import Tx
from chronary.store.rows import dumps
from chronary.timeutil import iso_ms

# A resource as a service returns it: its msgspec struct (schemas/*), or a dict of the same shape
# from services that still answer with dicts.
Resource = msgspec.Struct | Mapping[str, Any]


def plain(obj: Resource) -> dict[str, Any]:
    """JSON-ready form of a resource: a struct becomes a dict in field order (as the API encodes
    it), nested structs included; a dict is taken as it is."""
    if isinstance(obj, msgspec.Struct):
        out: dict[str, Any] = msgspec.to_builtins(obj)
        return out
    return obj if isinstance(obj, dict) else dict(obj)


def emit(
    tx: Tx,
    type_: str,
    obj: Resource,
    *,
    agent_id: str | None,
    previous: dict[str, Any] | None = None,
    also_agent_ids: Iterable[str] = (),
) -> str:
    """Append the event; the webhook worker delivers it. Returns the payload id (`whe_…`).

    `obj` is the resource as the API returns it (struct or dict; the payload JSON is the same).
    `agent_id` owns the change; `also_agent_ids` are other agents it concerns (proposal
    participants), whose agent-scoped endpoints receive it too.
    """
    body = plain(obj)
    event_id = ids.new_id("whe")
    created = iso_ms(tx.now)
    data: dict[str, Any] = {"object": body}
    if previous:
        data["previous"] = previous
    payload = {"id": event_id, "type": type_, "created_at": created, "data": data}
    outbox.append(
        tx.conn,
        {
            "id": event_id,
            "type": type_,
            "agent_id": agent_id,
            "resource_id": body.get("id", ""),
            "payload": dumps(payload),
            "created_at": created,
            "audience": dumps(sorted({a for a in also_agent_ids if a and a != agent_id})) if also_agent_ids else None,
        },
    )
    return event_id


def changed_fields(before: Resource, after: Resource, ignore: tuple[str, ...] = ("updated_at",)) -> dict[str, Any]:
    """Old values of the fields that changed: the `previous` part of an *.updated payload."""
    old, new = plain(before), plain(after)
    return {k: old.get(k) for k in new if k not in ignore and old.get(k) != new.get(k)}
