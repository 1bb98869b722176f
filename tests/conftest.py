"""Shared fixtures: the real app on a real SQLite file in a temp dir, over HTTP.

`make_api(**settings)` builds an app (optionally with a ManualClock) and returns an `Api`
whose requests carry the first org key. `live_server` runs uvicorn on 127.0.0.1 for tests
that need a real socket (webhook receivers, feed readers, subscriptions).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from litestar import Litestar
from litestar.testing import TestClient

from chronary.app import create_app
from chronary.clock import Clock, ManualClock
from chronary.config import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    """A TestClient that sends the given key; `as_key(other)` switches identity."""

    def __init__(self, client: TestClient[Litestar], key: str) -> None:
        self.client = client
        self.key = key
        self.app: Litestar = client.app  # type: ignore[assignment]

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        out = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        out.update(headers or {})
        return out

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        kw["headers"] = self._headers(kw.get("headers"))
        return self.client.request(method, url, **kw)

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", url, **kw)

    def patch(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("PATCH", url, **kw)

    def delete(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", url, **kw)

    def as_key(self, key: str) -> Api:
        return Api(self.client, key)

    # small conveniences used across test modules
    def agent(self, name: str = "Ada", **fields: Any) -> dict[str, Any]:
        r = self.post("/v1/agents", json={"name": name, **fields})
        assert r.status_code == 201, r.text
        return r.json()

    def calendar(self, agent_id: str | None = None, name: str = "Work", timezone: str = "UTC", **fields: Any) -> dict:
        url = f"/v1/agents/{agent_id}/calendars" if agent_id else "/v1/calendars"
        r = self.post(url, json={"name": name, "timezone": timezone, **fields})
        assert r.status_code == 201, r.text
        return r.json()

    def event(self, calendar_id: str, start: str, end: str, title: str = "Meeting", **fields: Any) -> dict:
        r = self.post(
            f"/v1/calendars/{calendar_id}/events", json={"title": title, "start_time": start, "end_time": end, **fields}
        )
        assert r.status_code == 201, r.text
        return r.json()

    def receive_webhooks(self) -> dict[str, Any]:
        """An endpoint for every change type, never reached (no workers run here): while one could
        receive them, changes are logged with the payload it would get; without one, without."""
        r = self.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hooks", "events": ["*"]})
        assert r.status_code == 201, r.text
        return dict(r.json())

    def agent_key(self, agent_id: str) -> str:
        r = self.post("/v1/keys", json={"name": "agent key", "agent_id": agent_id})
        assert r.status_code == 201, r.text
        return r.json()["secret"]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def make_api(data_dir: Path) -> Iterator[Any]:
    """Factory: make_api(clock=None, workers=False, **settings) -> Api (closed at teardown)."""
    stack = ExitStack()

    def factory(clock: Clock | None = None, **overrides: Any) -> Api:
        overrides.setdefault("workers", False)
        overrides.setdefault("data_dir", data_dir)
        settings = Settings(**overrides)
        app = create_app(settings, clock=clock)
        key = app.state.runtime.first_key
        client = stack.enter_context(TestClient(app, base_url="http://127.0.0.1:8765"))
        return Api(client, key)

    with stack:
        yield factory


@pytest.fixture
def api(make_api: Any) -> Api:
    return make_api()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@dataclass
class LiveServer:
    base_url: str
    key: str
    app: Litestar
    server: uvicorn.Server
    thread: threading.Thread

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {key or self.key}"}, timeout=10)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_live_server(settings: Settings, clock: Clock | None = None, runtime: Any = None) -> LiveServer:
    """uvicorn in a thread on settings.port; pass a prepared `runtime` to tune it before start."""
    app = create_app(settings, clock=clock, runtime=runtime)
    config = uvicorn.Config(app, host="127.0.0.1", port=settings.port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("live server did not start")
        time.sleep(0.02)
    return LiveServer(f"http://127.0.0.1:{settings.port}", app.state.runtime.first_key or "", app, server, thread)


def wait_until(check: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll `check()` until it returns something truthy (returned); fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def live_server(data_dir: Path) -> Iterator[Any]:
    """Factory: live_server(clock=None, **settings) -> LiveServer on a free 127.0.0.1 port."""
    servers: list[LiveServer] = []

    def factory(clock: Clock | None = None, **overrides: Any) -> LiveServer:
        port = free_port()
        overrides.setdefault("data_dir", data_dir)
        overrides.setdefault("port", port)
        overrides.setdefault("host", "127.0.0.1")
        server = start_live_server(Settings(**overrides), clock)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()
