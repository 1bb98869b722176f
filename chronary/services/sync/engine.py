"""One sync round for one connection: discover calendars, pull, merge, push.

Never branches on the provider: everything goes through `chronary.providers.base.Provider`.
Database writes run on the writer thread and never span network I/O: fetch (page by page) →
short write transactions to merge → network push → one small write per pushed event. Only one
round per connection runs at a time: an in-process lock plus a DB lease row
(`connections.lease_owner/lease_until`) so a restart or a second process cannot start a
parallel round. Refreshed OAuth tokens are stored at the end of every round, failed ones too.
See merge.py for the conflict rule and policy.py for status and backoff.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from dataclasses import asdict
from functools import partial
from typing import TYPE_CHECKING, Any

from chronary.providers.base import (
    AuthFailed,
    Changes,
    CursorExpired,
    PreconditionFailed,
    Provider,
    ProviderError,
    RemoteCalendar,
    RemoteEvent,
    Window,
)
from chronary.services.changes import sync_origin
from chronary.services.sync import policy, push
from chronary.services.sync.accounts import make_provider, store_calendars
from chronary.services.sync.merge import Merger, Mirror, Stats
from chronary.services.sync.outgoing import outgoing
from chronary.store import calendars as cal_store
from chronary.store import connections as con_store
from chronary.store import events as event_store
from chronary.store import sync as sync_store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms, to_ts

if TYPE_CHECKING:
    from chronary.runtime import Runtime

log = logging.getLogger("chronary.sync")
OWNER = f"proc-{secrets.token_hex(6)}"  # this process, for the DB lease
LEASE_SECONDS = 300
MERGE_CHUNK = 200  # remote events per merge transaction, unless the provider says otherwise
LEASE_RENEW_EVERY = 50  # pushed events between lease renewals
MAX_PAGES = 10_000  # a provider that pages forever is a bug, not a calendar

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(connection_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(connection_id, threading.Lock())


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


def _remote_calendar(mapping: dict[str, Any], local_timezone: str) -> RemoteCalendar:
    return RemoteCalendar(
        mapping["remote_id"],
        mapping["name"] or "",
        mapping["color"],
        bool(mapping["read_only"]),
        mapping["timezone"],
        local_timezone,
    )


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
        await _calendars_round(runtime, provider, con, stats, full)
    except Exception as exc:
        if isinstance(exc, ProviderError):
            reason = exc.reason
            log.warning("connection %s: sync failed: %s", cid, reason)
        else:  # a bug: keep the schedule and the record honest, the traceback in the log
            reason = f"internal error during sync ({type(exc).__name__})"
            log.exception("connection %s: sync round failed", cid)
        summary = {"started_at": started, "finished_at": iso_ms(runtime.clock.now()), **_counts(stats), "error": reason}
        fresh = _fresh_secret(runtime, provider)
        auth = isinstance(exc, AuthFailed) or provider.refresh_failures > 0
        reauthorize = isinstance(exc, AuthFailed) and exc.reauthorize
        retry_after = exc.retry_after if isinstance(exc, ProviderError) else None
        await db.write(
            lambda tx: policy.finish_failed(
                tx, cid, summary, auth, reauthorize=reauthorize, retry_after=retry_after, secret=fresh
            )
        )
        return summary
    finally:
        await provider.close()
    summary = {"started_at": started, "finished_at": iso_ms(runtime.clock.now()), **_counts(stats), "error": None}
    log.info(
        "connection %s: synced (pulled %d, pushed %d, conflicts %d%s)",
        cid,
        stats.pulled,
        stats.pushed,
        stats.conflicts,
        ", full resync" if full or stats.full_resyncs else "",
    )
    secret = _fresh_secret(runtime, provider)
    token_checked = provider.refreshes > 0 or not provider.supports_oauth  # a login or a refresh happened
    await db.write(lambda tx: policy.finish_ok(tx, cid, summary, full, secret, token_checked=token_checked))
    return summary


def _fresh_secret(runtime: Runtime, provider: Provider) -> str | None:
    fresh = provider.refreshed_secrets()
    return runtime.secrets.encrypt(json.dumps(fresh)) if fresh else None


async def _calendars_round(runtime: Runtime, provider: Provider, con: dict[str, Any], stats: Stats, full: bool) -> None:
    db, cid = runtime.db, con["id"]
    remote = await provider.list_calendars()
    mapped: list[str] = [] if remote else await db.read(lambda tx: con_store.mapped_calendar_ids(tx.conn, cid))
    if mapped:
        # more likely a server glitch than an account emptied of calendars: forget nothing
        raise ProviderError("the server listed no calendars; keeping the mirrors until it lists them again")
    await db.write(lambda tx: store_calendars(tx, cid, remote))
    mappings = await db.read(lambda tx: [m for m in con_store.calendars(tx.conn, cid) if m["sync"] and m["calendar_id"]])
    synced: list[RemoteCalendar] = []
    for mapping in mappings:
        await db.write(
            lambda tx: con_store.acquire_lease(  # renew: a long first sync keeps its lease
                tx.conn, cid, OWNER, to_ts(tx.now), to_ts(tx.now) + LEASE_SECONDS
            )
        )
        zone = await db.read(partial(_calendar_zone, calendar_id=mapping["calendar_id"]))
        rc = _remote_calendar(mapping, zone)
        synced.append(rc)
        await pull(runtime, provider, con, rc, stats, full)
        if not mapping["read_only"] and await _push(runtime, provider, con, rc, stats):
            await pull(runtime, provider, con, rc, stats, False)  # a 412: fetch, resolve, push again
            await _push(runtime, provider, con, rc, stats)
    await push.ensure(runtime, provider, con, synced)


def _calendar_zone(tx: Tx, calendar_id: str) -> str:
    calendar = cal_store.get(tx.conn, calendar_id)
    return calendar["timezone"] if calendar else "UTC"


def _counts(stats: Stats) -> dict[str, int]:
    d = asdict(stats)
    return {k: d[k] for k in ("pulled", "pushed", "conflicts")}


def _window(runtime: Runtime, provider: Provider) -> Window | None:
    if provider.sync_window_days is None:
        return None
    now = to_ts(runtime.clock.now())
    span = provider.sync_window_days * 86400
    return Window(now - span, now + span)


async def pull(
    runtime: Runtime, provider: Provider, con: dict[str, Any], rc: RemoteCalendar, stats: Stats, full: bool
) -> None:
    """Fetch what changed in one remote calendar, page by page, and merge it."""
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
    window = _window(runtime, provider)
    mirror = Mirror(
        owner_id=con["id"],
        remote_id=rc.remote_id,
        calendar_id=mapping["calendar_id"],
        read_only=bool(mapping["read_only"]),
        source=con["provider"],
        origin=sync_origin(con["id"]),
    )

    def merge(tx: Tx, events: list[RemoteEvent] | None = None, last: Changes | None = None) -> None:
        current = con_store.get_calendar(tx.conn, *key)
        if current is None or current["calendar_id"] != mapping["calendar_id"]:
            return  # remapped meanwhile: this round's data belongs to the old mapping
        merger = Merger(tx, mirror, stats, quiet=first_import)
        if events is not None:
            merger.apply_events(events)
        if last is not None:
            merger.finish(last)
            con_store.patch_calendar(tx.conn, *key, {"cursor": last.cursor})

    # several short transactions, so a big first sync never holds the writer for long; the
    # cursor moves only in the last one, and re-applying a chunk after a crash is a no-op
    present: set[str] = set()
    deleted: list[str] = []
    page: str | None = None
    chunk = provider.merge_chunk or MERGE_CHUNK
    for _ in range(MAX_PAGES):
        try:
            changes = await provider.fetch_changes(rc, cursor, known, window, page)
        except CursorExpired:
            if cursor is None:
                raise
            log.info("connection %s: cursor for %s expired; listing everything", con["id"], rc.remote_id)
            stats.full_resyncs += 1
            cursor, page, present, deleted = None, None, set(), []
            continue
        stats.skipped += changes.skipped
        present |= changes.present
        deleted += changes.deleted
        for i in range(0, len(changes.events), chunk):
            await db.write(partial(merge, events=changes.events[i : i + chunk]))
        page = changes.next_page
        if page is None:
            if changes.unchanged:
                return
            final = Changes(deleted=deleted, present=present, cursor=changes.cursor, full=changes.full)
            await db.write(partial(merge, last=final))
            return
    raise ProviderError(f"the provider kept paging {rc.remote_id} past {MAX_PAGES} pages")


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
    for n, job in enumerate(await db.read(lambda tx: _collect(tx, con, rc)), 1):
        if n % LEASE_RENEW_EVERY == 0:  # a long push (a budget-limited provider) keeps its lease
            await db.write(
                lambda tx: con_store.acquire_lease(tx.conn, cid, OWNER, to_ts(tx.now), to_ts(tx.now) + LEASE_SECONDS)
            )
        pend, link = job["pend"], job["link"]
        if pend["op"] == "delete":
            href = (link or {}).get("href") or pend["href"]
            etag = (link or {}).get("etag") or pend["etag"]
            if href:
                try:
                    await provider.delete_event(rc, href, etag)
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
        out = outgoing(master, job["exceptions"], job["calendar"], link)
        try:
            item = await provider.put_event(rc, out)
        except PreconditionFailed:
            retry = True
            continue
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - one odd event must not block the others' pushes
            log.warning("connection %s: cannot encode event %s (%s); left queued", cid, master["id"], type(exc).__name__)
            stats.errors.append(f"cannot encode event {master['id']}")
            continue
        event_ids = [master["id"], *(e["id"] for e in job["exceptions"])]
        await db.write(partial(_pushed_upsert, con=con, rid=rid, pend=pend, item=item, master=master, event_ids=event_ids))
        stats.pushed += 1
    return retry


def _pushed_upsert(
    tx: Tx,
    con: dict[str, Any],
    rid: str,
    pend: dict[str, Any],
    item: RemoteEvent,
    master: dict[str, Any],
    event_ids: list[str],
) -> None:
    cid = con["id"]
    if con_store.get_calendar(tx.conn, cid, rid) is None:
        return  # disconnected (or unmapped) while the push was in flight
    sync_store.put_link(
        tx.conn,
        {
            "owner_id": cid,
            "remote_id": rid,
            "uid": master["ical_uid"],
            "href": item.remote_id,
            "etag": item.etag,
            "event_id": master["id"],
            "ical": item.raw,
        },
    )
    remote = {
        "connection_id": cid,
        "calendar_remote_id": rid,
        "uid": master["ical_uid"],
        "etag": item.etag,
        "href": item.remote_id,
    }
    old = master.get("remote") or {}
    if isinstance(old, dict) and old.get("tzid"):
        remote["tzid"] = old["tzid"]
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
