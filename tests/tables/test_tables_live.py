"""Connect tables on a live server (uvicorn on 127.0.0.1): concurrent upserts of one key make one
row, and row changes start flows."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.tables.test_tables_api import BASE, ORDERS
from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.close()


def test_concurrent_upserts_of_one_key_make_exactly_one_row(live_server: Any) -> None:
    server = live_server()
    with server.client() as c:
        assert c.post(BASE, json=ORDERS).status_code == 201
    threads, per_thread = 8, 10
    start = threading.Barrier(threads)
    results: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        with server.client() as c:
            start.wait()
            for i in range(per_thread):
                r = c.post(f"{BASE}/orders/rows/upsert", json={"values": {"code": "SAME", "amount": n * 100 + i}})
                with lock:
                    results.append((r.status_code, r.json()))

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert len(results) == threads * per_thread
    assert {status for status, _ in results} == {200}, [b for s, b in results if s != 200][:3]
    assert sum(body["created"] for _, body in results) == 1
    assert len({body["row"]["id"] for _, body in results}) == 1
    with server.client() as c:
        listed = c.get(f"{BASE}/orders/rows").json()
        assert listed["total"] == 1 and c.get(f"{BASE}/orders").json()["rowCount"] == 1
        # also on a fresh key: concurrent plain inserts of one key, one wins and the rest are 409
        codes: list[int] = []

        def insert() -> None:
            with server.client() as c2:
                r = c2.post(f"{BASE}/orders/rows", json={"values": {"code": "ONCE", "amount": 1}})
                with lock:
                    codes.append(r.status_code)

        racers = [threading.Thread(target=insert) for _ in range(6)]
        for t in racers:
            t.start()
        for t in racers:
            t.join(30)
        assert sorted(codes) == [201, 409, 409, 409, 409, 409]


def test_a_flow_runs_on_every_new_row(live_server: Any, receiver: Receiver) -> None:
    server = live_server(workers=True)
    with server.client() as c:
        assert c.post(BASE, json=ORDERS).status_code == 201
        flow = c.post(
            "/connect/v1/flows",
            json={
                "name": "Tell me about new orders",
                "trigger": {
                    "providerType": "chronary",
                    "triggerName": "table.row_created",
                    "kind": "event",
                    "config": {"where": {"table": "orders"}},
                },
                "steps": [
                    {
                        "id": "tell",
                        "type": "http.request",
                        "url": receiver.url,
                        "body": {"code": "{{ trigger.object.values.code }}", "amount": "{{ trigger.object.values.amount }}"},
                    }
                ],
            },
        )
        assert flow.status_code == 201, flow.text
        r = c.post(f"{BASE}/orders/rows", json={"values": {"code": "A1", "amount": 7}})
        assert r.status_code == 201, r.text
        (got,) = receiver.wait_for(1, timeout=20)
        assert got.json == {"code": "A1", "amount": 7}
        # an update is another change type: the flow does not run again
        c.patch(f"{BASE}/orders/rows/{r.json()['id']}", json={"values": {"amount": 8}})
        time.sleep(0.5)
        assert len(receiver.requests) == 1


def test_exports_stream_over_a_real_socket(live_server: Any) -> None:
    server = live_server()
    with server.client() as c:
        assert c.post(BASE, json=ORDERS).status_code == 201
        rows = [{"code": f"R{i:05d}", "amount": i} for i in range(3000)]
        assert c.post(f"{BASE}/orders/import", json={"rows": rows}).json()["imported"] == 3000
        with c.stream("GET", f"{BASE}/orders/export", params={"format": "csv"}) as r:
            assert r.status_code == 200 and "content-length" not in r.headers  # streamed, not buffered
            chunks = list(r.iter_raw())
        text = b"".join(chunks).decode()
        assert len(text.splitlines()) == 3001
