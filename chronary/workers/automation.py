"""Runs flows: claims due executions, fires schedule / poll / event.starting triggers, prunes
finished executions, old records and old MCP request ids (then checkpoints the WAL and hands
freed pages back).

Woken by every commit that wrote its tables (a run queued by a change starts at once) and
otherwise every second, so time-based triggers fire within about a second of their instant. Runs execute as tasks (at most
`MAX_PARALLEL` at once; each flow's own `concurrency` is enforced when claiming).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from chronary.services import records
from chronary.services.automation import runs, scheduler
from chronary.store import automation as store
from chronary.store import mcp as mcp_store
from chronary.timeutil import iso_ms, to_ts
from chronary.workers import Worker, sleep_or_stop

if TYPE_CHECKING:
    from chronary.runtime import Runtime

log = logging.getLogger("chronary.workers.automation")
SIGNAL = "automation"
POLL_SECONDS = 1.0
MAX_PARALLEL = 8
PRUNE_EVERY = 3600.0
MCP_REQUESTS_KEPT = timedelta(days=7)


class AutomationWorker:
    name = "automation"

    def __init__(self, runtime: Runtime, poll_seconds: float = POLL_SECONDS) -> None:
        self.runtime = runtime
        self.poll_seconds = poll_seconds
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self._last_prune = 0.0

    async def tick(self) -> None:
        db, settings = self.runtime.db, self.runtime.settings
        await scheduler.fire_due(self.runtime)
        free = MAX_PARALLEL - len(self.tasks)
        now_ts = to_ts(self.runtime.clock.now())
        # read first: an idle tick must not write (a write of its own would wake it again)
        if free > 0 and await db.read(lambda tx: bool(store.claimable(tx.conn, now_ts, 1))):
            claimed = await db.write(lambda tx: runs.claim_due(tx, settings.flow_concurrency, free))
            for execution_id in claimed:
                self.tasks[execution_id] = asyncio.create_task(self._run(execution_id), name=f"run:{execution_id}")
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_prune > PRUNE_EVERY:
            self._last_prune = loop.time()
            await self.prune()

    async def _run(self, execution_id: str) -> None:
        try:
            await runs.run_execution(self.runtime, execution_id)
        except Exception:  # a bug must cost one run (it is retried after its lease), not the worker
            log.exception("execution %s crashed", execution_id)
        finally:
            self.tasks.pop(execution_id, None)
            self.runtime.signals.notify(SIGNAL)

    async def prune(self) -> int:
        """Finished runs and records past their retention go; freed pages go back to the disk."""
        settings = self.runtime.settings
        kept_runs = timedelta(days=settings.execution_retention_days)
        kept_records = timedelta(days=settings.record_retention_days)
        pruned = await self.runtime.db.write(lambda tx: runs.prune(tx, kept_runs))
        dropped = await self.runtime.db.write(lambda tx: records.prune(tx, kept_records))
        # MCP request_id results: a retry comes within minutes; a week covers any client's patience
        dropped += await self.runtime.db.write(lambda tx: mcp_store.prune(tx.conn, iso_ms(tx.now - MCP_REQUESTS_KEPT)))
        if pruned or dropped:
            log.info("pruned %d finished execution(s) and %d record(s) past their retention", pruned, dropped)
            await self.runtime.db.write_raw(store.checkpoint)
        return pruned + dropped

    async def seconds_until_due(self) -> float:
        now = to_ts(self.runtime.clock.now())
        nexts = await self.runtime.db.read(lambda tx: (store.next_due_ts(tx.conn), store.next_trigger_ts(tx.conn)))
        # only future instants shorten the sleep: what is overdue (a run its flow's concurrency
        # holds back, a starting scan with nothing to fire) is looked at again on the poll cadence
        future = [t for t in nexts if t is not None and t > now]
        if not future:
            return self.poll_seconds
        return max(0.05, min(self.poll_seconds, min(future) - now))

    async def run(self, stop: asyncio.Event) -> None:
        wake = self.runtime.signals.event(SIGNAL)
        recovered = await self.runtime.db.write(runs.recover)
        if recovered:
            log.info("took back %d run(s) a stopped server left running", recovered)
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                    delay = await self.seconds_until_due()
                except Exception:
                    log.exception("automation tick failed; retrying shortly")
                    delay = self.poll_seconds
                await sleep_or_stop(stop, delay, wake)
        finally:
            pending = [t for t in self.tasks.values() if not t.done()]
            if pending:
                _, still = await asyncio.wait(pending, timeout=2.0)
                for task in still:
                    task.cancel()  # its step stays `running`: the next start re-runs it


def build(runtime: Runtime) -> list[Worker]:
    runtime.db.wake_on(SIGNAL, "flows", "flow_triggers", "executions", "execution_steps")
    return [AutomationWorker(runtime)]
