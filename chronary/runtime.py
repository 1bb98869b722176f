"""Everything a running server holds: settings, clock, database, secret box, wake-up signals.

Built once by `open_runtime` (which also migrates and bootstraps the database) and shared by the
API and the background workers. It is also where the change pipeline is assembled
(`default_pipeline`): what every recorded change reaches. Nothing registers itself on import.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from chronary.clock import Clock, SystemClock
from chronary.config import Settings
from chronary.crypto import SecretBox
from chronary.services import feeds, outbox
from chronary.services import keys as key_service
from chronary.services.automation import triggers as automation_triggers
from chronary.services.changes import Change, Pipeline
from chronary.services.sync import queue as sync_queue
from chronary.store import listeners
from chronary.store.db import Database, Tx
from chronary.store.migrate import migrate, schema_version
from chronary.webhooks import dispatch


@dataclass
class Signals:
    """Thread-safe wake-ups: a write on any thread can nudge an asyncio worker to look now."""

    loop: asyncio.AbstractEventLoop | None = None
    events: dict[str, asyncio.Event] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def event(self, name: str) -> asyncio.Event:
        with self._lock:
            if name not in self.events:
                self.events[name] = asyncio.Event()
            return self.events[name]

    def notify(self, name: str) -> None:
        self.notify_many((name,))

    def notify_many(self, names: Iterable[str]) -> None:
        """Set these signals' events with one hop to the loop (a commit wakes several at once)."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        events = [ev for ev in (self.events.get(name) for name in names) if ev is not None]
        if events:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_set_all, events)


def _set_all(events: list[asyncio.Event]) -> None:
    for ev in events:
        ev.set()


class ApiActivity:
    """When the API last began answering a request (time.monotonic), for background work that
    yields to it: webhook senders pace themselves while requests come in. Set by the request
    middleware on the event loop and read from other threads: one float, no lock."""

    def __init__(self) -> None:
        self.last = float("-inf")

    def seen(self) -> None:
        self.last = time.monotonic()

    def busy(self, within: float) -> bool:
        """Did a request arrive in the last `within` seconds?"""
        return time.monotonic() - self.last < within


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    db: Database
    secrets: SecretBox
    org_id: str
    first_key: str | None
    schema_version: int = 0  # migrations run only at start, so it is read once (GET /health stays off the database)
    signals: Signals = field(default_factory=Signals)
    extras: dict[str, Any] = field(default_factory=dict)
    activity: ApiActivity = field(default_factory=ApiActivity)


def default_pipeline(payload_limit: int = 64 * 1024) -> Pipeline:
    """The consumers of changes (services/changes.py), in the order they run.

    In the change's own transaction: `feeds` (the calendar's feed is marked changed, so a feed
    fetched right after a write is fresh) and `sync-push` (queue pushes to mirroring
    connections, never back to the connection a change came from). Later, from the change log:
    `webhooks` (fan-out to deliveries, workers/webhooks.py). `automation` also runs in the change's
    transaction: a flow whose trigger wants the change gets its run queued there (capped at
    `payload_limit` bytes of trigger data). More consumers (MCP notifications) are added here.
    """
    pipeline = Pipeline()
    pipeline.listen("feeds", feeds.on_change)
    pipeline.listen("sync-push", sync_queue.on_change, when=_calendar_is_mapped)
    pipeline.listen(
        "automation", partial(automation_triggers.on_change, payload_limit=payload_limit), when=_type_has_trigger
    )
    pipeline.consumer(dispatch.CONSUMER, wants=outbox.wants)
    return pipeline


def _calendar_is_mapped(tx: Tx, change: Change) -> bool:
    """sync-push acts only on event changes of a calendar some connection mirrors."""
    if change.calendar is None:
        return False
    calendar_id = change.calendar["id"]
    return tx.memo(
        ("mapped", calendar_id), ("connection_calendars",), lambda: listeners.calendar_is_mapped(tx.conn, calendar_id)
    )


def _type_has_trigger(tx: Tx, change: Change) -> bool:
    """automation acts only on logged webhook changes whose type some flow trigger matches."""
    change_type = change.type
    if change_type is None or not change.webhook:
        return False
    return tx.memo(
        ("trigger", change_type), ("flow_trigger_types",), lambda: listeners.type_has_trigger(tx.conn, change_type)
    )


def open_runtime(settings: Settings, clock: Clock | None = None, *, pipeline: Pipeline | None = None) -> Runtime:
    """`pipeline` replaces the default one (tests: an empty Pipeline() reaches no listener)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    clock = clock or SystemClock()
    db = Database(settings.db_path, clock, synchronous=settings.sqlite_synchronous)
    db.write_sync_raw(migrate)
    db.changes = pipeline = default_pipeline(settings.record_payload_max_bytes) if pipeline is None else pipeline
    db.write_sync(pipeline.declare)
    org_id, first_key = db.write_sync(key_service.bootstrap)
    version = db.read_sync(lambda tx: schema_version(tx.conn))
    runtime = Runtime(settings, clock, db, SecretBox(settings.key_path), org_id, first_key, version)
    db.notify = runtime.signals.notify_many  # workers are woken by what a commit wrote (Database.wake_on)
    return runtime
