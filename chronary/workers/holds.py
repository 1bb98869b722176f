"""Deletes holds whose `hold_expires_at` has passed, emitting event.hold_expired for each."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from chronary.services import events as event_service
from chronary.store import events as event_store
from chronary.timeutil import to_ts
from chronary.workers import Worker, sleep_or_stop

if TYPE_CHECKING:
    from chronary.runtime import Runtime

log = logging.getLogger("chronary.workers.holds")
POLL_SECONDS = 1.0


class HoldExpiryWorker:
    name = "hold-expiry"

    def __init__(self, runtime: Runtime, poll_seconds: float = POLL_SECONDS) -> None:
        self.runtime = runtime
        self.poll_seconds = poll_seconds

    async def sweep(self) -> list[str]:
        db = self.runtime.db
        next_expiry = await db.read(lambda tx: event_store.next_hold_expiry(tx.conn))
        if next_expiry is None or next_expiry > to_ts(self.runtime.clock.now()):
            return []
        expired = await db.write(lambda tx: event_service.expire_holds(tx, self.runtime.settings.base_url))
        if expired:
            log.info("expired %d hold(s)", len(expired))
        return expired

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.sweep()
            await sleep_or_stop(stop, self.poll_seconds)


def build(runtime: Runtime) -> list[Worker]:
    return [HoldExpiryWorker(runtime)]
