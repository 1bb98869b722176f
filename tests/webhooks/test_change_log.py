"""The change log and its consumers (services/changes.py): consumers catch up after restarts
exactly once and in order, listeners exist only where the runtime registers them, and migration
0008 moves the webhook outbox into the log without losing or repeating a delivery."""

from __future__ import annotations

import asyncio
import importlib
import json
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from chronary.app import create_app
from chronary.config import Settings
from chronary.runtime import Runtime, default_pipeline, open_runtime
from chronary.services import changes
from chronary.services.changes import Change, Pipeline
from chronary.store import changes as change_store
from chronary.store import migrate as migrations
from chronary.store.db import Tx, open_connection
from chronary.webhooks import dispatch
from tests.conftest import Api

T0, T1 = "2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, workers=False)


def _with_api(runtime: Runtime, key: str, fn: Any) -> Any:
    """Run `fn(api)` against an app on `runtime`; leaving the client shuts the app (and its db) down."""
    app = create_app(runtime.settings, runtime=runtime)
    with TestClient(app, base_url="http://127.0.0.1:8765") as client:
        return fn(Api(client, key))


def _log(runtime: Runtime) -> list[dict[str, Any]]:
    return list(reversed(runtime.db.read_sync(lambda tx: change_store.recent(tx.conn, 10_000))))


def _deliveries(runtime: Runtime) -> list[dict[str, Any]]:
    return runtime.db.read_sync(
        lambda tx: list(tx.conn.execute("SELECT event_id, event_type, seq FROM webhook_deliveries ORDER BY seq"))
    )


class Recorder:
    """An async consumer's handler that remembers every change it was given."""

    def __init__(self) -> None:
        self.seen: list[int] = []
        self.fail = False

    def __call__(self, tx: Tx, rows: list[dict[str, Any]]) -> None:
        if self.fail:
            raise RuntimeError("consumer down")
        self.seen.extend(r["seq"] for r in rows)


def _pipeline() -> Pipeline:
    pipeline = default_pipeline()
    pipeline.consumer("test-consumer")
    return pipeline


def test_a_consumer_that_was_down_catches_up_after_restart_exactly_once(data_dir: Path) -> None:
    # 1st run, workers off: the consumer is declared (its cursor starts here) but never runs
    first = open_runtime(_settings(data_dir), pipeline=_pipeline())
    key = first.first_key
    assert key

    def writes(api: Api) -> dict[str, Any]:
        hook = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["*"]}).json()
        agent = api.agent()
        cal = api.calendar(agent["id"])
        evt = api.event(cal["id"], T0, T1)
        assert api.patch(f"/v1/calendars/{cal['id']}/events/{evt['id']}", json={"title": "Moved"}).status_code == 200
        assert api.delete(f"/v1/calendars/{cal['id']}/events/{evt['id']}").status_code == 204
        return hook

    hook = _with_api(first, key, writes)  # leaving it closed the database

    # 2nd run: the consumer (and webhook fan-out) read everything after their cursors
    second = open_runtime(_settings(data_dir), pipeline=_pipeline())
    logged = _log(second)
    assert [r["type"] for r in logged] == [
        "agent.created",
        "calendar.created",
        "event.created",
        "event.updated",
        "event.deleted",
    ]
    assert {r["origin"] for r in logged} == {"api"}
    seqs = [r["seq"] for r in logged]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gaps
    handler = Recorder()
    handler.fail = True
    with pytest.raises(RuntimeError):  # a failing handler moves nothing …
        asyncio.run(changes.consume(second.db, "test-consumer", handler, batch=2))
    handler.fail = False
    assert asyncio.run(changes.consume(second.db, "test-consumer", handler, batch=2)) == len(seqs)
    assert handler.seen == seqs  # … so the retry sees all of it, once, in order
    assert asyncio.run(changes.consume(second.db, "test-consumer", handler, batch=2)) == 0
    assert asyncio.run(changes.consume(second.db, dispatch.CONSUMER, dispatch.fan_out)) == len(seqs)
    deliveries = _deliveries(second)
    assert [d["seq"] for d in deliveries] == seqs and [d["event_id"] for d in deliveries] == [r["id"] for r in logged]
    second.db.close()

    # 3rd run: nothing is repeated
    third = open_runtime(_settings(data_dir), pipeline=_pipeline())
    again = Recorder()
    assert asyncio.run(changes.consume(third.db, "test-consumer", again)) == 0
    assert asyncio.run(changes.consume(third.db, dispatch.CONSUMER, dispatch.fan_out)) == 0
    assert again.seen == [] and _deliveries(third) == deliveries
    cursors = third.db.read_sync(lambda tx: {n: change_store.cursor(tx.conn, n) for n in ("test-consumer", "webhooks")})
    assert cursors == {"test-consumer": seqs[-1], "webhooks": seqs[-1]}
    # later changes go on from there
    third.db.write_sync(lambda tx: changes.record(tx, Change("agent.updated", {"id": "agt_x"}, origin="system")))
    assert asyncio.run(changes.consume(third.db, "test-consumer", again)) == 1 and again.seen == [seqs[-1] + 1]
    third.db.close()
    assert hook["id"].startswith("whk_")


def test_prune_keeps_what_a_consumer_has_not_seen(make_api: Any, clock: Any) -> None:
    api = make_api(clock=clock)
    rt = api.runtime
    rt.db.write_sync(lambda tx: change_store.ensure_cursor(tx.conn, "slow"))
    api.agent("Ada")
    api.agent("Bob")
    asyncio.run(changes.consume(rt.db, dispatch.CONSUMER, dispatch.fan_out))
    clock.advance(days=31)
    assert rt.db.write_sync(lambda tx: changes.prune(tx, tx.now)) == 0  # "slow" has seen nothing
    # "slow" takes one: that one can go, the other stays until it is taken too
    assert rt.db.write_sync(lambda tx: changes.consume_batch(tx, "slow", lambda tx, rows: None, 1)) == 1
    assert rt.db.write_sync(lambda tx: changes.prune(tx, tx.now)) == 1
    assert [r["type"] for r in _log(rt)] == ["agent.created"]
    asyncio.run(changes.consume(rt.db, "slow", lambda tx, rows: None))
    assert rt.db.write_sync(lambda tx: changes.prune(tx, tx.now)) == 1
    assert _log(rt) == []
    # seq is never reused after a prune
    api.agent("Cy")
    (row,) = _log(rt)
    assert row["seq"] == 3


def test_listeners_are_only_those_the_runtime_registers(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModuleNotFoundError):  # no module-global listener list any more
        importlib.import_module("chronary.services.hooks")
    standard = default_pipeline()
    assert [name for name, _ in standard.listeners] == ["feeds", "sync-push", "automation"]
    assert standard.consumers == ["webhooks"]

    called: list[tuple[str, str | None]] = []
    spy = Pipeline()
    spy.listen("spy", lambda tx, change: called.append((change.type or "", change.kind)))
    with_spy = open_runtime(_settings(tmp_path / "spied"), pipeline=spy)
    bare = open_runtime(_settings(data_dir), pipeline=Pipeline())  # a runtime with no listeners
    assert bare.first_key

    def writes(api: Api) -> dict[str, Any]:
        cal = api.calendar(name="Bare")
        api.event(cal["id"], T0, T1)
        return cal

    cal = _with_api(bare, bare.first_key, writes)
    bare2 = open_runtime(_settings(data_dir), pipeline=Pipeline())
    logged = _log(bare2)
    assert [r["type"] for r in logged] == ["calendar.created", "event.created"]  # recorded …
    assert logged[1]["calendar_id"] == cal["id"] and logged[1]["origin"] == "api"
    state = bare2.db.read_sync(
        lambda tx: (
            list(tx.conn.execute("SELECT revision FROM calendars WHERE id = ?", (cal["id"],)))[0]["revision"],
            list(tx.conn.execute("SELECT count(*) AS n FROM feed_state"))[0]["n"],
        )
    )
    assert state == (1, 0)  # … the revision moved (record does that), but no listener ran
    assert called == []  # and another runtime's listener heard nothing of it
    bare2.db.close()

    with_spy.db.write_sync(lambda tx: changes.record(tx, Change("agent.created", {"id": "agt_1"})))
    assert called == [("agent.created", None)]
    with_spy.db.close()


def test_record_checks_origin_and_event_changes(make_api: Any) -> None:
    rt = make_api().runtime
    for bad in ("worker", "sync:", "subscription:", "API"):
        with pytest.raises(ValueError):
            rt.db.write_sync(lambda tx, o=bad: changes.record(tx, Change("agent.created", {"id": "a"}, origin=o)))
    with pytest.raises(ValueError):
        rt.db.write_sync(lambda tx: changes.record(tx, Change(None, kind="updated")))  # no rows, no calendar
    assert rt.db.write_sync(lambda tx: changes.record(tx, Change(None))) is None  # nothing to log
    assert _log(rt) == []


# -- migration 0008 ----------------------------------------------------------------------------------


def _outbox_db(path: Path) -> Any:
    conn = open_connection(path)
    conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    old = [(name, sql) for name, sql in migrations.available() if name < "0008"]
    for i, (name, sql) in enumerate(old, start=1):  # the database as Chronary left it at 0007
        with conn:
            conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations VALUES (?, '2026-01-01T00:00:00.000Z')", (name,))
            conn.execute(f"PRAGMA user_version = {i}")
    return conn


def _outbox_row(seq: int, type_: str, dispatched: bool, resource: str = "agt_1") -> tuple[Any, ...]:
    payload = json.dumps({"id": f"whe_{seq}", "type": type_, "created_at": "x", "data": {"object": {"id": resource}}})
    return (
        seq,
        f"whe_{seq}",
        type_,
        "agt_1",
        resource,
        payload,
        "2026-01-01T00:00:00.000Z",
        "2026-01-01T00:00:01.000Z" if dispatched else None,
    )


def test_migration_moves_the_outbox_and_resumes_fan_out_after_the_last_dispatched(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    conn = _outbox_db(Settings(data_dir=data_dir).db_path)
    with conn:
        rows = [
            _outbox_row(1, "agent.created", True),
            _outbox_row(2, "connection.synced", True, "con_1"),
            _outbox_row(3, "event.hold_expired", False, "evt_1"),
            _outbox_row(4, "ical_subscription.failed", False, "isub_1"),
        ]
        conn.executemany(
            """INSERT INTO outbox (seq, id, type, agent_id, resource_id, payload, created_at, dispatched_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            rows,
        )
        conn.execute("DELETE FROM outbox WHERE seq = 4")  # pruned earlier: its seq must not come back
        conn.execute("INSERT INTO orgs (id, name, created_at) VALUES ('org_1', 'Org', '2026-01-01T00:00:00.000Z')")
    conn.close()

    rt = open_runtime(_settings(data_dir))
    moved = _log(rt)
    assert [(r["seq"], r["id"], r["type"], r["origin"], r["webhook"]) for r in moved] == [
        (1, "whe_1", "agent.created", "api", 1),
        (2, "whe_2", "connection.synced", "sync:con_1", 1),
        (3, "whe_3", "event.hold_expired", "system", 1),
    ]
    assert moved[0]["payload"] == rows[0][5]  # byte for byte
    assert rt.db.read_sync(lambda tx: change_store.cursor(tx.conn, "webhooks")) == 2
    outbox_view = rt.db.read_sync(lambda tx: [r["seq"] for r in tx.conn.execute("SELECT seq FROM outbox ORDER BY seq")])
    assert outbox_view == [1, 2, 3]
    # an endpoint that existed before the migration gets the undispatched row only, once
    rt.db.write_sync(
        lambda tx: tx.conn.execute(
            """INSERT INTO webhook_endpoints (id, org_id, url, events, status, secret_enc, since_seq, created_at,
                 updated_at) VALUES ('whk_1', 'org_1', 'http://127.0.0.1:9/', '["*"]', 'active', 'x', 0, 'x', 'x')"""
        )
    )
    assert asyncio.run(changes.consume(rt.db, dispatch.CONSUMER, dispatch.fan_out)) == 1
    assert [d["event_id"] for d in _deliveries(rt)] == ["whe_3"]
    new = rt.db.write_sync(lambda tx: changes.record(tx, Change("agent.updated", {"id": "agt_1"})))
    assert [(r["seq"], r["id"]) for r in _log(rt)][-1] == (5, new)  # after the pruned 4
    rt.db.close()
