"""Connections: provider accounts whose calendars are mirrored two-way into Chronary calendars.

Password providers (icloud, caldav) log in and discover calendars *before* anything is stored,
so wrong credentials answer 400 and leave nothing behind. The password is kept only encrypted
(runtime.secrets) and never leaves this module in a response or a log line. OAuth providers
(google, microsoft) come in through `POST /v1/connections/start` (services/oauth.py).

Calendars in responses: by default only the synced ones (`sync: true`); `expand[]=calendars`
lists every calendar the account has. Webhooks: connection.created, connection.synced,
connection.error, connection.deleted.

Operations answer with `schemas.connections` structs (`to_struct`: Connection; SyncConflict;
`Page[…]` for lists). `load` stays the row and `present` the dict form that webhook payloads
carry (`emit`, in services/connection_shapes.py, which the sync policy calls too).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from msgspec import UNSET

from chronary import ids, providers
from chronary.errors import Conflict, RateLimited, UpstreamError, ValidationError, not_found
from chronary.outbound import OutboundError, check_target
from chronary.providers import base as provider_base
from chronary.schemas.calendars import CalendarCreate
from chronary.schemas.common import set_fields
from chronary.schemas.connections import (
    Connection,
    ConnectionCreate,
    ConnectionUpdate,
    SyncConflict,
)
from chronary.services import calendars as cal_service
from chronary.services import outbox
from chronary.services.agents import load as load_agent
from chronary.services.connection_shapes import present, to_struct
from chronary.services.context import Ctx, Page, Principal
from chronary.services.sync import push
from chronary.services.sync.accounts import make_provider, store_calendars
from chronary.store import calendars as cal_store
from chronary.store import connections as con_store
from chronary.store import events as event_store
from chronary.store import sync as sync_store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms, to_ts, valid_timezone

if TYPE_CHECKING:
    from chronary.runtime import Runtime

log = logging.getLogger("chronary.connections")
ICLOUD_URL = "https://caldav.icloud.com"
REFRESH_EVERY = 60  # seconds between manual full resyncs of one connection


def _stored(tx: Tx, connection_id: str) -> dict[str, Any]:
    """The row of a connection this transaction has just loaded or written."""
    row = con_store.get(tx.conn, connection_id)
    assert row is not None, connection_id
    return row


def load(tx: Tx, principal: Principal, connection_id: str) -> dict[str, Any]:
    principal.require_org("connections")
    row = con_store.get(tx.conn, connection_id)
    if row is None or row["org_id"] != principal.org_id or row["provider"] not in con_store.CALENDAR_PROVIDERS:
        raise not_found("connection", connection_id)  # Connect's API-key connections live at /connect/v1
    return row


# -- create ---------------------------------------------------------------------------------------


def _server_url(data: ConnectionCreate, runtime: Runtime) -> str:
    url = data.server_url or (ICLOUD_URL if data.provider == "icloud" else None)
    if not url:
        raise ValidationError("server_url is required for caldav connections (e.g. https://dav.example.com/)", "server_url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("server_url must be an http(s) URL such as https://dav.example.com/", "server_url")
    try:
        check_target(url, runtime.settings)
    except OutboundError as exc:
        raise ValidationError(f"server_url is not allowed: {exc.reason}", "server_url") from None
    return url


async def connect(runtime: Runtime, principal: Principal, data: ConnectionCreate) -> Connection:
    principal.require_org("connections")
    if data.provider in providers.OAUTH_PROVIDERS:
        raise ValidationError(
            f"{data.provider} connects with OAuth: use POST /v1/connections/start; POST /v1/connections takes "
            "only password providers (icloud, caldav)",
            "provider",
        )
    for field in ("username", "password"):
        if not getattr(data, field):
            raise ValidationError(f"{field} is required for {data.provider} connections", field)
    agent = await runtime.db.read(lambda tx: load_agent(tx, principal, data.agent_id))
    url = await asyncio.to_thread(_server_url, data, runtime)
    account = provider_base.Account(data.provider, data.username, url, {"password": data.password or ""})
    provider = providers.load(data.provider)(account, runtime.settings, runtime.clock)
    try:
        email = await provider.login()
        remote = await provider.list_calendars()
    except provider_base.AuthFailed:
        hint = " (iCloud needs an app-specific password from appleid.apple.com)" if data.provider == "icloud" else ""
        raise ValidationError(f"Login failed: the server rejected the username or password{hint}", "password") from None
    except provider_base.Unreachable as exc:
        raise UpstreamError(f"Could not reach the server at {urlsplit(url).netloc}: {exc.reason}", "server_url") from None
    except provider_base.ProviderError as exc:
        if not exc.retryable:
            raise ValidationError(f"The server refused the connection: {exc.reason}", "server_url") from None
        raise UpstreamError(f"The server answered with an error: {exc.reason}", "server_url") from None
    finally:
        await provider.close()
    secret = runtime.secrets.encrypt(json.dumps({"password": data.password}))

    def store(tx: Tx) -> Connection:
        for other in con_store.list_(tx.conn, principal.org_id, data.provider, agent["id"], None, 200, 0)[0]:
            if other["username"] == data.username and other["server_url"] == url:
                raise Conflict(f"Agent {agent['id']} already has this account connected ({other['id']})", "username")
        now = iso_ms(tx.now)
        row: dict[str, Any] = {
            "id": ids.new_id("con"),
            "org_id": principal.org_id,
            "agent_id": agent["id"],
            "provider": data.provider,
            "status": "active",
            "status_reason": None,
            "username": data.username,
            "email": email if "@" in (email or "") else None,
            "server_url": url,
            "secret": secret,
            "sync_mode": "realtime" if provider.supports_push else "polling",
            "sync_interval_minutes": 5,
            "last_synced_at": None,
            "last_sync": None,
            "token_last_at": now,
            "token_failures": 0,
            "failures": 0,
            "next_sync_at": to_ts(tx.now),
            "full_resync": 0,
            "created_at": now,
            "updated_at": now,
        }
        con_store.create(tx.conn, row)
        store_calendars(tx, row["id"], remote)
        out = to_struct(tx, row, expand_calendars=True)
        outbox.emit(tx, "connection.created", present(tx, row), agent_id=agent["id"])
        return out

    return await runtime.db.write(store)


# -- read -----------------------------------------------------------------------------------------


def get(tx: Tx, principal: Principal, connection_id: str, expand: list[str] | None) -> Connection:
    return to_struct(tx, load(tx, principal, connection_id), _expand(expand))


def _expand(expand: list[str] | None) -> bool:
    for value in expand or []:
        if value != "calendars":
            raise ValidationError(f"expand[] accepts only 'calendars' (got {value!r})", "expand[]")
    return bool(expand)


def list_(
    tx: Tx,
    principal: Principal,
    provider: str | None,
    agent_id: str | None,
    status: str | None,
    expand: list[str] | None,
    limit: int,
    offset: int,
) -> Page[Connection]:
    principal.require_org("connections")
    full = _expand(expand)
    rows, total = con_store.list_(tx.conn, principal.org_id, provider, agent_id, status, limit, offset)
    cals = con_store.calendars_for(tx.conn, [r["id"] for r in rows])
    return Page([to_struct(tx, r, full, cals[r["id"]]) for r in rows], total, limit, offset)


# -- change ---------------------------------------------------------------------------------------


def update(tx: Tx, ctx: Ctx, connection_id: str, data: ConnectionUpdate) -> Connection:
    row = load(tx, ctx.principal, connection_id)
    changes = set_fields(data)
    if not changes:
        raise ValidationError("PATCH needs at least one field (calendars, sync_interval_minutes)", None)
    values: dict[str, Any] = {"updated_at": iso_ms(tx.now), "next_sync_at": to_ts(tx.now)}
    if "sync_interval_minutes" in changes:
        values["sync_interval_minutes"] = changes["sync_interval_minutes"]
    seen: set[str] = set()
    for i, choice in enumerate(changes.get("calendars", [])):
        param = f"calendars[{i}]"
        if choice.remote_id in seen:
            raise ValidationError(f"{param}.remote_id {choice.remote_id!r} is listed twice", f"{param}.remote_id")
        seen.add(choice.remote_id)
        _choose(tx, ctx, row, choice, param)
    con_store.patch(tx.conn, connection_id, values)
    return to_struct(tx, _stored(tx, connection_id), expand_calendars=True)


def _choose(tx: Tx, ctx: Ctx, con: dict[str, Any], choice: Any, param: str) -> None:
    mapping = con_store.get_calendar(tx.conn, con["id"], choice.remote_id)
    if mapping is None:
        raise ValidationError(f"{param}.remote_id: this account has no calendar {choice.remote_id!r}", f"{param}.remote_id")
    wanted = None if choice.calendar_id is UNSET else choice.calendar_id
    if not choice.sync:
        if wanted is not None:
            raise ValidationError(f"{param}.calendar_id must be omitted when sync is false", f"{param}.calendar_id")
        if mapping["sync"]:
            _unmap(tx, con["id"], mapping)
        return
    if wanted is None:
        keep = mapping["sync"] and mapping["calendar_id"]
        wanted = mapping["calendar_id"] if keep else _new_calendar(tx, ctx, con, mapping)
    else:
        cal = cal_store.get(tx.conn, wanted)
        if cal is None or cal["agent_id"] != con["agent_id"]:
            raise ValidationError(
                f"{param}.calendar_id must be a calendar of agent {con['agent_id']}", f"{param}.calendar_id"
            )
    for other in con_store.synced_targets(tx.conn, wanted):
        if (other["connection_id"], other["remote_id"]) != (con["id"], mapping["remote_id"]):
            raise Conflict(
                f"Calendar {wanted} already mirrors another remote calendar ({other['remote_id']})", f"{param}.calendar_id"
            )
    if mapping["sync"] and mapping["calendar_id"] == wanted:
        return
    if mapping["sync"]:
        _unmap(tx, con["id"], mapping)
    sync_store.delete_links_for_calendar(tx.conn, con["id"], mapping["remote_id"])
    con_store.patch_calendar(tx.conn, con["id"], mapping["remote_id"], {"sync": True, "calendar_id": wanted, "cursor": None})
    if not mapping["read_only"]:
        _queue_existing(tx, con, mapping["remote_id"], wanted)


def _new_calendar(tx: Tx, ctx: Ctx, con: dict[str, Any], mapping: dict[str, Any]) -> str:
    from chronary.store import agents as agent_store

    agent = agent_store.get(tx.conn, con["agent_id"])
    assert agent is not None  # a connection goes with its agent
    tz = mapping["timezone"] if mapping["timezone"] and valid_timezone(mapping["timezone"]) else agent["timezone"]
    created = cal_service.create(
        tx,
        ctx,
        con["agent_id"],
        CalendarCreate(
            name=(mapping["name"] or "Calendar")[:255],
            timezone=tz,
            metadata={"connection_id": con["id"], "remote_id": mapping["remote_id"]},
        ),
    )
    return created.id


def _queue_existing(tx: Tx, con: dict[str, Any], remote_id: str, calendar_id: str) -> None:
    """Mapping an existing calendar: its local events go up to the provider on the next round."""
    page_size, offset = 200, 0
    while True:
        rows, total = event_store.list_(tx.conn, event_store.EventFilter(calendar_id=calendar_id), page_size, offset)
        for r in rows:
            if r["recurring_event_id"] is None and r["remote"] is None:
                sync_store.enqueue(
                    tx.conn,
                    {
                        "connection_id": con["id"],
                        "remote_id": remote_id,
                        "event_id": r["id"],
                        "op": "upsert",
                        "uid": r["ical_uid"],
                        "href": None,
                        "etag": None,
                        "changed_at": iso_ms(tx.now),
                    },
                )
        offset += page_size
        if offset >= total:
            return


def _unmap(tx: Tx, connection_id: str, mapping: dict[str, Any]) -> None:
    """Stop syncing one calendar: its mirrors stay as plain local events."""
    touched = sync_store.detach_events(tx.conn, connection_id, mapping["remote_id"])
    for calendar_id in touched:
        cal_store.bump_revision(tx.conn, calendar_id)
    sync_store.delete_links_for_calendar(tx.conn, connection_id, mapping["remote_id"])
    con_store.patch_calendar(
        tx.conn, connection_id, mapping["remote_id"], {"sync": False, "calendar_id": None, "cursor": None}
    )


async def disconnect(runtime: Runtime, principal: Principal, connection_id: str) -> None:
    """Revoke the grant at the provider where it can (best effort), then forget everything."""
    row = await runtime.db.read(lambda tx: load(tx, principal, connection_id))
    if row["secret"]:
        try:
            provider = make_provider(runtime, row)
            await push.stop_all(runtime, provider, connection_id)
            await provider.revoke()
            await provider.close()
        except Exception as exc:  # noqa: BLE001 - a failed revoke must not keep the account connected
            log.warning("connection %s: revoke at the provider failed (%s)", connection_id, type(exc).__name__)
    await runtime.db.write(lambda tx: delete(tx, principal, connection_id))


def delete(tx: Tx, principal: Principal, connection_id: str) -> None:
    """Stop syncing and forget the credentials; mirrored events stay as plain local events."""
    row = load(tx, principal, connection_id)
    before = present(tx, row)
    for calendar_id in sync_store.detach_events(tx.conn, connection_id):
        cal_store.bump_revision(tx.conn, calendar_id)
    con_store.delete(tx.conn, connection_id)  # cascades: calendar mappings, links, queued pushes
    outbox.emit(tx, "connection.deleted", before, agent_id=row["agent_id"])


def refresh(tx: Tx, principal: Principal, connection_id: str) -> Connection:
    """Ask for a full resync now (the scheduler picks it up at once); once a minute at most."""
    row = load(tx, principal, connection_id)
    now = to_ts(tx.now)
    last = row["refresh_requested_at"]
    if last is not None and now - last < REFRESH_EVERY:
        wait = REFRESH_EVERY - (now - last)
        raise RateLimited(f"A full resync of {connection_id} was requested {now - last} s ago; try again in {wait} s", wait)
    con_store.patch(
        tx.conn,
        connection_id,
        {"full_resync": 1, "next_sync_at": now, "refresh_requested_at": now, "updated_at": iso_ms(tx.now)},
    )
    return to_struct(tx, _stored(tx, connection_id))


def conflicts(tx: Tx, principal: Principal, connection_id: str, limit: int, offset: int) -> Page[SyncConflict]:
    """The losing side of every conflict the sync resolved (see chronary/services/sync/merge.py for the rule)."""
    load(tx, principal, connection_id)
    rows, total = sync_store.conflicts(tx.conn, connection_id, limit, offset)
    items = [
        SyncConflict(
            id=r["id"],
            remote_id=r["remote_id"],
            uid=r["uid"],
            event_id=r["event_id"],
            winner=r["winner"],
            reason=r["reason"],
            losing_version=r["losing_version"],
            created_at=r["created_at"],
        )
        for r in rows
    ]
    return Page(items, total, limit, offset)
