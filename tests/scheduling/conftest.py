"""Helpers for scheduling tests: an app on a ManualClock and quick access to its services."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import TestClient

from chronary.app import create_app
from chronary.clock import ManualClock
from chronary.config import Settings
from chronary.services.context import Ctx, Principal
from chronary.store import outbox as outbox_store
from tests.conftest import Api

# A Friday before both 2026 DST changes in Europe (Mar 29) and after the US one (Mar 8).
T0 = datetime(2026, 3, 20, 6, 0, tzinfo=UTC)


@pytest.fixture
def sclock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def sapi(make_api: Any, sclock: ManualClock) -> Any:
    return make_api(clock=sclock)


@pytest.fixture(scope="module")
def vapi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One app per module for the many validation cases (they only add agents; clock fixed at T0)."""
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("validation"), workers=False), clock=ManualClock(T0))
    with TestClient(app, base_url="http://127.0.0.1:8765") as client:
        yield Api(client, app.state.runtime.first_key)


def org_ctx(api: Any) -> Ctx:
    rt = api.runtime
    return Ctx(Principal(org_id=rt.org_id, key_id="key_test"), rt.settings.base_url)


def outbox_types(api: Any) -> list[str]:
    rows = api.runtime.db.read_sync(lambda tx: outbox_store.recent(tx.conn, 10_000))
    return [r["type"] for r in reversed(rows)]


def outbox_payloads(api: Any, type_: str) -> list[dict[str, Any]]:
    rows = api.runtime.db.read_sync(lambda tx: outbox_store.recent(tx.conn, 10_000))
    return [json.loads(r["payload"]) for r in reversed(rows) if r["type"] == type_]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def err(resp: Any, status: int = 400) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    return resp.json()["error"]
