"""Everything a running server holds: settings, clock, database, secret box, wake-up signals.

Built once by `open_runtime` (which also migrates and bootstraps the database) and shared by the
API and the background workers.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

from chronary.clock import Clock, SystemClock
from chronary.config import Settings
from chronary.crypto import SecretBox
from chronary.services import feeds as _feeds  # noqa: F401 - registers its event-change listener (hooks.py)
from chronary.services import keys as key_service
from chronary.store.db import Database
from chronary.store.migrate import migrate
from chronary.sync import queue as _sync_queue  # noqa: F401 - registers its event-change listener (hooks.py)


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
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        ev = self.events.get(name)
        if ev is not None:
            loop.call_soon_threadsafe(ev.set)


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    db: Database
    secrets: SecretBox
    org_id: str
    first_key: str | None
    signals: Signals = field(default_factory=Signals)
    extras: dict[str, Any] = field(default_factory=dict)


def open_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    clock = clock or SystemClock()
    db = Database(settings.db_path, clock, synchronous=settings.sqlite_synchronous)
    db.write_sync_raw(migrate)
    org_id, first_key = db.write_sync(key_service.bootstrap)
    runtime = Runtime(settings, clock, db, SecretBox(settings.key_path), org_id, first_key)
    db.commit_listeners.append(lambda: runtime.signals.notify("commit"))
    return runtime
