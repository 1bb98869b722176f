"""One sync round for one connection: discover calendars, pull, merge, push.

Never branches on the provider: everything goes through the `Provider` interface. Provider
calls are blocking and run in a thread (`asyncio.to_thread`); database writes run on the writer
thread and never span network I/O: fetch → one write transaction to merge → network push → one
small write per pushed resource. Only one round per connection runs at a time: an in-process
lock plus a DB lease row (`connections.lease_owner/lease_until`) so a restart or a second
process cannot start a parallel round. See merge.py for the conflict rule.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import threading
from dataclasses import asdict
from functools import partial
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from chronary.services.changes import sync_origin
from chronary.store import calendars as cal_store
from chronary.store import connections as con_store
from chronary.store import events as event_store
from chronary.store import sync as sync_store
from chronary.store.db import Tx
from chronary.sync import convert
from chronary.sync.base import (
    Account,
    AuthFailed,
    CursorExpired,
    PreconditionFailed,
    Provider,
    ProviderError,
    RemoteCalendar,
    load,
)
from chronary.sync.merge import Merger, Stats, parse_all
from chronary.timeutil import iso_ms, to_ts

if TYPE_CHECKING:
    from chronary.runtime import Runtime

log = logging.getLogger("chronary.sync")
OWNER = f"proc-{secrets.token_hex(6)}"  # this process, for the DB lease
LEASE_SECONDS = 300
AUTH_RETRIES = 3  # credential failures in a row before status error
ERROR_RETRIES = 5  # other failures in a row before status error
MAX_BACKOFF = 3600
AUTH_ERROR_RETRY = 86400  # seconds between tries once credentials were given up on
MERGE_CHUNK = 200  # resources per merge transaction

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(connection_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(connection_id, threading.Lock())


def make_provider(runtime: Runtime, con: dict[str, Any]) -> Provider:
    creds = json.loads(runtime.secrets.decrypt(con["secret"])) if con["secret"] else {}
    account = Account(con["provider"], con["username"], con["server_url"], creds)
    return load(con["provider"])(account, runtime.settings)


def backoff_seconds(failures: int) -> float:
    return min(MAX_BACKOFF, 60 * 2 ** max(0, failures - 1))


async def sync_connection(runtime: Runtime, connection_id: str) -> dict[str, Any] | None:
    """Run one round now; None if the connection is gone or a round is already running."""
    lock = _lock_for(connection_id)
    if not lock.acquire(blocking=False):
        return None
    db = runtime.db
    try:
        got = await db.write(
            lambda tx: con_store.acquire_lease(tx.conn, connection_id, OWNER, to_ts(tx.now), to_ts(tx.now) + LEASE_SECONDS)
        )
        if not got:
            return None
        try:
            return await _round(runtime, connection_id)
        finally:
            await db.write(lambda tx: con_store.release_lease(tx.conn, connection_id, OWNER))
    finally:
        lock.release()


async def _round(runtime: Runtime, cid: str) -> dict[str, Any] | None:
    db = runtime.db
    con = await db.read(lambda tx: con_store.get(tx.conn, cid))
    if con is None or con["secret"] is None:
        return None
    full = bool(con["full_resync"])
    started = iso_ms(runtime.clock.now())
    stats = Stats()
    running = {"started_at": started, "finished_at": None, "pulled": 0, "pushed": 0, "conflicts": 0, "error": None}
    await db.write(lambda tx: con_store.patch(tx.conn, cid, {"last_sync": running}))  # progress: a round is on
    provider = make_provider(runtime, con)
    try:
        remote = await asyncio.to_thread(provider.list_calendars)
        mapped: list[str] = [] if remote else await db.read(lambda tx: con_store.mapped_calendar_ids(tx.conn, cid))
        if mapped:
            # more likely a server glitch than an account emptied of calendars: forget nothing
            raise ProviderError("the server listed no calendars; keeping the mirrors until it lists them again")
        await db.write(lambda tx: store_calendars(tx, cid, remote))
        mappings = await db.read(lambda tx: [m for m in con_store.calendars(tx.conn, cid) if m["sync"] and m["calendar_id"]])
        for mapping in mappings:
            await db.write(
                lambda tx: con_store.acquire_lease(  # renew: a long first sync keeps its lease
                    tx.conn, cid, OWNER, to_ts(tx.now), to_ts(tx.now) + LEASE_SECONDS
                )
            )
            rc = RemoteCalendar(
                mapping["remote_id"],
                mapping["name"] or "",
                mapping["color"],
                bool(mapping["read_only"]),
                mapping["timezone"],
            )
            await _pull(runtime, provider, con, rc, stats, full)
            if not mapping["read_only"] and await _push(runtime, provider, con, rc, stats):
                await _pull(runtime, provider, con, rc, stats, False)  # a 412: fetch, resolve, push again
                await _push(runtime, provider, con, rc, stats)
        fresh = provider.refreshed_secrets()
    except Exception as exc:
        if isinstance(exc, ProviderError):
            reason = exc.reason
            log.warning("connection %s: sync failed: %s", cid, reason)
        else:  # a bug: keep the schedule and the record honest, the traceback in the log
            reason = f"internal error during sync ({type(exc).__name__})"
            log.exception("connection %s: sync round failed", cid)
        summary = {"started_at": started, "finished_at": iso_ms(runtime.clock.now()), **_counts(stats), "error": reason}
        auth = isinstance(exc, AuthFailed)
        await db.write(lambda tx: finish_failed(tx, cid, summary, auth))
        return summary
    finally:
        await asyncio.to_thread(provider.close)
    summary = {"started_at": started, "finished_at": iso_ms(runtime.clock.now()), **_counts(stats), "error": None}
    log.info(
        "connection %s: synced (pulled %d, pushed %d, conflicts %d%s)",
        cid,
        stats.pulled,
        stats.pushed,
        stats.conflicts,
        ", full resync" if full or stats.full_resyncs else "",
    )
    secret = runtime.secrets.encrypt(json.dumps(fresh)) if fresh else None
    await db.write(lambda tx: finish_ok(tx, cid, summary, full, secret))
    return summary


def _counts(stats: Stats) -> dict[str, int]:
    d = asdict(stats)
    return {k: d[k] for k in ("pulled", "pushed", "conflicts")}


async def _pull(
    runtime: Runtime, provider: Provider, con: dict[str, Any], rc: RemoteCalendar, stats: Stats, full: bool
) -> None:
    db = runtime.db
    key = (con["id"], rc.remote_id)
    mapping = await db.read(lambda tx: con_store.get_calendar(tx.conn, *key))
    if mapping is None or not mapping["calendar_id"]:
        return
    known = await db.read(
        lambda tx: {link["href"]: link["etag"] for link in sync_store.links(tx.conn, *key) if link["href"]}
    )
    cursor = None if full else mapping["cursor"]
    first_import = mapping["cursor"] is None and not known
    try:
        changes = await asyncio.to_thread(provider.fetch_changes, rc, cursor, known)
    except CursorExpired:
        log.info("connection %s: cursor for %s expired; listing everything", con["id"], rc.remote_id)
        stats.full_resyncs += 1
        changes = await asyncio.to_thread(provider.fetch_changes, rc, None, known)

    tz_name = await db.read(lambda tx: (cal_store.get(tx.conn, mapping["calendar_id"]) or {}).get("timezone"))
    parsed = await asyncio.to_thread(parse_all, changes.items, ZoneInfo(tz_name or "UTC"), stats)

    def merge(tx: Tx, items: list[Any] | None = None) -> None:
        current = con_store.get_calendar(tx.conn, *key)
        if current is None or current["calendar_id"] != mapping["calendar_id"]:
            return  # remapped meanwhile: this round's data belongs to the old mapping
        merger = Merger(tx, con, current, stats, quiet=first_import)
        if items is None:
            merger.finish(changes)
        else:
            merger.apply_items(items, parsed)

    # several short transactions, so a big first sync never holds the writer for long; the
    # cursor moves only in the last one, and re-applying a chunk after a crash is a no-op
    for i in range(0, len(changes.items), MERGE_CHUNK):
        chunk = changes.items[i : i + MERGE_CHUNK]
        await db.write(partial(merge, items=chunk))
    await db.write(lambda tx: merge(tx, None))


def _collect(tx: Tx, con: dict[str, Any], rc: RemoteCalendar) -> list[dict[str, Any]]:
    mapping = con_store.get_calendar(tx.conn, con["id"], rc.remote_id)
    if mapping is None or not mapping["calendar_id"]:
        return []
    calendar = cal_store.get(tx.conn, mapping["calendar_id"])
    out = []
    for pend in sync_store.pending(tx.conn, con["id"], rc.remote_id):
        link = sync_store.link_by_event(tx.conn, con["id"], rc.remote_id, pend["event_id"])
        master = event_store.get(tx.conn, pend["event_id"]) if pend["op"] == "upsert" else None
        exceptions = sync_store.exceptions_of(tx.conn, master["id"]) if master else []
        out.append({"pend": pend, "link": link, "master": master, "exceptions": exceptions, "calendar": calendar})
    return out


async def _push(runtime: Runtime, provider: Provider, con: dict[str, Any], rc: RemoteCalendar, stats: Stats) -> bool:
    """Push queued local changes; True if a precondition failed (the remote changed meanwhile)."""
    db = runtime.db
    cid, rid = con["id"], rc.remote_id
    retry = False
    for job in await db.read(lambda tx: _collect(tx, con, rc)):
        pend, link = job["pend"], job["link"]
        if pend["op"] == "delete":
            href = (link or {}).get("href") or pend["href"]
            etag = (link or {}).get("etag") or pend["etag"]
            if href:
                try:
                    await asyncio.to_thread(provider.delete_event, href, etag)
                except PreconditionFailed:
                    stats.conflicts += 1
                    await db.write(partial(_delete_lost, con=con, rid=rid, pend=pend, link=link))
                    continue
            await db.write(partial(_pushed_delete, cid=cid, rid=rid, pend=pend))
            stats.pushed += 1
            continue
        master = job["master"]
        if master is None:
            await db.write(partial(_drop_pending, cid=cid, rid=rid, pend=pend))
            continue
        try:
            body = convert.build(
                master,
                job["exceptions"],
                ZoneInfo(job["calendar"]["timezone"]),
                (link or {}).get("ical"),
                runtime.clock.now(),
            )
        except Exception as exc:  # noqa: BLE001 - one odd event must not block the others' pushes
            log.warning("connection %s: cannot encode event %s (%s); left queued", cid, master["id"], type(exc).__name__)
            stats.errors.append(f"cannot encode event {master['id']}")
            continue
        try:
            item = await asyncio.to_thread(
                provider.put_event, rc, master["ical_uid"], body, (link or {}).get("href"), (link or {}).get("etag")
            )
        except PreconditionFailed:
            retry = True
            continue
        ids = [master["id"], *(e["id"] for e in job["exceptions"])]
        await db.write(partial(_pushed_upsert, con=con, rid=rid, pend=pend, item=item, master=master, event_ids=ids))
        stats.pushed += 1
    return retry


def _pushed_upsert(
    tx: Tx, con: dict[str, Any], rid: str, pend: dict[str, Any], item: Any, master: dict[str, Any], event_ids: list[str]
) -> None:
    cid = con["id"]
    if con_store.get_calendar(tx.conn, cid, rid) is None:
        return  # disconnected (or unmapped) while the push was in flight
    sync_store.put_link(
        tx.conn,
        {
            "connection_id": cid,
            "remote_id": rid,
            "uid": master["ical_uid"],
            "href": item.href,
            "etag": item.etag,
            "event_id": master["id"],
            "ical": item.ical,
        },
    )
    remote = {
        "connection_id": cid,
        "calendar_remote_id": rid,
        "uid": master["ical_uid"],
        "etag": item.etag,
        "href": item.href,
    }
    sync_store.set_remote(tx.conn, event_ids, remote)
    sync_store.drop_pending(tx.conn, cid, rid, pend["event_id"], pend["version"])


def _drop_pending(tx: Tx, cid: str, rid: str, pend: dict[str, Any]) -> None:
    sync_store.drop_pending(tx.conn, cid, rid, pend["event_id"], pend["version"])


def _pushed_delete(tx: Tx, cid: str, rid: str, pend: dict[str, Any]) -> None:
    if sync_store.drop_pending(tx.conn, cid, rid, pend["event_id"], pend["version"]):
        sync_store.delete_link_for_event(tx.conn, cid, rid, pend["event_id"])


def _delete_lost(tx: Tx, con: dict[str, Any], rid: str, pend: dict[str, Any], link: dict[str, Any] | None) -> None:
    """Local delete vs remote edit: the edit wins; forget the link and re-list so it comes back."""
    cid = con["id"]
    if con_store.get_calendar(tx.conn, cid, rid) is None:
        return
    sync_store.record_conflict(
        tx.conn,
        {
            "connection_id": cid,
            "remote_id": rid,
            "uid": pend["uid"],
            "event_id": pend["event_id"],
            "winner": "remote",
            "reason": "deleted locally, edited remotely: the edit wins",
            "losing_version": "deleted",
            "created_at": iso_ms(tx.now),
        },
    )
    sync_store.drop_pending(tx.conn, cid, rid, pend["event_id"])
    sync_store.delete_link_for_event(tx.conn, cid, rid, pend["event_id"])
    con_store.patch_calendar(tx.conn, cid, rid, {"cursor": None})


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


def finish_ok(tx: Tx, cid: str, summary: dict[str, Any], was_full: bool, secret: str | None = None) -> None:
    from chronary.services import connections as con_service

    con = con_store.get(tx.conn, cid)
    if con is None:
        return
    tx.origin = sync_origin(cid)  # connection.synced comes from this connection's round
    interval = con["sync_interval_minutes"] * 60
    jitter = random.uniform(0, min(60.0, interval * 0.1))
    values: dict[str, Any] = {
        "status": "active",
        "status_reason": None,
        "failures": 0,
        "token_failures": 0,
        "token_last_at": summary["finished_at"],
        "last_synced_at": summary["finished_at"],
        "last_sync": summary,
        "next_sync_at": to_ts(tx.now) + int(interval + jitter),
        "updated_at": iso_ms(tx.now),
    }
    if was_full:
        values["full_resync"] = 0
    if secret is not None:
        values["secret"] = secret
    con_store.patch(tx.conn, cid, values)
    con_service.emit(tx, "connection.synced", cid)


def finish_failed(tx: Tx, cid: str, summary: dict[str, Any], auth: bool) -> None:
    from chronary.services import connections as con_service

    con = con_store.get(tx.conn, cid)
    if con is None:
        return
    tx.origin = sync_origin(cid)  # connection.error too
    failures = con["failures"] + 1
    token_failures = con["token_failures"] + (1 if auth else 0)
    values: dict[str, Any] = {
        "failures": failures,
        "token_failures": token_failures,
        "last_sync": summary,
        "next_sync_at": to_ts(tx.now) + int(backoff_seconds(failures) * random.uniform(1, 1.2)),
        "updated_at": iso_ms(tx.now),
    }
    give_up = token_failures >= AUTH_RETRIES if auth else failures >= ERROR_RETRIES
    if give_up:
        values["status"] = "error"
        values["status_reason"] = summary["error"]
        if auth:
            # a rejected password retried every hour can get an Apple ID locked: once a day
            # from now on, or at once through POST /v1/connections/{id}/refresh
            values["next_sync_at"] = to_ts(tx.now) + AUTH_ERROR_RETRY
    con_store.patch(tx.conn, cid, values)
    if give_up and con["status"] != "error":
        con_service.emit(tx, "connection.error", cid)
