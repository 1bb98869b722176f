"""What keeps execution history bounded and runs orderly: per-flow concurrency, payload caps,
retention pruning with checkpoint and incremental vacuum, task-history paging."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from chronary.services.automation import runs
from chronary.store import automation as store
from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver() -> Any:
    r = Receiver().start()
    yield r
    r.release()
    r.close()


def _statuses(c: Any, flow_id: str) -> dict[str, str]:
    return {e["id"]: e["status"] for e in c.get(f"/connect/v1/flows/{flow_id}/executions").json()["data"]}


def _wait(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_flow_runs_at_most_its_concurrency_at_once(live_server: Any, receiver: Receiver) -> None:
    server = live_server(workers=True, flow_concurrency=1)
    c = server.client()
    flow = c.post(
        "/connect/v1/flows",
        json={"name": "one at a time", "steps": [{"id": "call", "type": "http.request", "url": receiver.url, "body": {}}]},
    ).json()
    receiver.queue(("stall", 30))
    first = c.post(f"/connect/v1/flows/{flow['id']}/test", json={"triggerData": {"n": 1}, "wait": False}).json()
    second = c.post(f"/connect/v1/flows/{flow['id']}/test", json={"triggerData": {"n": 2}, "wait": False}).json()
    receiver.wait_for(1, timeout=20)
    time.sleep(1.5)  # several worker ticks: the second run must still wait for the first
    now = _statuses(c, flow["id"])
    assert now[first["id"]] == "running" and now[second["id"]] == "queued"
    assert len(receiver.requests) == 1
    receiver.release()
    _wait(lambda: set(_statuses(c, flow["id"]).values()) == {"succeeded"})
    assert len(receiver.requests) == 2


def test_payloads_are_capped_and_old_runs_pruned_with_the_space_given_back(live_server: Any, receiver: Receiver) -> None:
    server = live_server(workers=True, execution_payload_max_bytes=1000)
    c = server.client()
    flow = c.post(
        "/connect/v1/flows",
        json={"name": "big", "steps": [{"id": "call", "type": "http.request", "url": receiver.url,
                                         "body": {"blob": "{{ trigger.blob }}"}}]},
    ).json()  # fmt: skip
    run = c.post(f"/connect/v1/flows/{flow['id']}/test", json={"triggerData": {"blob": "x" * 5000}}).json()
    assert run["status"] == "succeeded", run["error"]
    assert run["triggerData"] == {"blob": "x" * 5000}  # what the run works on is kept whole
    (step,) = c.get(f"/connect/v1/flows/{flow['id']}/executions/{run['id']}/steps").json()["data"]
    assert step["input"]["truncated"] is True and len(receiver.requests[0].json["blob"]) == 5000  # only the log is capped
    for n in range(3):
        c.post(f"/connect/v1/flows/{flow['id']}/test", json={"triggerData": {"blob": str(n)}})
    runtime = server.app.state.runtime
    assert runtime.db.write_sync(lambda tx: runs.prune(tx, timedelta(days=1))) == 0  # all recent: kept
    assert runtime.db.write_sync(lambda tx: runs.prune(tx, timedelta(seconds=-1))) == 4
    assert c.get(f"/connect/v1/flows/{flow['id']}/executions").json()["total"] == 0
    assert runtime.db.read_sync(lambda tx: store.steps_of(tx.conn, run["id"])) == []  # step logs went with them
    runtime.db.write_sync_raw(store.checkpoint)
    mode = runtime.db.read_sync(lambda tx: list(tx.conn.execute("PRAGMA auto_vacuum")))
    assert mode == [{"auto_vacuum": 2}]  # incremental: pruned pages are handed back, the file does not only grow


def test_task_history_pages_across_flows(live_server: Any) -> None:
    c = live_server().client()
    flows = [
        c.post(
            "/connect/v1/flows", json={"name": f"f{i}", "steps": [{"id": "f", "type": "filter", "condition": "true"}]}
        ).json()
        for i in range(2)
    ]
    made = [
        c.post(f"/connect/v1/flows/{f['id']}/test", json={"triggerData": {}}).json()["id"] for f in flows for _ in range(3)
    ]
    first = c.get("/connect/v1/task-history", params={"page": 1, "limit": 4}).json()
    second = c.get("/connect/v1/task-history", params={"page": 2, "limit": 4}).json()
    assert first["total"] == 6 and len(first["data"]) == 4 and len(second["data"]) == 2
    assert [e["id"] for e in first["data"] + second["data"]] == sorted(made, reverse=True)  # newest first
    one = c.get("/connect/v1/task-history", params={"flowId": flows[0]["id"]}).json()
    assert {e["flowId"] for e in one["data"]} == {flows[0]["id"]} and one["total"] == 3
    assert c.get("/connect/v1/task-history", params={"page": 0}).status_code == 400


def test_db_vacuum_turns_on_incremental_vacuum_for_an_old_database(tmp_path: Any) -> None:
    import apsw

    from chronary.store import maintenance

    path = tmp_path / "old.db"
    old = apsw.Connection(str(path))  # made the old way: auto_vacuum none
    old.execute("CREATE TABLE t (x TEXT)")
    old.execute("INSERT INTO t VALUES (?)", ("x" * 100_000,))
    old.execute("DELETE FROM t")
    old.close()
    before, after = maintenance.vacuum(path)
    assert after < before
    check = apsw.Connection(str(path))
    assert list(check.execute("PRAGMA auto_vacuum")) == [(2,)]


def test_the_worker_prunes_old_mcp_request_ids(make_api: Any) -> None:
    import asyncio

    from chronary.store import mcp as mcp_store
    from chronary.workers.automation import AutomationWorker

    api = make_api()
    runtime = api.runtime
    runtime.db.write_sync(
        lambda tx: mcp_store.put(tx.conn, "key_1", "create_event", "old", {"ok": 1}, "2020-01-01T00:00:00.000Z")
    )
    runtime.db.write_sync(
        lambda tx: mcp_store.put(tx.conn, "key_1", "create_event", "new", {"ok": 2}, "2999-01-01T00:00:00.000Z")
    )
    assert asyncio.run(AutomationWorker(runtime).prune()) == 1
    left = runtime.db.read_sync(lambda tx: [r["request_id"] for r in tx.conn.execute("SELECT request_id FROM mcp_requests")])
    assert left == ["new"]
