"""Background work inside `serve`: discovered modules, each exporting `build(runtime) -> [Worker]`.

A worker is an object with a `name` and `async run(stop: asyncio.Event)`; it must return soon
after `stop` is set, never hold a write transaction across network I/O, and call blocking
libraries through a thread. Discovery means a new worker never edits a shared list.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from chronary.runtime import Runtime

log = logging.getLogger("chronary.workers")


class Worker(Protocol):
    name: str

    async def run(self, stop: asyncio.Event) -> None: ...


def discover(runtime: Runtime) -> list[Worker]:
    workers: list[Worker] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        build = getattr(module, "build", None)
        if build is not None:
            workers.extend(build(runtime))
    return workers


async def sleep_or_stop(stop: asyncio.Event, seconds: float, *wake: asyncio.Event) -> None:
    """Sleep up to `seconds`, returning early when stopping or when any `wake` event fires."""
    waiters = [asyncio.ensure_future(stop.wait()), *(asyncio.ensure_future(w.wait()) for w in wake)]
    try:
        await asyncio.wait(waiters, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    for event in wake:
        event.clear()


class WorkerSet:
    """Starts the workers as tasks, restarts one that crashes (after a pause), stops them all."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def _supervise(self, worker: Worker) -> None:
        while not self.stop.is_set():
            try:
                await worker.run(self.stop)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker %s crashed; restarting in 1 s", worker.name)
                await sleep_or_stop(self.stop, 1.0)

    def start(self) -> None:
        for worker in self.workers:
            self.tasks.append(asyncio.create_task(self._supervise(worker), name=f"worker:{worker.name}"))

    async def shutdown(self, timeout: float = 5.0) -> None:
        self.stop.set()
        if not self.tasks:
            return
        done, pending = await asyncio.wait(self.tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
