"""Provider sync scheduler: runs each connection's round when it is due.

Due time lives in SQLite (`connections.next_sync_at`), so schedules survive restarts: after a
successful round the next is `interval + jitter` away; after a failure the engine backs off
exponentially (1, 2, 4 … 60 min). A local change nudges its connection to "now" through the
push-queue hook, and a commit that wrote `connections` wakes this worker, so agent bookings go
out within seconds.
Rounds run concurrently across connections (bounded) but never twice for one connection
(engine: in-process lock + DB lease).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import TYPE_CHECKING

from chronary.services.sync import engine
from chronary.store import connections as con_store
from chronary.timeutil import to_ts
from chronary.workers import Worker, sleep_or_stop

if TYPE_CHECKING:
    from chronary.runtime import Runtime

log = logging.getLogger("chronary.workers.sync")
MAX_PARALLEL = 4
IDLE_SECONDS = 30.0


class SyncWorker:
    name = "provider-sync"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.running: dict[str, asyncio.Task[None]] = {}
        self.slots = asyncio.Semaphore(MAX_PARALLEL)

    async def _one(self, connection_id: str) -> None:
        async with self.slots:
            try:
                await engine.sync_connection(self.runtime, connection_id)
            except Exception:
                log.exception("connection %s: sync round crashed", connection_id)
                # push the schedule out so a crashing connection cannot spin
                await self.runtime.db.write(
                    lambda tx: con_store.patch(tx.conn, connection_id, {"next_sync_at": to_ts(tx.now) + 300})
                )

    async def tick(self) -> None:
        now = to_ts(self.runtime.clock.now())
        due = await self.runtime.db.read(lambda tx: con_store.due(tx.conn, now))
        for row in due:
            cid = row["id"]
            if cid in self.running:
                continue
            task = asyncio.create_task(self._one(cid), name=f"sync:{cid}")
            self.running[cid] = task
            task.add_done_callback(functools.partial(self._forget, cid))

    def _forget(self, connection_id: str, _task: asyncio.Task[None]) -> None:
        self.running.pop(connection_id, None)

    async def run(self, stop: asyncio.Event) -> None:
        wake = self.runtime.signals.event("sync")
        try:
            while not stop.is_set():
                await self.tick()
                next_at = await self.runtime.db.read(lambda tx: con_store.next_due_at(tx.conn))
                now = to_ts(self.runtime.clock.now())
                wait = IDLE_SECONDS if next_at is None else max(0.2, min(IDLE_SECONDS, next_at - now))
                await sleep_or_stop(stop, wait, wake)
        finally:
            if self.running:
                await asyncio.wait(list(self.running.values()), timeout=5)


def build(runtime: Runtime) -> list[Worker]:
    runtime.db.wake_on("sync", "connections")  # a schedule moved (a queued push nudges next_sync_at)
    return [SyncWorker(runtime)]
