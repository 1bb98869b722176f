"""Webhook fixtures: a scripted receiver, a worker driven by hand, and a live server harness."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chronary.clock import Clock
from chronary.config import Settings
from chronary.runtime import open_runtime
from chronary.workers.webhooks import OPTIONS_KEY, WebhookWorker
from tests.conftest import LiveServer, free_port, start_live_server
from tests.webhooks.receiver import Receiver

FAST = {"timeout": 3.0, "jitter": 0.0, "poll_seconds": 0.05, "shutdown_grace": 0.2}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.close()


@pytest.fixture
def make_receiver() -> Iterator[Any]:
    made: list[Receiver] = []

    def factory() -> Receiver:
        r = Receiver().start()
        made.append(r)
        return r

    yield factory
    for r in made:
        r.close()


class Driver:
    """Runs a WebhookWorker's steps on its own event-loop thread, so tests decide when time passes."""

    def __init__(self, runtime: Any, **options: Any) -> None:
        self.worker = WebhookWorker(runtime, **{**FAST, **options})
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def _call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def run(self) -> None:
        """Fan out and send everything due now; wait for every attempt to finish."""
        self._call(self.worker.run_until_idle())

    def start_tick(self) -> None:
        """Start attempts without waiting for them (see `finish`)."""
        self._call(self.worker.tick())

    def finish(self) -> None:
        async def wait() -> None:
            await asyncio.gather(*self.worker.tasks.values())

        self._call(wait())

    def close(self) -> None:
        async def stop() -> None:
            await self.worker._shutdown()

        self._call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def driver() -> Iterator[Any]:
    made: list[Driver] = []

    def factory(runtime: Any, **options: Any) -> Driver:
        d = Driver(runtime, **options)
        made.append(d)
        return d

    yield factory
    for d in made:
        d.close()


def start_server(settings: Settings, clock: Clock | None, options: dict[str, Any]) -> LiveServer:
    runtime = open_runtime(settings, clock)
    runtime.extras[OPTIONS_KEY] = options
    return start_live_server(settings, runtime=runtime)


@pytest.fixture
def webhook_server(data_dir: Path) -> Iterator[Any]:
    """Factory: webhook_server(clock=None, key=None, **worker_options) -> LiveServer with workers on."""
    servers: list[LiveServer] = []

    def factory(clock: Clock | None = None, **options: Any) -> LiveServer:
        settings = Settings(data_dir=data_dir, host="127.0.0.1", port=free_port(), workers=True)
        server = start_server(settings, clock, {**FAST, **options})
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()
