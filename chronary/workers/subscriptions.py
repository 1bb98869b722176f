"""Refreshes iCal subscriptions when due: conditional GET, parse, then one write transaction.

Order matters for safety: the `ics` provider fetches (guarded by chronary.outbound: timeout,
10 MB cap, bounded redirects, never this server) and decodes (in a thread; icalendar is slow)
with no transaction open; only a fully decoded feed is merged (services/sync/feeds.py), so a
broken or hostile feed records an error and leaves what was imported untouched. One sync per
subscription at a time.

Requests only mark a subscription due and wake this worker (SIGNAL); they never sync inside
their own response cycle. Every failure, an unexpected exception included, is recorded (status
error, a safe last_error) and retried with backoff: 1 min, doubling, up to the refresh interval
(`services.subscriptions.retry_delay`). A success puts the subscription back to active.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from chronary.providers.base import ProviderError
from chronary.providers.ics import FeedUnreadable
from chronary.services import subscriptions as svc
from chronary.services.sync import feeds
from chronary.store import subscriptions as store
from chronary.timeutil import to_ts
from chronary.workers import Worker, sleep_or_stop

if TYPE_CHECKING:
    from chronary.runtime import Runtime

log = logging.getLogger("chronary.workers.subscriptions")
SIGNAL = "ical_subscriptions"
OPTIONS_KEY = "ical_subscription_worker_options"  # runtime.extras: SubscriptionWorker kwargs (tests)
POLL_SECONDS = 1.0
CONCURRENCY = 4


def _lock(runtime: Runtime, sub_id: str) -> asyncio.Lock:
    locks: dict[str, asyncio.Lock] = runtime.extras.setdefault("ical_subscription_locks", {})
    if sub_id not in locks:
        locks[sub_id] = asyncio.Lock()
    return locks[sub_id]


async def sync_subscription(runtime: Runtime, sub_id: str, *, only_if_due: bool = False) -> str:
    """Sync one subscription now; returns "synced", "not_modified", "failed" or "skipped".

    Never raises for a bad subscription: any unexpected exception is recorded like a failed
    fetch (status error, a safe last_error, backoff), so one hostile row cannot make the worker
    retry it every second with a traceback each time.
    """
    async with _lock(runtime, sub_id):
        try:
            return await _sync(runtime, sub_id, only_if_due)
        except Exception as exc:  # noqa: BLE001 - recorded and logged below, never retried hot
            return await _fail(
                runtime, sub_id, f"the sync failed with an internal error ({type(exc).__name__}); see the server log", exc
            )


async def _sync(runtime: Runtime, sub_id: str, only_if_due: bool) -> str:
    db = runtime.db
    job = await db.read(lambda tx: svc.job(tx, sub_id, runtime.secrets, only_if_due))
    if job is None:
        return "skipped"
    try:
        changes = await feeds.fetch(runtime, job)
    except ProviderError as exc:
        cause = exc.__cause__ if isinstance(exc, FeedUnreadable) else None
        return await _fail(runtime, sub_id, exc.reason, cause)
    if changes.unchanged:
        await db.write(lambda tx: svc.apply_not_modified(tx, sub_id))
        return "not_modified"
    try:
        await db.write(lambda tx: feeds.apply(tx, sub_id, changes))
    except Exception as exc:  # noqa: BLE001 - rolled back; record it so it is not retried every second
        return await _fail(runtime, sub_id, f"importing the feed failed ({type(exc).__name__}); see the server log", exc)
    log.info("subscription %s synced: %d events", sub_id, len(changes.present))
    return "synced"


async def _fail(runtime: Runtime, sub_id: str, message: str, exc: BaseException | None = None) -> str:
    """Record the failure; log it once when it starts (with the traceback for a crash), then quietly."""
    new = await runtime.db.write(lambda tx: svc.apply_failure(tx, sub_id, message))
    if new and exc is not None:
        log.error("subscription %s failed: %s", sub_id, message, exc_info=exc)
    elif new:
        log.warning("subscription %s failed: %s", sub_id, message)
    else:
        log.info("subscription %s still failing: %s", sub_id, message)
    return "failed"


class SubscriptionWorker:
    name = "ical-subscriptions"

    def __init__(self, runtime: Runtime, poll_seconds: float = POLL_SECONDS) -> None:
        self.runtime = runtime
        self.poll_seconds = poll_seconds
        self._quarantine: dict[str, int] = {}  # sub_id → not before (ts): failures we could not record

    async def sweep(self) -> int:
        now_ts = to_ts(self.runtime.clock.now())
        due = await self.runtime.db.read(lambda tx: store.due_ids(tx.conn, now_ts))
        self._quarantine = {s: t for s, t in self._quarantine.items() if t > now_ts}
        due = [s for s in due if s not in self._quarantine]
        if not due:
            return 0
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(sub_id: str) -> None:
            async with gate:
                try:
                    await sync_subscription(self.runtime, sub_id, only_if_due=True)
                except Exception:  # noqa: BLE001 - even recording the failure failed (database trouble)
                    if sub_id not in self._quarantine:
                        log.exception("sync of subscription %s crashed and could not be recorded", sub_id)
                    self._quarantine[sub_id] = now_ts + svc.FIRST_RETRY_SECONDS

        await asyncio.gather(*(one(s) for s in due))
        return len(due)

    async def run(self, stop: asyncio.Event) -> None:
        wake = self.runtime.signals.event(SIGNAL)
        while not stop.is_set():
            await self.sweep()
            await sleep_or_stop(stop, self.poll_seconds, wake)


def build(runtime: Runtime) -> list[Worker]:
    return [SubscriptionWorker(runtime, **runtime.extras.get(OPTIONS_KEY, {}))]
