"""Flow steps on tables over real HTTP: a flow logs every confirmed booking into a table and a
person exports it as CSV; record.to_table maps imported records into rows; lookup, branch and
delete; save-time checks of tables and columns; the mirror template makes its own table."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import httpx
import pytest


@pytest.fixture
def server(live_server: Any) -> Any:
    return live_server(workers=True)


def _wait(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def _calendar(c: httpx.Client) -> dict[str, Any]:
    agent = c.post("/v1/agents", json={"name": "Ada"}).json()
    cal: dict[str, Any] = c.post(f"/v1/agents/{agent['id']}/calendars", json={"name": "Work", "timezone": "UTC"}).json()
    return cal


def _rows(c: httpx.Client, slug: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = c.get(f"/connect/v1/tables/{slug}/rows").json()["data"]
    return found


def test_the_mirror_template_logs_confirmed_bookings_and_exports_csv(server: Any) -> None:
    c = server.client()
    cal = _calendar(c)
    flow = c.post("/connect/v1/flow-templates/mirror-confirmed-events/clone", json={"inputs": {"table": "bookings"}})
    assert flow.status_code == 201, flow.text
    table = c.get("/connect/v1/tables/bookings").json()
    assert [col["name"] for col in table["columns"]][:2] == ["event_id", "title"]
    booked = c.post(
        f"/v1/calendars/{cal['id']}/events",
        json={"title": "Client call", "start_time": "2026-12-15T09:00:00Z", "end_time": "2026-12-15T10:00:00Z"},
    ).json()
    hold = c.post(
        f"/v1/calendars/{cal['id']}/events",
        json={"title": "Maybe", "status": "hold", "start_time": "2026-12-16T09:00:00Z", "end_time": "2026-12-16T10:00:00Z"},
    ).json()
    _wait(lambda: len(_rows(c, "bookings")) == 1)
    c.patch(f"/v1/calendars/{cal['id']}/events/{booked['id']}", json={"title": "Client call (moved)"})
    assert c.post(f"/v1/calendars/{cal['id']}/events/{hold['id']}/confirm").status_code == 200
    rows = _wait(
        lambda: (r := _rows(c, "bookings")) and len(r) == 2 and any("moved" in x["values"]["title"] for x in r) and r
    )
    by_event = {r["values"]["event_id"]: r["values"] for r in rows}
    assert by_event[booked["id"]]["title"] == "Client call (moved)"  # upserted by event id: one row per event
    assert by_event[hold["id"]]["title"] == "Maybe"
    exported = c.get("/connect/v1/tables/bookings/export", params={"format": "csv"})
    assert exported.status_code == 200
    lines = list(csv.DictReader(io.StringIO(exported.text)))
    assert {row["event_id"]: row["title"] for row in lines} == {booked["id"]: "Client call (moved)", hold["id"]: "Maybe"}


def test_record_to_table_lookup_branch_and_delete(server: Any) -> None:
    c = server.client()
    created = c.post(
        "/connect/v1/tables",
        json={
            "name": "Orders",
            "slug": "orders",
            "columns": [
                {"name": "number", "type": "text"},
                {"name": "item", "type": "text"},
                {"name": "qty", "type": "number"},
            ],
        },
    )
    assert created.status_code == 201, created.text
    mapper = c.post(
        "/connect/v1/flows",
        json={
            "name": "orders in",
            "trigger": {"providerType": "chronary", "triggerName": "record.received", "kind": "event",
                        "config": {"where": {"resource_type": "order"}}},
            "steps": [
                {"id": "seen", "type": "table.lookup", "table": "orders", "column": "number",
                 "value": "{{ trigger.object.payload.number }}"},
                {"id": "new", "type": "branch", "condition": "not steps.seen.output.found", "then": [
                    {"id": "row", "type": "record.to_table", "table": "orders", "upsertColumn": "number",
                     "mapping": {"number": "{{ record.payload.number }}", "item": "{{ record.payload.item | upper }}",
                                 "qty": "{{ record.payload.qty }}"}},
                ], "else": [
                    {"id": "drop", "type": "table.delete", "table": "orders", "column": "number",
                     "value": "{{ trigger.object.payload.number }}"},
                ]},
            ],
        },
    )  # fmt: skip
    assert mapper.status_code == 201, mapper.text
    c.post("/connect/v1/records/import", json={"providerType": "shop", "resourceType": "order",
                                               "data": [{"number": "A1", "item": "mug", "qty": "2"}]})  # fmt: skip
    rows = _wait(lambda: _rows(c, "orders"))
    assert [r["values"] for r in rows] == [{"number": "A1", "item": "MUG", "qty": 2}]
    # the same order again: found, so the else side deletes it
    c.post("/connect/v1/records/import", json={"providerType": "shop", "resourceType": "order", "data": [{"number": "A1"}]})
    _wait(lambda: _rows(c, "orders") == [])
    runs = _wait(lambda: (e := c.get(f"/connect/v1/flows/{mapper.json()['id']}/executions").json()["data"])
                 and len([x for x in e if x["status"] == "succeeded"]) == 2 and e)  # fmt: skip
    last = c.get(f"/connect/v1/flows/{mapper.json()['id']}/executions/{runs[0]['id']}/steps").json()["data"]
    assert [(s["path"], s["stepId"], s["status"]) for s in last] == [
        ("0", "seen", "succeeded"), ("1", "new", "succeeded"), ("1.else.0", "drop", "succeeded")
    ]  # fmt: skip
    assert last[2]["output"] == {"deleted": 1}


def test_table_steps_are_checked_when_saved_and_refusals_fail_the_step(server: Any) -> None:
    c = server.client()
    c.post("/connect/v1/tables", json={"name": "T", "slug": "t", "columns": [{"name": "k", "type": "text"},
                                                                            {"name": "n", "type": "number"}]})  # fmt: skip

    def refused(step: dict[str, Any]) -> str | None:
        r = c.post("/connect/v1/flows", json={"name": "x", "steps": [step]})
        assert r.status_code == 400, r.text
        param: str | None = r.json()["error"]["param"]
        return param

    assert refused({"id": "a", "type": "table.insert", "table": "nope", "values": {"k": "1"}}) == "steps[0].table"
    assert refused({"id": "a", "type": "table.insert", "table": "t", "values": {"x": "1"}}) == "steps[0].values.x"
    assert refused({"id": "a", "type": "table.upsert", "table": "t", "values": {}, "column": "z"}) == "steps[0].column"
    assert refused({"id": "a", "type": "table.delete", "table": "t"}) == "steps[0].rowId"
    assert refused({"id": "a", "type": "record.to_table", "table": "t", "mapping": {}}) == "steps[0].mapping"
    flow = c.post(
        "/connect/v1/flows",
        json={"name": "bad value", "steps": [{"id": "a", "type": "table.insert", "table": "t",
                                              "values": {"k": "x", "n": "{{ trigger.n }}"}}]},
    ).json()  # fmt: skip
    run = c.post(f"/connect/v1/flows/{flow['id']}/test", json={"triggerData": {"n": "not a number"}}).json()
    assert run["status"] == "failed" and "n" in run["error"] and run["errorStep"] == "0"
    ok = c.post(f"/connect/v1/flows/{flow['id']}/test", json={"triggerData": {"n": "42"}}).json()
    assert ok["status"] == "succeeded"
    assert [r["values"] for r in _rows(c, "t")] == [{"k": "x", "n": 42}]
    clash = c.post(f"/connect/v1/flows/{flow['id']}/test", json={"triggerData": {"n": 1}}).json()
    assert clash["status"] == "failed" and "conflict" in clash["error"]  # the key column is unique
