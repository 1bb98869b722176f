"""Records over real HTTP: inbound deliveries kept, found by a word, summarised, replayed into
flows, imported from JSON and CSV (all or nothing), capped, pruned and permission-checked."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import pytest

from chronary.services import records as record_service
from tests.fakes.server import FakeServer, Reply, Request, route
from tests.webhooks.receiver import Receiver


class Api(FakeServer):
    @route("GET", r"/.*")
    def ok(self, req: Request) -> Reply:
        return Reply.json(200, {"ok": True})


@pytest.fixture
def receiver() -> Any:
    r = Receiver().start()
    yield r
    r.close()


@pytest.fixture
def server(live_server: Any) -> Any:
    return live_server(workers=True, record_payload_max_bytes=4096)


def _connect(c: httpx.Client, api: Api) -> dict[str, Any]:
    con = c.post("/connect/v1/providers/http/connect", json={"credentials": {"baseUrl": api.url, "apiKey": "k"}})
    assert con.status_code == 201, con.text
    return con.json()


def _wait(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_inbound_payloads_are_found_by_a_word_and_summarised(server: Any) -> None:
    with Api() as api:
        c = server.client()
        inbound = _connect(c, api)["inboundUrl"]
        anonymous = httpx.Client(timeout=10)
        for i, text in enumerate(["Printer on fire in room 4", "Coffee machine empty", "Printer jammed again"]):
            assert anonymous.post(inbound, json={"id": f"t{i}", "text": text}).status_code == 200
        listed = c.get("/connect/v1/records").json()
        assert listed["total"] == 3 and listed["page"] == 1
        assert [r["payload"]["body"]["text"] for r in listed["data"]][0] == "Printer jammed again"  # newest first
        found = c.get("/connect/v1/records", params={"search": "printer"}).json()
        assert found["total"] == 2 and all("Printer" in r["payload"]["body"]["text"] for r in found["data"])
        assert c.get("/connect/v1/records", params={"search": "coff"}).json()["total"] == 1  # prefixes match
        # words, not FTS syntax: every word must appear, OR and stray quotes are just text
        assert c.get("/connect/v1/records", params={"search": "fire OR coffee"}).json()["total"] == 0
        assert c.get("/connect/v1/records", params={"search": '"fire'}).json()["total"] == 1
        assert c.get("/connect/v1/records", params={"providerType": "ntfy"}).json()["total"] == 0
        one = found["data"][0]
        assert one["providerType"] == "http" and one["resourceType"] == "request" and one["source"] == "inbound"
        summary = c.get("/connect/v1/records/summary").json()
        assert summary["total"] == 3
        (kind,) = summary["data"]
        assert (kind["providerType"], kind["resourceType"], kind["count"]) == ("http", "request", 3)
        assert kind["firstSeen"] <= kind["lastSeen"]
        assert c.get(f"/connect/v1/records/{one['id']}").json()["payload"] == one["payload"]
        assert c.delete(f"/connect/v1/records/{one['id']}").status_code == 204
        assert c.get(f"/connect/v1/records/{one['id']}").status_code == 404
        assert c.get("/connect/v1/records", params={"search": "printer"}).json()["total"] == 1
        too_big = anonymous.post(inbound, json={"text": "x" * 5000})
        assert too_big.status_code == 413


def test_a_record_starts_a_flow_and_replays_it(server: Any, receiver: Receiver) -> None:
    with Api() as api:
        c = server.client()
        con = _connect(c, api)
        flow = c.post(
            "/connect/v1/flows",
            json={
                "name": "tickets",
                "trigger": {"providerType": "http", "triggerName": "request", "kind": "webhook"},
                "steps": [
                    {
                        "id": "tell",
                        "type": "http.request",
                        "url": receiver.url,
                        "body": {"t": "{{ trigger.payload.body.text }}"},
                    }
                ],
            },
        )
        assert flow.status_code == 201, flow.text
        assert httpx.post(con["inboundUrl"], json={"id": "a1", "text": "Printer on fire"}).status_code == 200
        (got,) = receiver.wait_for(1, timeout=20)
        assert got.json == {"t": "Printer on fire"}
        (record,) = c.get("/connect/v1/records").json()["data"]
        (run,) = record["executions"]
        assert run["flowId"] == flow.json()["id"] and run["replay"] is False
        replayed = c.post(f"/connect/v1/records/{record['id']}/replay")
        assert replayed.status_code == 202, replayed.text
        (again,) = replayed.json()["executions"]
        receiver.wait_for(2, timeout=20)
        assert receiver.requests[1].json == {"t": "Printer on fire"}
        execution = _wait(
            lambda: next(
                (
                    e
                    for e in c.get(f"/connect/v1/flows/{flow.json()['id']}/executions").json()["data"]
                    if e["id"] == again and e["status"] == "succeeded"
                ),
                None,
            )
        )
        assert execution["mode"] == "replay"
        shown = c.get(f"/connect/v1/records/{record['id']}").json()["executions"]
        assert {(e["executionId"], e["replay"]) for e in shown} == {(run["executionId"], False), (again, True)}


def test_imports_are_all_or_nothing_deduplicated_and_trigger_record_received(server: Any, receiver: Receiver) -> None:
    c = server.client()
    flow = c.post(
        "/connect/v1/flows",
        json={
            "name": "imported",
            "trigger": {"providerType": "chronary", "triggerName": "record.received", "kind": "event",
                        "config": {"where": {"resource_type": "order"}}},
            "steps": [{"id": "tell", "type": "http.request", "url": receiver.url,
                       "body": {"n": "{{ trigger.object.payload.number }}"}}],
        },
    )  # fmt: skip
    assert flow.status_code == 201, flow.text
    bad = c.post(
        "/connect/v1/records/import",
        json={
            "providerType": "shop",
            "resourceType": "order",
            "data": [{"number": "1"}, "oops", {"x": 1}],
            "dedupKey": "number",
        },
    )
    assert (
        bad.status_code == 400
        and "rows[1]" in bad.json()["error"]["message"]
        and "rows[2]" in bad.json()["error"]["message"]
    )
    assert c.get("/connect/v1/records").json()["total"] == 0  # nothing half-imported
    ok = c.post(
        "/connect/v1/records/import",
        json={
            "providerType": "shop",
            "resourceType": "order",
            "data": [{"number": "1"}, {"number": "2"}],
            "dedupKey": "number",
        },
    ).json()
    assert ok["imported"] == 2 and ok["duplicates"] == 0
    csv = "number,item\n2,Mug\n3,Lamp\n"
    again = c.post(
        "/connect/v1/records/import",
        json={"providerType": "shop", "resourceType": "order", "format": "csv", "data": csv, "dedupKey": "number"},
    ).json()
    assert again["imported"] == 1 and again["duplicates"] == 1
    got = receiver.wait_for(3, timeout=20)
    assert sorted(r.json["n"] for r in got) == ["1", "2", "3"]
    lamp = c.get("/connect/v1/records", params={"search": "lamp"}).json()["data"]
    assert [r["payload"] for r in lamp] == [{"number": "3", "item": "Lamp"}] and lamp[0]["source"] == "import"
    c.post("/connect/v1/records/import", json={"providerType": "shop", "resourceType": "refund", "data": [{"n": 9}]})
    time.sleep(0.5)
    assert len(receiver.requests) == 3  # the where filter kept the refund out


def test_permissions_and_retention(server: Any) -> None:
    c = server.client()
    agent = c.post("/v1/agents", json={"name": "Ada"}).json()
    viewer = c.post("/v1/keys", json={"agent_id": agent["id"], "permissions": ["records.view"]}).json()["secret"]
    v = server.client(viewer)
    assert v.get("/connect/v1/records").status_code == 200
    refused = v.post("/connect/v1/records/import", json={"providerType": "p", "resourceType": "r", "data": []})
    assert refused.status_code == 403 and "records.write" in refused.json()["error"]["message"]
    c.post("/connect/v1/records/import", json={"providerType": "p", "resourceType": "r", "data": [{"a": 1}]})
    runtime = server.app.state.runtime
    assert runtime.db.write_sync(lambda tx: record_service.prune(tx, timedelta(days=1))) == 0
    assert runtime.db.write_sync(lambda tx: record_service.prune(tx, timedelta(seconds=-1))) == 1
    assert c.get("/connect/v1/records").json()["total"] == 0
