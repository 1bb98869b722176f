"""Poll triggers on the real app and a real SQLite file, with a ManualClock and the automation
worker ticked by hand: a custom HTTP provider (`POST /connect/v1/providers`, connected with a
key) whose `request` action answers the tickets of a local fake API. The first poll records the
baseline, every new item fires once, items sharing one timestamp are not lost, a vanished
last-seen item floods nothing, and restarts (a new runtime on the same data dir) fire nothing
twice; checked through the executions API, the steps' outputs and a receiver counting side effects."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from chronary.clock import ManualClock
from chronary.timeutil import to_ts
from tests.automation.test_time_triggers import T0, Workers, executions
from tests.conftest import Api
from tests.fakes.server import FakeServer, Reply, Request, route
from tests.webhooks.receiver import Receiver

KEY = "tk_live_0123456789abcdef"


class TicketsApi(FakeServer):
    """An API listing tickets (newest first, as most do); the test edits `tickets` between polls."""

    def __init__(self) -> None:
        super().__init__()
        self.tickets: list[dict[str, Any]] = []
        self.guard = threading.Lock()

    def put(self, key: str, updated: str, title: str | None = None) -> None:
        with self.guard:
            self.tickets = [t for t in self.tickets if t["id"] != key]
            self.tickets.insert(0, {"id": key, "updated_at": updated, "title": title or f"Ticket {key}"})

    def drop(self, *keys: str) -> None:
        with self.guard:
            self.tickets = [t for t in self.tickets if t["id"] not in keys]

    @route("GET", r"/v1/tickets")
    def list_tickets(self, req: Request) -> Reply:
        if req.header("authorization") != f"Bearer {KEY}":
            return Reply.json(401, {"error": "unauthorized"})
        with self.guard:
            return Reply.json(200, list(self.tickets))


@pytest.fixture
def tickets() -> Any:
    with TicketsApi() as fake:
        yield fake


@pytest.fixture
def receiver() -> Any:
    r = Receiver().start()
    yield r
    r.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def workers() -> Any:
    made: list[Workers] = []

    def factory(api: Api, clock: ManualClock) -> Workers:
        w = Workers(api.runtime, clock)
        made.append(w)
        return w

    yield factory
    for w in made:
        w.close()


def connect(api: Api, base_url: str) -> str:
    r = api.post(
        "/connect/v1/providers",
        json={"type": "tickets", "name": "Tickets", "baseUrl": base_url, "auth": {"style": "bearer"}},
    )
    assert r.status_code == 201, r.text
    con = api.post("/connect/v1/providers/tickets/connect", json={"credentials": {"apiKey": KEY}, "name": "Desk"})
    assert con.status_code == 201, con.text
    return str(con.json()["id"])


def poll_flow(api: Api, connection_id: str, url: str, **config: Any) -> dict[str, Any]:
    trigger = {
        "providerType": "tickets",
        "triggerName": "request",
        "kind": "poll",
        "connectionId": connection_id,
        "config": {
            "inputs": {"method": "GET", "path": "/v1/tickets"},
            "intervalSeconds": 60,
            "itemsPath": "body",
            "key": "id",
            "updated": "updated_at",
            **config,
        },
    }
    step = {
        "id": "tell",
        "type": "http.request",
        "url": url,
        "body": {
            "id": "{{ trigger.item.id }}",
            "updated": "{{ trigger.item.updated_at }}",
            "title": "{{ trigger.item.title }}",
        },
    }
    r = api.post("/connect/v1/flows", json={"name": "new tickets", "trigger": trigger, "steps": [step]})
    assert r.status_code == 201, r.text
    return r.json()


def fired(api: Api, flow_id: str) -> list[tuple[str, str]]:
    """(ticket id, updated_at) of each run, oldest first; each run succeeded and its step posted."""
    out = []
    for run in executions(api, flow_id):
        assert run["status"] == "succeeded", (run["error"], run["triggerData"])
        data = run["triggerData"]
        assert data["type"] == "poll" and data["object"] == data["item"] and data["polled_at"] == run["createdAt"]
        steps = api.get(f"/connect/v1/flows/{flow_id}/executions/{run['id']}/steps").json()["data"]
        assert [(s["stepId"], s["status"], s["output"]["status"]) for s in steps] == [("tell", "succeeded", 200)]
        assert steps[0]["input"]["body"]["id"] == data["item"]["id"]
        out.append((data["item"]["id"], data["item"]["updated_at"]))
    return out


def posted(receiver: Receiver) -> list[tuple[str, str]]:
    return [(r.json["id"], r.json["updated"]) for r in receiver.requests]


def test_a_poll_fires_once_per_new_item_from_its_baseline(
    make_api: Any, clock: ManualClock, workers: Any, tickets: TicketsApi, receiver: Receiver
) -> None:
    api = make_api(clock=clock)
    w = workers(api, clock)
    con = connect(api, tickets.url)
    tickets.put("t1", "2026-01-05T08:00:00Z")
    tickets.put("t2", "2026-01-05T08:30:00Z")
    f = poll_flow(api, con, receiver.url)
    assert f["trigger"]["nextRunAt"] == "2026-01-05T09:00:00.000Z"

    def poll(seconds: int) -> None:
        w.tick(T0 + timedelta(seconds=seconds))

    poll(0)  # the first poll records what is there: connecting a trigger fires nothing
    assert len(tickets.requests_to("/v1/tickets")) == 1
    assert executions(api, f["id"]) == [] and receiver.requests == []
    tickets.put("t3", "2026-01-05T09:00:30Z")
    poll(30)  # not due yet: the interval is 60 seconds
    assert len(tickets.requests_to("/v1/tickets")) == 1 and receiver.requests == []
    poll(60)
    assert posted(receiver) == [("t3", "2026-01-05T09:00:30Z")]
    poll(120)  # polled again, nothing new
    assert len(tickets.requests_to("/v1/tickets")) == 3 and len(receiver.requests) == 1

    # three items sharing one timestamp, one seen now and two arriving by the next poll
    tickets.put("t4", "2026-01-05T09:02:30Z")
    poll(180)
    tickets.put("t5", "2026-01-05T09:02:30Z")
    tickets.put("t6", "2026-01-05T09:02:30Z")
    poll(240)
    assert posted(receiver)[1] == ("t4", "2026-01-05T09:02:30Z")
    # t5 and t6 came in one poll: their runs go at once, in either order
    assert sorted(posted(receiver)[2:]) == [("t5", "2026-01-05T09:02:30Z"), ("t6", "2026-01-05T09:02:30Z")]

    # the last-seen items vanish (deleted, paged out): the older ones still there fire nothing
    tickets.drop("t4", "t5", "t6", "t3")
    poll(300)
    assert len(receiver.requests) == 4
    tickets.put("t7", "2026-01-05T09:05:30Z")
    poll(360)
    # an update moves the item's timestamp: it fires again, as an update
    tickets.put("t2", "2026-01-05T09:06:10Z", title="Ticket t2 (reopened)")
    poll(420)
    assert posted(receiver)[4:] == [("t7", "2026-01-05T09:05:30Z"), ("t2", "2026-01-05T09:06:10Z")]
    assert sorted(fired(api, f["id"])) == sorted(posted(receiver))  # one run per side effect
    assert len(tickets.requests_to("/v1/tickets")) == 8
    assert receiver.requests[-1].json["title"] == "Ticket t2 (reopened)"
    # every polled item is kept as a record (source poll) that knows the run it started
    kept = api.get("/connect/v1/records", params={"source": "poll", "limit": 200}).json()["data"]
    assert sorted(r["payload"]["id"] for r in kept) == ["t2", "t3", "t4", "t5", "t6", "t7"]
    assert all(len(r["executions"]) == 1 for r in kept)


def test_a_poll_fires_nothing_twice_across_restarts(
    make_api: Any, clock: ManualClock, workers: Any, tickets: TicketsApi, receiver: Receiver
) -> None:
    api = make_api(clock=clock)
    con = connect(api, tickets.url)
    tickets.put("t1", "2026-01-05T08:00:00Z")
    f = poll_flow(api, con, receiver.url)
    workers(api, clock).tick()  # baseline
    tickets.put("t2", "2026-01-05T09:00:10Z")
    workers(api, clock).tick(T0 + timedelta(seconds=60))
    assert posted(receiver) == [("t2", "2026-01-05T09:00:10Z")]

    # a new process on the same data dir, polling the same answer: nothing again
    clock.set(T0 + timedelta(minutes=10))
    restarted = make_api(clock=clock).as_key(api.key)
    w = workers(restarted, clock)
    w.tick()
    assert len(receiver.requests) == 1 and len(tickets.requests_to("/v1/tickets")) == 3

    # a poll whose cursor was lost (set back to an old one): the run keys still hold
    old = '{"updated_at":"2026-01-05T08:00:00.000000Z","ids_at":["t1"],"recent_keys":[],"primed":true}'
    restarted.runtime.db.write_sync(
        lambda tx: tx.conn.execute(
            "UPDATE flow_triggers SET state = json_set(state, '$.cursor', ?), next_run_ts = ? WHERE id = ?",
            (old, to_ts(clock.now()), f["trigger"]["id"]),
        )
    )
    tickets.put("t3", "2026-01-05T09:10:00Z")
    w.tick()
    assert posted(receiver) == [("t2", "2026-01-05T09:00:10Z"), ("t3", "2026-01-05T09:10:00Z")]

    # the provider failing for a while (an error answer, then unreachable) floods nothing afterwards
    tickets.fail_next(503, {"error": "maintenance"}, path="/v1/tickets")
    w.tick(T0 + timedelta(minutes=11))
    tickets.put("t4", "2026-01-05T09:11:30Z")
    again = workers(make_api(clock=clock), clock)
    again.tick(T0 + timedelta(minutes=12))
    again.tick(T0 + timedelta(minutes=13))
    assert (
        fired(api, f["id"])
        == posted(receiver)
        == [
            ("t2", "2026-01-05T09:00:10Z"),
            ("t3", "2026-01-05T09:10:00Z"),
            ("t4", "2026-01-05T09:11:30Z"),
        ]
    )
