"""Fires event.started, event.ended and event.reminder at their instants (services/moments.py).

About every second (`poll_seconds`, by the injected clock) the worker looks whether a moment is
due and, when one is, runs `moments.fire_due` in a write transaction, so a moment fires within a
couple of seconds of its instant. It writes only when there is work: a read-only plan
(`moments.next_due`) says when the next moment falls, up to `horizon_seconds` ahead, and is made
again after any commit (an event created, moved or cancelled) and when the horizon is reached;
every commit wakes every worker, so a write each second would keep them all busy. The stored
cursor is still brought forward every `refresh_seconds` while idle, so after a restart the scan
resumes close to where this process stopped.

Bad data never stops it: a calendar that cannot be expanded or a moment that cannot be recorded
is logged and passed over (services/moments.py); anything else a tick raises is logged and the
next tick retries, backing off up to `MAX_BACKOFF_SECONDS` while the failure lasts.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from chronary.services import moments
from chronary.timeutil import to_ts, ts_iso
from chronary.workers import Worker, sleep_or_stop

if TYPE_CHECKING:
    from chronary.runtime import Runtime

log = logging.getLogger("chronary.workers.moments")
POLL_SECONDS = 1.0
HORIZON_SECONDS = 300
REFRESH_SECONDS = 60
MAX_BACKOFF_SECONDS = 60.0


class MomentWorker:
    name = "moments"

    def __init__(
        self,
        runtime: Runtime,
        *,
        poll_seconds: float = POLL_SECONDS,
        horizon_seconds: int = HORIZON_SECONDS,
        refresh_seconds: int = REFRESH_SECONDS,
    ) -> None:
        self.runtime = runtime
        self.poll_seconds = poll_seconds
        self.horizon_seconds = horizon_seconds
        self.refresh_seconds = refresh_seconds
        self._dirty = True  # a commit since the plan was made (set from the committing thread)
        self._due: int | None = None  # the plan: the next moment's instant (None: none in it)
        self._planned_until = 0  # the plan holds for moments up to this instant
        self._scanned: int | None = None  # up to here this process found nothing left to fire
        self._written: int | None = None  # when it last ran fire_due
        self._failures = 0
        runtime.db.commit_listeners.append(self._on_commit)

    def _on_commit(self) -> None:
        self._dirty = True

    @property
    def grace_seconds(self) -> int:
        return max(0, int(self.runtime.settings.moments_grace_minutes)) * 60

    async def tick(self) -> moments.FireResult | None:
        """One look: fire what is due (the FireResult), or nothing (None)."""
        db = self.runtime.db
        now = to_ts(self.runtime.clock.now())
        grace = self.grace_seconds
        if self._dirty or now >= self._planned_until:
            self._dirty = False
            horizon, scanned = now + self.horizon_seconds, self._scanned
            self._due = await db.read(lambda tx: moments.next_due(tx, now, grace, horizon, scanned_ts=scanned))
            self._planned_until = horizon
        stale = self._written is None or now - self._written >= self.refresh_seconds
        if not stale and (self._due is None or self._due > now):
            if not self._dirty:  # nothing new since the plan: nothing is due up to now
                self._scanned = now if self._scanned is None else max(self._scanned, now)
            return None
        scanned = self._scanned
        result = await db.write(lambda tx: moments.fire_due(tx, now, grace, scanned_ts=scanned))
        self._written = now
        self._scanned = now if self._scanned is None else max(self._scanned, now)
        self._planned_until = 0  # plan again from here
        if result.fired:
            log.info("fired %d moment(s)", len(result.fired))
        if result.skipped and result.skipped_window is not None:
            since, until = result.skipped_window
            log.warning(
                "skipped %d event moment(s) between %s and %s: missed by more than the grace of %d minute(s)",
                result.skipped,
                ts_iso(since),
                ts_iso(until),
                grace // 60,
            )
        return result

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            delay = self.poll_seconds
            try:
                await self.tick()
                self._failures = 0
            except Exception:
                self._failures += 1
                delay = min(MAX_BACKOFF_SECONDS, self.poll_seconds * 2**self._failures)
                if self._failures == 1 or self._failures % 60 == 0:
                    log.exception("moments tick failed (%d in a row); retrying in %.0f s", self._failures, delay)
                self._planned_until = 0
            await sleep_or_stop(stop, delay)


def build(runtime: Runtime) -> list[Worker]:
    return [MomentWorker(runtime)]
