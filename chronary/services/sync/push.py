"""Push channels: the provider tells us a calendar changed, and we sync it within seconds.

A realtime connection keeps one channel per synced remote calendar (Google watch channels,
Graph subscriptions). `ensure` runs inside each sync round: it opens missing channels, renews
those expiring within a day (Google channels cannot be renewed: a new one is opened and the old
one stopped) and stops channels of calendars no longer synced. A failure there never fails the
round; polling at the connection's interval keeps running underneath either way.

`receive` is the public notification endpoint's work: the provider checks the request against
the channel (its token, compared in constant time); a valid one nudges the connection's next
round to now and wakes the scheduler. Anything else changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chronary import providers
from chronary.providers.base import Provider, ProviderError, PushChannel, RemoteCalendar
from chronary.store import connections as con_store
from chronary.store import oauth as oauth_store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms, to_ts

if TYPE_CHECKING:
    from chronary.runtime import Runtime

log = logging.getLogger("chronary.sync.push")
RENEW_AHEAD = 86400  # seconds before expiry a channel is replaced
NOTIFICATIONS_PATH = "/v1/connections/notifications/"


def callback_url(runtime: Runtime, provider: str) -> str:
    return runtime.settings.base_url.rstrip("/") + NOTIFICATIONS_PATH + provider


def _channel(runtime: Runtime, row: dict[str, Any]) -> PushChannel:
    return PushChannel(
        id=row["id"],
        remote_calendar_id=row["remote_id"],
        token=runtime.secrets.decrypt(row["token"]),
        expires_at=row["expires_ts"],
        resource_id=row["resource_id"],
    )


def _store(tx: Tx, runtime: Runtime, con: dict[str, Any], channel: PushChannel) -> None:
    oauth_store.add_channel(
        tx.conn,
        {
            "id": channel.id,
            "connection_id": con["id"],
            "remote_id": channel.remote_calendar_id,
            "provider": con["provider"],
            "token": runtime.secrets.encrypt(channel.token),
            "resource_id": channel.resource_id,
            "expires_ts": channel.expires_at,
            "created_at": iso_ms(tx.now),
        },
    )


async def ensure(runtime: Runtime, provider: Provider, con: dict[str, Any], synced: list[RemoteCalendar]) -> None:
    """Open, renew or stop channels so each synced calendar has exactly one live channel."""
    if con["sync_mode"] != "realtime" or not provider.supports_push:
        return
    db, url = runtime.db, callback_url(runtime, con["provider"])
    rows = await db.read(lambda tx: oauth_store.channels(tx.conn, con["id"]))
    have = {r["remote_id"]: _channel(runtime, r) for r in rows}
    wanted = {rc.remote_id: rc for rc in synced}
    now = to_ts(runtime.clock.now())
    for remote_id, channel in have.items():
        if remote_id not in wanted:
            await _stop(runtime, provider, channel)
    for remote_id, rc in wanted.items():
        old = have.get(remote_id)
        if old is not None and old.expires_at - now > RENEW_AHEAD:
            continue
        try:
            if old is None:
                new = await provider.subscribe(rc, url, secrets.token_urlsafe(32))
            else:
                new = await provider.renew(old, url)
        except ProviderError as exc:
            log.warning("connection %s: cannot open a push channel for %s (%s)", con["id"], remote_id, exc.reason)
            continue

        def keep(tx: Tx, new: PushChannel = new, old: PushChannel | None = old) -> None:
            if old is not None:
                oauth_store.delete_channel(tx.conn, old.id)
            if con_store.get(tx.conn, con["id"]) is not None:
                _store(tx, runtime, con, new)

        await db.write(keep)


async def _stop(runtime: Runtime, provider: Provider, channel: PushChannel) -> None:
    try:
        await provider.unsubscribe(channel)
    except ProviderError as exc:  # it expires on its own; forgetting it is what matters here
        log.info("stopping push channel %s failed (%s)", channel.id, exc.reason)
    await runtime.db.write(lambda tx: oauth_store.delete_channel(tx.conn, channel.id))


async def stop_all(runtime: Runtime, provider: Provider, connection_id: str) -> None:
    """Stop every channel of a connection (disconnect)."""
    rows = await runtime.db.read(lambda tx: oauth_store.channels(tx.conn, connection_id))
    for row in rows:
        await _stop(runtime, provider, _channel(runtime, row))


def handshake(provider_name: str, query: Mapping[str, str]) -> str | None:
    """The echo a provider expects when it validates a new subscription, if this is one."""
    if provider_name not in providers.OAUTH_PROVIDERS:
        return None
    try:
        return providers.load(provider_name).handshake(query)
    except ProviderError:
        return None


async def receive(runtime: Runtime, provider_name: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Check one notification request; True when it was for a channel of ours (a sync is due)."""
    if provider_name not in providers.OAUTH_PROVIDERS:
        return False
    try:
        cls = providers.load(provider_name)
    except ProviderError:
        return False
    lowered = {k.lower(): v for k, v in headers.items()}

    def lookup(channel_id: str) -> PushChannel | None:
        row = runtime.db.read_sync(lambda tx: oauth_store.get_channel(tx.conn, channel_id))
        if row is None or row["provider"] != provider_name:
            return None
        return _channel(runtime, row)

    notes = await asyncio.to_thread(cls.verify_notification, lowered, body, lookup)
    if not notes:
        return False

    def nudge(tx: Tx) -> None:
        for note in notes:
            row = oauth_store.get_channel(tx.conn, note.channel_id)
            if row is None:
                continue
            if note.renew:
                oauth_store.expire_channel(tx.conn, note.channel_id)  # the next round renews (or reopens) it
            if note.sync or note.renew:
                con_store.nudge(tx.conn, row["connection_id"], to_ts(tx.now))

    await runtime.db.write(nudge)
    runtime.signals.notify("sync")
    return True
