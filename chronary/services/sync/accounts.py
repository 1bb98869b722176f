"""A connection's provider object, and the calendars its account lists."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from chronary.providers import load
from chronary.providers.base import Account, Provider, RemoteCalendar
from chronary.store import calendars as cal_store
from chronary.store import connections as con_store
from chronary.store import sync as sync_store
from chronary.store.db import Tx

if TYPE_CHECKING:
    from chronary.runtime import Runtime

log = logging.getLogger("chronary.sync")


def make_provider(runtime: Runtime, con: dict[str, Any]) -> Provider:
    creds = json.loads(runtime.secrets.decrypt(con["secret"])) if con["secret"] else {}
    account = Account(con["provider"], con["username"], con["server_url"], creds)
    return load(con["provider"])(account, runtime.settings, runtime.clock)


def store_calendars(tx: Tx, cid: str, remote: list[RemoteCalendar]) -> None:
    """Refresh the discovered calendar list; mappings of calendars still listed are kept. A
    calendar gone from the account is forgotten; its mirrors stay as plain local events."""
    listed = {rc.remote_id for rc in remote}
    for row in con_store.calendars(tx.conn, cid):
        if row["remote_id"] not in listed:
            for calendar_id in sync_store.detach_events(tx.conn, cid, row["remote_id"]):
                cal_store.bump_revision(tx.conn, calendar_id)
            sync_store.delete_links_for_calendar(tx.conn, cid, row["remote_id"])
            con_store.remove_calendar(tx.conn, cid, row["remote_id"])
            log.info("connection %s: calendar %s is gone from the account; stopped mirroring it", cid, row["remote_id"])
    for position, rc in enumerate(remote):
        con_store.upsert_calendar(
            tx.conn,
            {
                "connection_id": cid,
                "remote_id": rc.remote_id,
                "name": rc.name,
                "color": rc.color,
                "timezone": rc.timezone,
                "read_only": rc.read_only,
                "position": position,
            },
        )
