"""Change payloads are kept only while a consumer needs them (issue 20, item 5): once every
cursor has passed a change its payload goes (services/changes.consume_batch), the rest of the
change stays for the retention prune, and migration 0020 moves the log to that layout without
changing what it holds."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from chronary.config import Settings
from chronary.runtime import open_runtime
from chronary.services import changes
from chronary.store import changes as change_store
from chronary.store import migrate as migrations
from chronary.store.db import open_connection
from chronary.webhooks import dispatch

COLUMNS = ["seq", "id", "type", "resource_id", "agent_id", "audience", "calendar_id", "origin", "webhook", "payload"]
COLUMNS.append("created_at")


def _log(api: Any) -> list[dict[str, Any]]:
    return list(reversed(api.runtime.db.read_sync(lambda tx: change_store.recent(tx.conn, 10_000))))


def _payload_rows(api: Any) -> int:
    return api.runtime.db.read_sync(lambda tx: next(iter(tx.conn.execute("SELECT count(*) AS n FROM change_payloads")))["n"])


def _fan_out(api: Any) -> int:
    return asyncio.run(changes.consume(api.runtime.db, dispatch.CONSUMER, dispatch.fan_out))


def _agents_logged(api: Any) -> list[dict[str, Any]]:
    return [r for r in _log(api) if r["type"] == "agent.created"]


def test_payloads_go_once_every_consumer_has_read_them(make_api: Any) -> None:
    api = make_api()
    api.receive_webhooks()
    _fan_out(api)
    api.agent("Ada")
    (logged,) = _agents_logged(api)
    assert list(logged) == COLUMNS  # the `changes` view has the shape the table had
    assert json.loads(logged["payload"])["data"]["object"]["name"] == "Ada"
    assert _fan_out(api) == 1
    (passed,) = _agents_logged(api)
    assert passed["payload"] is None and _payload_rows(api) == 0
    assert {k: v for k, v in passed.items() if k != "payload"} == {k: v for k, v in logged.items() if k != "payload"}


def test_a_change_no_endpoint_could_receive_is_logged_without_its_payload(make_api: Any) -> None:
    """Without a webhook endpoint no consumer wants a change: it is logged (the seq, type, ids and
    origin stay for the retention prune) but its payload is never written, and the webhook
    consumer passes such changes unread. An endpoint made later starts after them; one that comes
    back from disabled gets none of what was logged without a payload meanwhile."""
    api = make_api()
    api.agent("Ada")
    (logged,) = _agents_logged(api)
    assert logged["payload"] is None and _payload_rows(api) == 0
    assert _fan_out(api) == 1  # passed without being read

    hook = api.receive_webhooks()
    api.agent("Bob")
    assert _payload_rows(api) == 1  # Bob's change could be received
    db = api.runtime.db
    db.write_sync(lambda tx: tx.conn.execute("UPDATE webhook_endpoints SET status = 'disabled' WHERE id = ?", (hook["id"],)))
    api.agent("Cy")  # logged while nobody could receive it
    db.write_sync(lambda tx: tx.conn.execute("UPDATE webhook_endpoints SET status = 'active' WHERE id = ?", (hook["id"],)))
    assert _fan_out(api) >= 2
    sent = db.read_sync(
        lambda tx: [json.loads(d["payload"]) for d in tx.conn.execute("SELECT payload FROM webhook_deliveries")]
    )
    assert [p["data"]["object"]["name"] for p in sent if p["type"] == "agent.created"] == ["Bob"]


def test_a_consumer_that_is_behind_keeps_the_payloads_it_has_not_read(make_api: Any) -> None:
    api = make_api()
    db = api.runtime.db
    db.changes.consumer("slow")  # a consumer that wants every change
    db.write_sync(lambda tx: change_store.ensure_cursor(tx.conn, "slow"))
    api.agent("Ada")
    api.agent("Bob")
    assert _fan_out(api) == 2
    assert [r["payload"] is not None for r in _log(api)] == [True, True]
    seen: list[str] = []

    def handler(tx: Any, rows: list[dict[str, Any]]) -> None:
        seen.extend(json.loads(r["payload"])["data"]["object"]["name"] for r in rows)

    assert db.write_sync(lambda tx: changes.consume_batch(tx, "slow", handler, 1)) == 1
    assert [r["payload"] is not None for r in _log(api)] == [False, True]
    assert asyncio.run(changes.consume(db, "slow", handler)) == 1
    assert seen == ["Ada", "Bob"] and _payload_rows(api) == 0


def test_deliveries_keep_the_payload_after_the_log_dropped_it(make_api: Any) -> None:
    api = make_api()
    r = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["*"]})
    assert r.status_code == 201, r.text
    api.agent("Ada")
    sent = _log(api)[-1]["payload"]
    assert _fan_out(api) == 1
    stored = api.runtime.db.read_sync(
        lambda tx: [d["payload"] for d in tx.conn.execute("SELECT payload FROM webhook_deliveries")]
    )
    assert stored == [sent] and _log(api)[-1]["payload"] is None


def test_migration_0020_keeps_every_change_and_the_high_water(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    conn = open_connection(Settings(data_dir=data_dir).db_path)
    conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for name, sql in migrations.available():
        if name >= "0020":
            break
        with conn:
            conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations VALUES (?, '2026-01-01T00:00:00.000Z')", (name,))
    rows = [
        (seq, f"whe_{seq}", "agent.created", f"agt_{seq}", "agt_1", None, None, "api", 1, f'{{"id": "whe_{seq}"}}', "t")
        for seq in (1, 2, 3)
    ]
    with conn:
        conn.executemany(f"INSERT INTO changes ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", rows)
        conn.execute("DELETE FROM changes WHERE seq = 3")  # pruned: its seq must not come back
        conn.execute("UPDATE change_cursors SET seq = 1")
    conn.close()

    rt = open_runtime(Settings(data_dir=data_dir, workers=False))
    moved = rt.db.read_sync(lambda tx: [tuple(r.values()) for r in tx.conn.execute("SELECT * FROM changes ORDER BY seq")])
    assert moved == rows[:2]  # byte for byte, payloads included
    assert rt.db.read_sync(lambda tx: change_store.high_water(tx.conn)) == 3
    assert rt.db.read_sync(lambda tx: [tuple(r.values()) for r in tx.conn.execute("SELECT seq FROM outbox")]) == [(1,), (2,)]
    new = rt.db.write_sync(lambda tx: changes.record(tx, changes.Change("agent.updated", {"id": "agt_1"})))
    assert rt.db.read_sync(lambda tx: change_store.recent(tx.conn, 1))[0]["id"] == new
    assert rt.db.read_sync(lambda tx: change_store.recent(tx.conn, 1))[0]["seq"] == 4
    # the webhook consumer (at seq 1) takes the rest: every payload it passed goes
    assert asyncio.run(changes.consume(rt.db, dispatch.CONSUMER, dispatch.fan_out)) == 2
    payloads = rt.db.read_sync(lambda tx: [r["seq"] for r in tx.conn.execute("SELECT seq FROM change_payloads")])
    assert payloads == [1]  # passed before the migration: it goes with the retention prune
    rt.db.write_sync(lambda tx: change_store.prune(tx.conn, "u"))
    assert rt.db.read_sync(lambda tx: list(tx.conn.execute("SELECT seq FROM change_payloads"))) == []
    rt.db.close()
