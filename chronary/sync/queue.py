"""The push queue's producer: an event-change hook that records pending pushes.

Registered with `chronary.services.hooks` (imported by chronary.runtime), it runs inside the
transaction of every local event change, so a queued push commits or rolls back with the
change itself. The sync engine writes mirrored events through the store layer, which fires no
hooks, so the engine's own writes never queue pushes back to where they came from.

A change to an occurrence exception queues its series: a provider resource is one UID with all
its overrides. Calendars mirrored from a read-only remote calendar queue nothing (their events
are read-only; a new local event there stays local).
"""

from __future__ import annotations

from typing import Any

from chronary.services import hooks
from chronary.store import connections as con_store
from chronary.store import sync as sync_store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms, to_ts


def on_event_change(
    tx: Tx, kind: str, before: dict[str, Any] | None, after: dict[str, Any] | None, calendar: dict[str, Any]
) -> None:
    row = after or before
    if row is None:
        return
    targets = con_store.synced_targets(tx.conn, calendar["id"])
    if not targets:
        return
    series_id = row.get("recurring_event_id")
    event_id = series_id or row["id"]
    op = "delete" if kind == "deleted" and not series_id else "upsert"
    uid = row["ical_uid"]
    if series_id:
        from chronary.store import events as event_store

        master = event_store.get(tx.conn, series_id)
        if master is None:
            return
        uid = master["ical_uid"]
    remote = (before or after or {}).get("remote") or {}
    for target in targets:
        if target["read_only"]:
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


hooks.register(on_event_change)
