"""Batched claims and records: a backlog goes out in change order with one write transaction per
batch, claims a stopping sender did not send are handed back, and crash evidence stays."""

from __future__ import annotations

from typing import Any

import pytest

from chronary.store import webhooks as store
from chronary.webhooks import dispatch
from chronary.workers import webhooks as worker_module


def hook(api: Any, url: str, **fields: Any) -> dict[str, Any]:
    r = api.post("/v1/webhooks", json={"url": url, "events": ["*"], **fields})
    assert r.status_code == 201, r.text
    return r.json()


def pending_for(api: Any, driver: Any, webhook_id: str, expected: int) -> list[dict[str, Any]]:
    """Fan the changes out (the endpoint is paused, so nothing is sent) and list its deliveries."""
    driver(api.runtime).run()
    rows = api.runtime.db.read_sync(lambda tx: store.list_deliveries(tx.conn, webhook_id, "pending", 500, 0))[0]
    assert len(rows) == expected
    return sorted(rows, key=lambda r: r["seq"])


def test_a_batch_keeps_change_order_and_stops_at_a_resource_it_holds(make_api, clock, receiver, driver):
    api = make_api(clock=clock)
    wh = hook(api, receiver.url)
    api.patch(f"/v1/webhooks/{wh['id']}", json={"status": "paused"})
    ada = api.agent("Ada")
    bob = api.agent("Bob")
    api.patch(f"/v1/agents/{ada['id']}", json={"name": "Ada 2"})
    cy = api.agent("Cy")
    rows = pending_for(api, driver, wh["id"], 4)
    assert [r["resource_id"] for r in rows] == [ada["id"], bob["id"], ada["id"], cy["id"]]
    api.patch(f"/v1/webhooks/{wh['id']}", json={"status": "active"})
    db = api.runtime.db

    first = db.write_sync(lambda tx: dispatch.claim_batch(tx, wh["id"], 10))
    # Ada's update waits for her creation, and so does everything after it: the batch sent in
    # order is exactly what one-at-a-time claims would have sent
    assert [c.delivery_id for c in first] == [rows[0]["id"], rows[1]["id"]]
    ok = dispatch.Outcome(status_code=200, duration_ms=1)
    failed = dispatch.Outcome(status_code=500, retryable=True, duration_ms=1)
    statuses, second = db.write_sync(
        lambda tx: dispatch.settle(tx, wh["id"], [(first[0], failed), (first[1], ok)], 10, jitter=0.0)
    )
    assert statuses == ["retrying", "succeeded"]
    # Ada's creation now waits for a retry: her update is passed over (blocked from outside the
    # batch), Cy's creation goes
    assert [c.delivery_id for c in second] == [rows[3]["id"]]


def test_claims_a_stopping_sender_did_not_send_are_handed_back(make_api, clock, receiver, driver):
    api = make_api(clock=clock)
    wh = hook(api, receiver.url)
    api.patch(f"/v1/webhooks/{wh['id']}", json={"status": "paused"})
    for name in ("Ada", "Bob", "Cy"):
        api.agent(name)
    rows = pending_for(api, driver, wh["id"], 3)
    api.patch(f"/v1/webhooks/{wh['id']}", json={"status": "active"})
    db = api.runtime.db
    claimed = db.write_sync(lambda tx: dispatch.claim_batch(tx, wh["id"], 3))
    assert len(claimed) == 3
    done = [(claimed[0], dispatch.Outcome(status_code=200, duration_ms=1))]
    db.write_sync(lambda tx: dispatch.settle(tx, wh["id"], done, 0, unsent=claimed[1:]))
    after = {r["id"]: r for r in db.read_sync(lambda tx: store.list_deliveries(tx.conn, wh["id"], None, 10, 0))[0]}
    assert after[rows[0]["id"]]["status"] == "succeeded"
    for row in rows[1:]:
        back = after[row["id"]]
        assert back["status"] == "pending" and back["attempts"] == 0 and back["last_attempt_at"] is None
        assert back["next_attempt_at"] == row["next_attempt_at"]
        assert db.read_sync(lambda tx, i=row["id"]: store.attempts_for(tx.conn, i)) == []
    assert db.read_sync(lambda tx: store.interrupted_attempts(tx.conn)) == []


def test_a_backlog_goes_out_in_order_in_growing_batches(make_api, clock, receiver, driver, monkeypatch):
    api = make_api(clock=clock)
    wh = hook(api, receiver.url, events=["agent.created"])
    api.patch(f"/v1/webhooks/{wh['id']}", json={"status": "paused"})
    names = [f"agent {i}" for i in range(40)]
    for name in names:
        api.agent(name)
    pending_for(api, driver, wh["id"], 40)
    api.patch(f"/v1/webhooks/{wh['id']}", json={"status": "active"})

    batches: list[int] = []
    settle = dispatch.settle

    def counting(tx: Any, endpoint_id: str, finished: Any, want: int, **kw: Any) -> Any:
        statuses, claims = settle(tx, endpoint_id, finished, want, **kw)
        batches.append(len(claims))
        return statuses, claims

    monkeypatch.setattr(dispatch, "settle", counting)
    monkeypatch.setattr(worker_module, "BATCH_SECONDS", 600.0)  # growth by success alone, whatever the machine's speed
    driver(api.runtime).run()
    got = receiver.wait_for(40)
    assert [r.json["data"]["object"]["name"] for r in got] == names  # exactly change order
    assert batches[:4] == [1, 2, 4, 8] and sum(batches) == 40 and len(batches) <= 8  # not 40 claims
    log = api.get(f"/v1/webhooks/{wh['id']}/deliveries", params={"limit": 100}).json()["data"]
    assert len(log) == 40 and {d["status"] for d in log} == {"succeeded"}


def test_a_failure_brings_the_batch_back_to_one():
    ok, bad = dispatch.Outcome(status_code=200), dispatch.Outcome(status_code=500, retryable=True)
    claim = dispatch.Claim("dlv_x", "whe_x", "{}", 1, 1, "http://x", "enc")
    assert worker_module._next_size(8, [(claim, ok)] * 8, 0.01) == 16
    assert worker_module._next_size(64, [(claim, ok)] * 64, 0.01) == worker_module.MAX_BATCH
    assert worker_module._next_size(8, [(claim, ok)] * 7 + [(claim, bad)], 0.01) == 1
    # a slow receiver: only as many as it answers in BATCH_SECONDS
    assert worker_module._next_size(8, [(claim, ok)] * 8, 8 * 0.05) == int(worker_module.BATCH_SECONDS / 0.05)


@pytest.mark.parametrize("limit", [0, -1])
def test_claiming_nothing_writes_nothing(make_api, clock, receiver, limit):
    api = make_api(clock=clock)
    wh = hook(api, receiver.url)
    api.agent("Ada")
    assert api.runtime.db.write_sync(lambda tx: dispatch.claim_batch(tx, wh["id"], limit)) == []


def test_a_sender_stopped_mid_batch_hands_back_what_it_did_not_send(make_api, clock, receiver, driver, monkeypatch):
    monkeypatch.setattr(worker_module, "BATCH_SECONDS", 600.0)
    api = make_api(clock=clock)
    wh = hook(api, receiver.url, events=["agent.created"])
    api.patch(f"/v1/webhooks/{wh['id']}", json={"status": "paused"})
    for i in range(20):
        api.agent(f"agent {i}")
    pending_for(api, driver, wh["id"], 20)
    api.patch(f"/v1/webhooks/{wh['id']}", json={"status": "active"})
    receiver.queue(*[("ok",)] * 7, ("stall", 0.5))  # batches of 1, 2, 4; the next one (8) stalls at once
    d = driver(api.runtime, shutdown_grace=10)
    d.start_tick()
    receiver.wait_for(8)
    d._call(d.worker._shutdown())  # stopping: the stalled attempt may finish, the other 7 of its batch go back
    log = api.get(f"/v1/webhooks/{wh['id']}/deliveries", params={"limit": 100}).json()["data"]
    assert sorted(e["status"] for e in log) == ["pending"] * 12 + ["succeeded"] * 8
    assert all(e["attempts"] == 0 for e in log if e["status"] == "pending")
    assert api.runtime.db.read_sync(lambda tx: store.interrupted_attempts(tx.conn)) == []
    assert len(receiver.requests) == 8


def test_while_the_api_answers_requests_a_backlog_is_paced(make_api, clock, receiver, driver):
    """A backlog drains at full speed while the API is idle, and at `busy_rate` deliveries a
    second in all, evenly spaced, while requests come in (draining it must not crowd them out)."""
    import threading
    import time

    api = make_api(clock=clock)
    wh = hook(api, receiver.url, events=["agent.created"])
    activity = api.runtime.activity

    def backlog(n: int, prefix: str) -> None:
        api.patch(f"/v1/webhooks/{wh['id']}", json={"status": "paused"})
        for i in range(n):
            api.agent(f"{prefix} {i}")
        pending_for(api, driver, wh["id"], n)
        api.patch(f"/v1/webhooks/{wh['id']}", json={"status": "active"})
        assert activity.busy(1.0)  # every request marks the API busy (the request middleware)

    backlog(20, "idle")
    activity.last = float("-inf")  # nobody has asked the API anything for a while
    started = time.monotonic()
    driver(api.runtime, busy_rate=20.0).run()
    assert len(receiver.wait_for(20)) == 20
    assert time.monotonic() - started < 0.6  # not paced: 20 at 20/s would take a second

    backlog(12, "busy")
    stop = threading.Event()

    def requests_keep_coming() -> None:
        while not stop.wait(0.05):
            activity.seen()

    beat = threading.Thread(target=requests_keep_coming, daemon=True)
    beat.start()
    try:
        started = time.monotonic()
        driver(api.runtime, busy_rate=20.0).run()
        paced = time.monotonic() - started
    finally:
        stop.set()
        beat.join()
    got = receiver.wait_for(32)
    assert [r.json["data"]["object"]["name"] for r in got[20:]] == [f"busy {i}" for i in range(12)]
    assert paced >= 11 / 20.0 - 0.02  # one start every 50 ms
