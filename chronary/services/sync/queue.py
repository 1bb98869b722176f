"""The push queue's producer: an in-transaction change listener that records pending pushes.

Registered by `chronary.runtime.open_runtime` on the change pipeline (services/changes.py), it
runs inside the transaction of every recorded event change, so a queued push commits or rolls
back with the change itself. A change whose origin is a connection (`sync:<id>`: the sync merge
applying what it pulled) queues nothing back to that same connection: no echo. (A calendar
mirrors at most one remote calendar, so a pulled change is pushed nowhere.)

A change to an occurrence exception queues its series: a provider resource is one UID with all
its overrides. Calendars mirrored from a read-only remote calendar queue nothing (their events
are read-only; a new local event there stays local).
"""

from __future__ import annotations

from typing import Any

from chronary.services.changes import Change, sync_origin
from chronary.store import connections as con_store
from chronary.store import events as event_store
from chronary.store import sync as sync_store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms, to_ts


def _targets(tx: Tx, change: Change, calendar_id: str) -> list[dict[str, Any]]:
    """The calendar's sync mappings. A merge transaction (origin `sync:…`) records a change per
    pulled event and never remaps a calendar, so there they are read once per calendar."""
    if not (change.origin or "").startswith("sync:"):
        return con_store.synced_targets(tx.conn, calendar_id)
    cache: dict[str, list[dict[str, Any]]] = tx.scratch.setdefault("queue.targets", {})
    if calendar_id not in cache:
        cache[calendar_id] = con_store.synced_targets(tx.conn, calendar_id)
    return cache[calendar_id]


def on_change(tx: Tx, change: Change) -> None:
    row, calendar = change.row, change.calendar
    if change.kind is None or row is None or calendar is None:
        return
    targets = _targets(tx, change, calendar["id"])
    if not targets:
        return
    before, after = change.before, change.after
    series_id = row.get("recurring_event_id")
    event_id = series_id or row["id"]
    op = "delete" if change.kind == "deleted" and not series_id else "upsert"
    uid = row["ical_uid"]
    if series_id:
        master = event_store.get(tx.conn, series_id)
        if master is None:
            return
        uid = master["ical_uid"]
    remote = (before or after or {}).get("remote") or {}
    for target in targets:
        if target["read_only"] or change.origin == sync_origin(target["connection_id"]):
            continue
        link = sync_store.link_by_event(tx.conn, target["connection_id"], target["remote_id"], event_id)
        if op == "delete" and link is None and not remote.get("href"):
            # never pushed: forget the queued create instead of deleting something that is not there
            sync_store.drop_pending(tx.conn, target["connection_id"], target["remote_id"], event_id)
            continue
        sync_store.enqueue(
            tx.conn,
            {
                "connection_id": target["connection_id"],
                "remote_id": target["remote_id"],
                "event_id": event_id,
                "op": op,
                "uid": uid,
                "href": (link or {}).get("href") or remote.get("href"),
                "etag": (link or {}).get("etag") or remote.get("etag"),
                "changed_at": iso_ms(tx.now),
            },
        )
        con_store.nudge(tx.conn, target["connection_id"], to_ts(tx.now))
