"""Webhook delivery inside `serve`: fan the change log out, then POST each due delivery.

One coordinator loop fans out — it is the change log's "webhooks" consumer (services/changes
.consume: one write transaction per batch creates the deliveries and moves its cursor) — and
starts one sender task per endpoint that has due deliveries. A sender sends its endpoint's
deliveries one at a time in change order, so a slow or dead receiver only ever delays itself.
It claims them in batches (`dispatch.settle`, one write transaction: record the batch just sent,
claim the next): a batch grows while the receiver answers quickly and successfully and falls
back to a single delivery on any failure. Claims are committed before the requests; no
transaction spans network I/O. On start, attempts a previous process left in flight are retried
at once with the same payload id.

The senders run on their own event loop thread (`SenderThread`), so a draining backlog does not
hold up the API's event loop; while the API is answering requests they pace themselves
(`BUSY_RATE`), so it does not take the machine's CPU from the API either. Requests go through
one `webhooks.http.WebhookSession` (every request checked, keep-alive connections pinned to the
checked address); an endpoint's HMAC key is set up once (`sign.Signer`).

The loop wakes after database commits (new changes; a burst of commits makes one tick per
`min_tick_interval`), when a sender finishes, when a retry falls due by the injected clock, and at
least every `poll_seconds` (so a ManualClock advanced in tests is seen).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from chronary.services import changes
from chronary.store import webhooks as store
from chronary.timeutil import iso_ms, parse_stored
from chronary.webhooks import deliver, dispatch, policy
from chronary.webhooks.http import WebhookSession
from chronary.webhooks.sign import Signer
from chronary.workers import Worker, sleep_or_stop

if TYPE_CHECKING:
    from chronary.runtime import Runtime

log = logging.getLogger("chronary.workers.webhooks")
SIGNAL = "webhooks"
PRUNE_EVERY = timedelta(hours=1)
FAN_OUT_BATCH = 500
MIN_TICK_INTERVAL = 0.05
MAX_BATCH = 64  # deliveries one sender claims (and then records) in one transaction
BATCH_SECONDS = 0.2  # a batch grows only while it is sent in less than this
REST = 0.5  # after a batch of several, a sender pauses half as long as the batch took
# While the API is answering requests (one began in the last BUSY_WITHIN seconds), the senders
# together start at most BUSY_RATE deliveries a second, spaced evenly: a backlog draining at full
# speed (~2,000/s to a fast receiver) takes both cores of a small machine from the API, whose p99
# then doubles (bench/webhook_bench.py); at this pace it barely moves, and the backlog still goes
# out at several times the rate most receivers accept. Idle, a backlog drains at full speed.
BUSY_RATE = 500.0
BUSY_WITHIN = 0.5
T = TypeVar("T")
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
        min_tick_interval: float = MIN_TICK_INTERVAL,
        busy_rate: float = BUSY_RATE,
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
        self.min_tick_interval = min_tick_interval
        self.busy_rate = busy_rate
        self._next_start = 0.0  # sender loop time: the earliest the next paced delivery may start
        self.tasks: dict[str, asyncio.Future[None]] = {}  # endpoint -> its sender (on the sender thread)
        self._sender: SenderThread | None = None
        self._due: dict[str, str] = {}  # endpoint -> earliest sendable delivery, as of the last tick
        self._finished = asyncio.Event()  # a sender ended: its endpoint's next due time counts again
        self._session: WebhookSession | None = None
        self._signers: dict[str, Signer] = {}  # secret_enc -> its signer (decrypted once)
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
        return await changes.consume(
            self.runtime.db, dispatch.CONSUMER, dispatch.fan_out, FAN_OUT_BATCH, idle=dispatch.nobody_receives
        )

    async def prune(self) -> int:
        """At most hourly (by the injected clock): drop finished deliveries and consumed changes
        past retention."""
        now = self.runtime.clock.now()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return 0
        self._pruned_at = now
        return await self.runtime.db.write(lambda tx: dispatch.prune(tx, self.retention))

    async def tick(self) -> None:
        """Fan out, then start a sender for every endpoint with due deliveries and none running
        (a running one claims its endpoint's due deliveries itself)."""
        if not self._recovered:
            await self.recover()
        await self.fan_out()
        await self.prune()
        self._due = await self.runtime.db.read(lambda tx: store.due_times(tx.conn))
        now = iso_ms(self.runtime.clock.now())
        self.tasks = {k: t for k, t in self.tasks.items() if not t.done()}
        for endpoint_id, at in self._due.items():
            if at <= now and endpoint_id not in self.tasks:
                if self._sender is None:
                    self._sender = SenderThread()
                sender = self._sender.submit(self._drain(endpoint_id))
                sender.add_done_callback(lambda _: self._finished.set())
                self.tasks[endpoint_id] = sender

    async def run_until_idle(self, max_rounds: int = 50) -> None:
        """Tick and wait for the senders until nothing is due now (tests)."""
        for _ in range(max_rounds):
            await self.tick()
            running = [t for t in self.tasks.values() if not t.done()]
            if not running:
                return
            await asyncio.gather(*running)
        raise RuntimeError("webhook deliveries still due after max_rounds")

    async def seconds_until_due(self) -> float:
        """Until the earliest due time the last tick saw among endpoints without a running sender
        (a running sender claims its own due deliveries; it wakes the loop when it ends)."""
        times = [parse_stored(at) for k, at in self._due.items() if k not in self.tasks or self.tasks[k].done()]
        whens = [t for t in times if t is not None]
        if not whens:
            return self.poll_seconds
        return max(0.0, min(self.poll_seconds, (min(whens) - self.runtime.clock.now()).total_seconds()))

    # --- one endpoint's sender ----------------------------------------------------------------

    async def _drain(self, endpoint_id: str) -> None:
        try:
            await self._drain_endpoint(endpoint_id)
        except Exception:  # a database failure: the next start's `recover` retries what was claimed
            log.exception("webhook delivery to %s stopped on an internal error", endpoint_id)

    async def _drain_endpoint(self, endpoint_id: str) -> None:
        """Claim a batch, send it in order, settle it and claim the next, until nothing is due.

        The batch grows (doubling from 1, up to MAX_BATCH) while every attempt succeeds, as far
        as the receiver answers it within BATCH_SECONDS; any failure brings it back to 1, so a
        slow or failing receiver gets exactly the one-at-a-time claims it always had. After a
        batch of several the sender rests REST of the time it took: a draining backlog leaves
        the API a share of the GIL and the CPU (2 cores here) instead of taking all it can."""
        db = self.runtime.db
        loop = asyncio.get_running_loop()
        size = 1
        finished: list[tuple[dispatch.Claim, dispatch.Outcome]] = []
        unsent: list[dispatch.Claim] = []
        claims: list[dispatch.Claim] = []
        try:
            while True:
                statuses, claims = await db.write(
                    partial(
                        dispatch.settle,
                        endpoint_id=endpoint_id,
                        finished=finished,
                        want=0 if self._stopping else size,
                        unsent=unsent,
                        schedule=self.schedule,
                        jitter=self.jitter,
                        disable_after=self.disable_after,
                        rng=self.rng,
                    )
                )
                self._log_failures(endpoint_id, finished, statuses)
                finished, unsent = [], []
                if not claims:
                    return
                started = loop.time()
                paced = False
                for n, claimed in enumerate(claims):
                    if self._stopping:  # released in the next settle, as if never claimed
                        unsent = claims[n:]
                        break
                    paced = await self._pace() or paced
                    finished.append((claimed, await self._attempt(claimed)))
                claims = []
                worked = loop.time() - started
                size = _next_size(size, finished, worked)
                if len(finished) > 1 and not paced:  # a backlog: rest a little, so API requests get the GIL and CPU
                    await asyncio.sleep(worked * REST)
        finally:
            left = len(claims) - len(finished) - len(unsent)
            if left > 0:  # cancelled mid-batch: these stay claimed; `recover` retries them at start
                log.info("webhook sender for %s stopped with %d claimed attempt(s) unfinished", endpoint_id, left)

    async def _pace(self) -> bool:
        """While the API is busy, wait for this delivery's slot (`busy_rate` a second, shared by
        every sender: they all run on the sender loop); True when it was paced."""
        if not self.runtime.activity.busy(BUSY_WITHIN):
            return False
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(self._next_start, now)
        self._next_start = start + 1.0 / self.busy_rate
        if start > now:
            await asyncio.sleep(start - now)
        return True

    @staticmethod
    def _log_failures(
        endpoint_id: str, finished: list[tuple[dispatch.Claim, dispatch.Outcome]], statuses: list[str | None]
    ) -> None:
        for (claimed, outcome), status in zip(finished, statuses, strict=True):
            if not outcome.ok:
                log.info(
                    "webhook %s to %s attempt %d: %s → %s",
                    claimed.delivery_id,
                    endpoint_id,
                    claimed.number,
                    outcome.error or outcome.status_code,
                    status,
                )

    def _signer(self, secret_enc: str) -> Signer:
        signer = self._signers.get(secret_enc)
        if signer is None:
            if len(self._signers) >= 1024:
                self._signers.clear()
            signer = self._signers[secret_enc] = Signer(self.runtime.secrets.decrypt(secret_enc))
        return signer

    def session(self) -> WebhookSession:
        if self._session is None:
            self._session = WebhookSession(transport=self.transport)
        return self._session

    async def _attempt(self, claimed: dispatch.Claim) -> dispatch.Outcome:
        try:
            signer = self._signer(claimed.secret_enc)
        except ValueError as exc:
            return dispatch.Outcome(error=f"cannot sign: {exc}", retryable=False)
        try:
            return await deliver.send(
                self.session(),
                claimed.url,
                self.runtime.settings,
                event_id=claimed.event_id,
                payload=claimed.payload,
                signer=signer,
                now=self.runtime.clock.now(),
                timeout=self.timeout,
            )
        except Exception as exc:  # a bug or an odd URL must cost one attempt, not the worker
            log.exception("webhook %s: unexpected error while sending", claimed.delivery_id)
            return dispatch.Outcome(error=f"internal error while sending: {type(exc).__name__}", retryable=True)

    # --- the loop -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        wake = self.runtime.signals.event(SIGNAL)
        self._stopping, self._recovered = False, False
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                ticked = loop.time()
                try:
                    await self.tick()
                    delay = await self.seconds_until_due()
                except Exception:
                    log.exception("webhook tick failed; retrying shortly")
                    delay = self.poll_seconds
                await sleep_or_stop(stop, delay, wake, self._finished)
                # senders commit many times a second while a backlog drains: one tick per interval
                # serves a burst of commits (a running sender claims on its own meanwhile)
                await sleep_or_stop(stop, self.min_tick_interval - (loop.time() - ticked))
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
        if self._sender is not None:
            sender, self._sender = self._sender, None
            await sender.close(self._close_session)

    async def _close_session(self) -> None:
        """On the sender thread, last: its connections close with it."""
        if self._session is not None:
            session, self._session = self._session, None
            with contextlib.suppress(Exception):
                await session.aclose()


class SenderThread:
    """An event loop on a thread of its own for the senders: their HTTP requests, response
    parsing and signing run there, so the API's event loop never waits behind a draining
    backlog (each loopback send/recv is a syscall of ~0.1-0.5 ms that now overlaps API work,
    and the API loop's ready queue holds only API callbacks). Database calls still go through
    `Database` (writer thread), exactly as from the main loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="chronary-webhooks", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Run `coro` on the sender loop; the result is awaitable (and cancellable) from the caller's loop."""
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def close(self, last: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Cancel what still runs there, run `last` there, then stop the thread."""

        async def finish() -> None:
            current = asyncio.current_task()
            others = [t for t in asyncio.all_tasks() if t is not current]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            await last()

        with contextlib.suppress(Exception):
            await self.submit(finish())
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self.thread.join, 10)


def build(runtime: Runtime) -> list[Worker]:
    # our own wake-up signal, so no other worker clearing a shared event can delay delivery
    runtime.db.wake_on(SIGNAL, "webhook_endpoints", "webhook_deliveries")  # and changes it gets (outbox.wants)
    options: dict[str, Any] = runtime.extras.get(OPTIONS_KEY, {})
    return [WebhookWorker(runtime, **options)]


def _next_size(size: int, finished: list[tuple[dispatch.Claim, dispatch.Outcome]], seconds: float) -> int:
    """The next batch size: 1 after any failure; else doubled, up to what the receiver answers
    in BATCH_SECONDS at the pace of this batch (and MAX_BATCH)."""
    if not finished or not all(outcome.ok for _, outcome in finished):
        return 1
    fits = int(BATCH_SECONDS * len(finished) / max(seconds, 1e-6))
    return max(1, min(MAX_BATCH, size * 2, fits))
