"""Webhook delivery inside `serve`: fan the change log out, then POST each due delivery.

One coordinator loop fans out — it is the change log's "webhooks" consumer (services/changes
.consume: one write transaction per batch creates the deliveries and moves its cursor) — and
starts one task per endpoint
that has due deliveries. An endpoint's task sends its deliveries one at a time in change order,
so a slow or dead receiver only ever delays itself. Each attempt is claimed (committed) before
the request and recorded after it; no transaction spans network I/O. On start, attempts a
previous process left in flight are retried at once with the same payload id.

The loop wakes after every database commit (new changes), when a retry falls due by the
injected clock, and at least every `poll_seconds` (so a ManualClock advanced in tests is seen).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx

from chronary.services import changes
from chronary.store import webhooks as store
from chronary.timeutil import iso_ms, parse_stored
from chronary.webhooks import deliver, dispatch, policy
from chronary.workers import Worker, sleep_or_stop

if TYPE_CHECKING:
    from chronary.runtime import Runtime

log = logging.getLogger("chronary.workers.webhooks")
SIGNAL = "webhooks"
PRUNE_EVERY = timedelta(hours=1)
FAN_OUT_BATCH = 500
OPTIONS_KEY = "webhooks.options"  # runtime.extras[OPTIONS_KEY]: constructor overrides (tests)


class WebhookWorker:
    name = "webhooks"

    def __init__(
        self,
        runtime: Runtime,
        *,
        timeout: float = deliver.DEFAULT_TIMEOUT,
        poll_seconds: float = 1.0,
        schedule: Sequence[float] = policy.RETRY_SCHEDULE,
        jitter: float = policy.JITTER,
        disable_after: timedelta = policy.DISABLE_AFTER,
        shutdown_grace: float = 3.0,
        retention: timedelta = policy.LOG_RETENTION,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.runtime = runtime
        self.timeout = timeout
        self.poll_seconds = poll_seconds
        self.schedule = tuple(schedule)
        self.jitter = jitter
        self.disable_after = disable_after
        self.shutdown_grace = shutdown_grace
        self.retention = retention
        self._pruned_at: datetime | None = None
        self.transport = transport
        self.rng = rng
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._recovered = False
        self._stopping = False

    # --- steps (public so tests can drive them with a ManualClock) ------------------------

    async def recover(self) -> int:
        count = await self.runtime.db.write(dispatch.recover)
        self._recovered = True
        if count:
            log.info("retrying %d webhook attempt(s) interrupted by the last shutdown", count)
        return count

    async def fan_out(self) -> int:
        """Deliveries for every change after the consumer's cursor; returns how many changes."""
        return await changes.consume(self.runtime.db, dispatch.CONSUMER, dispatch.fan_out, FAN_OUT_BATCH)

    async def prune(self) -> int:
        """At most hourly (by the injected clock): drop finished deliveries and consumed changes
        past retention."""
        now = self.runtime.clock.now()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return 0
        self._pruned_at = now
        return await self.runtime.db.write(lambda tx: dispatch.prune(tx, self.retention))

    async def tick(self) -> None:
        """Fan out, then start a task for every endpoint with due deliveries and none running."""
        if not self._recovered:
            await self.recover()
        await self.fan_out()
        await self.prune()
        now = iso_ms(self.runtime.clock.now())
        due = await self.runtime.db.read(lambda tx: store.due_endpoint_ids(tx.conn, now))
        self.tasks = {k: t for k, t in self.tasks.items() if not t.done()}
        for endpoint_id in due:
            task = self.tasks.get(endpoint_id)
            if task is None or task.done():
                self.tasks[endpoint_id] = asyncio.create_task(self._drain(endpoint_id), name=f"webhook:{endpoint_id}")

    async def run_until_idle(self, max_rounds: int = 50) -> None:
        """Tick and wait for the endpoint tasks until nothing is due now (tests)."""
        for _ in range(max_rounds):
            await self.tick()
            running = [t for t in self.tasks.values() if not t.done()]
            if not running:
                return
            await asyncio.gather(*running)
        raise RuntimeError("webhook deliveries still due after max_rounds")

    async def seconds_until_due(self) -> float:
        at = await self.runtime.db.read(lambda tx: store.earliest_due(tx.conn))
        when = parse_stored(at)
        if when is None:
            return self.poll_seconds
        return max(0.0, min(self.poll_seconds, (when - self.runtime.clock.now()).total_seconds()))

    # --- one endpoint -------------------------------------------------------------------------

    async def _drain(self, endpoint_id: str) -> None:
        try:
            await self._drain_endpoint(endpoint_id)
        except Exception:  # a database failure: the next start's `recover` retries what was claimed
            log.exception("webhook delivery to %s stopped on an internal error", endpoint_id)

    async def _drain_endpoint(self, endpoint_id: str) -> None:
        db = self.runtime.db
        while not self._stopping:
            claimed = await db.write(lambda tx: dispatch.claim(tx, endpoint_id))
            if claimed is None:
                return
            outcome = await self._attempt(claimed)
            status = await db.write(
                partial(
                    dispatch.record,
                    claimed=claimed,
                    outcome=outcome,
                    schedule=self.schedule,
                    jitter=self.jitter,
                    disable_after=self.disable_after,
                    rng=self.rng,
                )
            )
            if not outcome.ok:
                log.info(
                    "webhook %s to %s attempt %d: %s → %s",
                    claimed.delivery_id,
                    endpoint_id,
                    claimed.number,
                    outcome.error or outcome.status_code,
                    status,
                )

    async def _attempt(self, claimed: dispatch.Claim) -> dispatch.Outcome:
        try:
            secret = self.runtime.secrets.decrypt(claimed.secret_enc)
        except ValueError as exc:
            return dispatch.Outcome(error=f"cannot sign: {exc}", retryable=False)
        try:
            return await deliver.send(
                claimed.url,
                self.runtime.settings,
                event_id=claimed.event_id,
                payload=claimed.payload,
                secret=secret,
                now=self.runtime.clock.now(),
                timeout=self.timeout,
                transport=self.transport,
            )
        except Exception as exc:  # a bug or an odd URL must cost one attempt, not the worker
            log.exception("webhook %s: unexpected error while sending", claimed.delivery_id)
            return dispatch.Outcome(error=f"internal error while sending: {type(exc).__name__}", retryable=True)

    # --- the loop -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        wake = self.runtime.signals.event(SIGNAL)
        self._stopping, self._recovered = False, False
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                    delay = await self.seconds_until_due()
                except Exception:
                    log.exception("webhook tick failed; retrying shortly")
                    delay = self.poll_seconds
                await sleep_or_stop(stop, delay, wake)
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        """Let in-flight attempts finish briefly; cancelled ones stay in flight for `recover`."""
        self._stopping = True
        running = [t for t in self.tasks.values() if not t.done()]
        if running:
            _, pending = await asyncio.wait(running, timeout=self.shutdown_grace)
            for task in pending:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*pending, return_exceptions=True)
        self.tasks.clear()


def build(runtime: Runtime) -> list[Worker]:
    # our own wake-up signal, so no other worker clearing a shared event can delay delivery
    runtime.db.commit_listeners.append(lambda: runtime.signals.notify(SIGNAL))
    options: dict[str, Any] = runtime.extras.get(OPTIONS_KEY, {})
    return [WebhookWorker(runtime, **options)]
