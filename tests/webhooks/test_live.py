"""The worker inside a real server: wakes on commits, retries as the clock moves, and survives
being stopped mid-delivery (the receiver gets the same payload id again: at-least-once)."""

from __future__ import annotations

import time

from chronary.clock import ManualClock
from chronary.webhooks import verify


def wait_until(check, timeout: float = 10.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(every)


def test_commit_wakes_the_worker_promptly(webhook_server, receiver):
    server = webhook_server(poll_seconds=60)  # only the commit signal can make this fast
    with server.client() as c:
        wh = c.post("/v1/webhooks", json={"url": receiver.url, "events": ["agent.created"]}).json()
        time.sleep(0.2)  # let the worker go to sleep for its (long) poll interval
        started = time.monotonic()
        agent = c.post("/v1/agents", json={"name": "Ada"}).json()
        (got,) = receiver.wait_for(1, timeout=10)
        assert time.monotonic() - started < 10  # far below the 60 s poll: woken by the commit
        assert got.json["data"]["object"] == agent
        verify(got.body, got.headers, wh["secret"])  # real clock: a fresh timestamp
        entry = wait_until(
            lambda: [d for d in c.get(f"/v1/webhooks/{wh['id']}/deliveries").json()["data"] if d["status"] == "succeeded"]
        )
        assert entry[0]["event_id"] == got.id


def test_retry_happens_when_the_clock_moves(webhook_server, receiver):
    clock = ManualClock()
    server = webhook_server(clock=clock)
    receiver.queue(("status", 500))
    with server.client() as c:
        wh = c.post("/v1/webhooks", json={"url": receiver.url, "events": ["*"]}).json()
        c.post("/v1/agents", json={"name": "Ada"})
        receiver.wait_for(1)
        wait_until(lambda: c.get(f"/v1/webhooks/{wh['id']}/deliveries").json()["data"][0]["status"] == "retrying")
        time.sleep(0.3)
        assert len(receiver.requests) == 1  # 30 s have not passed on the server's clock
        clock.advance(seconds=31)
        got = receiver.wait_for(2)
        assert got[0].id == got[1].id
        wait_until(lambda: c.get(f"/v1/webhooks/{wh['id']}/deliveries").json()["data"][0]["status"] == "succeeded")


def test_stopped_mid_delivery_is_delivered_after_restart_with_same_id(webhook_server, receiver):
    receiver.queue(("stall", 20))  # the first attempt never gets an answer
    first_server = webhook_server(timeout=15, shutdown_grace=0.1)
    key = first_server.key
    with first_server.client() as c:
        wh = c.post("/v1/webhooks", json={"url": receiver.url, "events": ["*"]}).json()
        agent = c.post("/v1/agents", json={"name": "Ada"}).json()
    (first,) = receiver.wait_for(1)
    first_server.stop()  # the worker dies while the receiver is still holding the request
    assert first.answered is None

    second_server = webhook_server()  # same data dir
    got = receiver.wait_for(2)
    assert got[1].id == first.id and got[1].body == first.body
    assert got[1].json["data"]["object"] == agent
    with second_server.client(key) as c:
        (entry,) = wait_until(
            lambda: [d for d in c.get(f"/v1/webhooks/{wh['id']}/deliveries").json()["data"] if d["status"] == "succeeded"]
        )
        full = c.get(f"/v1/webhook-deliveries/{entry['id']}").json()
    assert [a["outcome"] for a in full["attempt_log"]] == ["interrupted", "succeeded"]
    assert "interrupted" in full["attempt_log"][0]["error"]
    assert full["attempts"] == 2 and full["last_status_code"] == 200 and full["payload"]["id"] == first.id
    time.sleep(0.3)
    assert len(receiver.requests) == 2 and {r.id for r in receiver.requests} == {first.id}


def test_idle_worker_does_not_spin(webhook_server):
    """Every commit wakes the worker, so an idle tick must not write (that would wake it again)."""
    server = webhook_server(poll_seconds=1)
    (worker,) = [w for w in server.app.state.workers.workers if w.name == "webhooks"]
    ticks = []
    original = worker.tick

    async def counting_tick() -> None:
        ticks.append(time.monotonic())
        await original()

    worker.tick = counting_tick
    time.sleep(1.5)
    assert len(ticks) <= 10  # a worker woken by its own commits ticks hundreds of times here
