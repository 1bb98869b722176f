"""Flows over real HTTP (uvicorn on 127.0.0.1, workers on): save-time validation naming the step
and field, change triggers queued with the change, step logs, filter/branch/delay, retries,
template errors, test runs, replay, task history and permissions."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from chronary.services.automation import runs
from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver() -> Any:
    r = Receiver().start()
    yield r
    r.close()


@pytest.fixture
def server(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(runs, "BACKOFF_SECONDS", (0.0, 0.0, 0.0))
    return live_server(workers=True)


def _calendar(c: httpx.Client) -> tuple[dict[str, Any], dict[str, Any]]:
    agent = c.post("/v1/agents", json={"name": "Ada", "timezone": "Europe/Berlin"}).json()
    cal = c.post(f"/v1/agents/{agent['id']}/calendars", json={"name": "Work", "timezone": "Europe/Berlin"}).json()
    return agent, cal


def _post_step(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "tell",
        "type": "http.request",
        "url": url,
        "body": {"title": "{{ trigger.event.title }}", "starts": "{{ trigger.event.start_time }}", "n": "{{ 1 + 1 }}"},
        **extra,
    }


def _wait_run(c: httpx.Client, flow_id: str, status: str = "succeeded", count: int = 1) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = c.get(f"/connect/v1/flows/{flow_id}/executions").json()["data"]
        done = [e for e in found if e["status"] == status]
        if len(done) >= count:
            return done
        time.sleep(0.05)
    raise AssertionError(c.get(f"/connect/v1/flows/{flow_id}/executions").json())


def test_a_change_trigger_runs_the_steps_once_with_a_step_log(server: Any, receiver: Receiver) -> None:
    c = server.client()
    agent, cal = _calendar(c)
    flow = c.post(
        "/connect/v1/flows",
        json={
            "name": "Tell me about new events",
            "trigger": {
                "providerType": "chronary",
                "triggerName": "event.created",
                "kind": "event",
                "config": {"calendarId": cal["id"], "where": {"status": "confirmed"}},
            },
            "steps": [_post_step(receiver.url)],
        },
    )
    assert flow.status_code == 201, flow.text
    body = flow.json()
    assert body["trigger"]["triggerName"] == "event.created" and body["steps"][0]["type"] == "http.request"
    flow_id = body["id"]
    made = c.post(
        f"/v1/calendars/{cal['id']}/events",
        json={"title": "Design review", "start_time": "2026-12-15T09:00:00+01:00", "end_time": "2026-12-15T10:00:00+01:00"},
    ).json()
    c.post(  # a hold does not match where.status
        f"/v1/calendars/{cal['id']}/events",
        json={"title": "Held", "status": "hold", "start_time": "2026-12-16T09:00:00Z", "end_time": "2026-12-16T10:00:00Z"},
    )
    (got,) = receiver.wait_for(1, timeout=20)
    assert got.json == {"title": "Design review", "starts": made["start_time"], "n": 2}
    (run,) = _wait_run(c, flow_id)
    assert run["mode"] == "trigger" and run["triggerData"]["event"]["id"] == made["id"]
    assert got.headers["Idempotency-Key"] == f"{run['id']}/0"
    steps = c.get(f"/connect/v1/flows/{flow_id}/executions/{run['id']}/steps").json()["data"]
    assert [(s["stepId"], s["status"], s["attempts"]) for s in steps] == [("tell", "succeeded", 1)]
    assert steps[0]["input"]["body"]["title"] == "Design review" and steps[0]["output"]["status"] == 200
    time.sleep(0.5)
    assert len(receiver.requests) == 1  # the hold matched nothing, nothing ran twice
    history = c.get("/connect/v1/task-history", params={"flowId": flow_id}).json()
    assert history["total"] == 1 and history["data"][0]["id"] == run["id"]


def test_save_time_validation_names_the_step_and_field(server: Any) -> None:
    c = server.client()

    def refused(steps: list[dict[str, Any]], trigger: dict[str, Any] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"name": "x", "steps": steps}
        if trigger:
            payload["trigger"] = trigger
        r = c.post("/connect/v1/flows", json=payload)
        assert r.status_code == 400, r.text
        return r.json()["error"]

    publish = {"id": "a", "type": "action", "providerType": "ntfy", "action": "publish"}
    assert refused([{**publish, "providerType": "fax"}])["param"] == "steps[0].providerType"
    assert refused([{**publish, "action": "fly"}])["param"] == "steps[0].action"
    assert refused([{**publish, "inputs": {"topic": "t"}}])["param"] == "steps[0].inputs.message"
    assert refused([{**publish, "inputs": {"topic": "t", "message": "m", "colour": 1}}])["param"] == "steps[0].inputs.colour"
    bad_template = refused([{**publish, "inputs": {"topic": "t", "message": "{{ trigger.event.title "}}])
    assert bad_template["param"].startswith("steps[0].inputs.message")
    twice = [{"id": "f", "type": "filter", "condition": "true"}, {"id": "f", "type": "filter", "condition": "true"}]
    assert refused(twice)["param"] == "steps[1].id"
    nested = [
        {"id": "b", "type": "branch", "condition": "true", "then": [{"id": "x", "type": "filter", "condition": "1 +"}]}
    ]
    assert refused(nested)["param"] == "steps[0].then[0].condition"
    assert refused([{"id": "d", "type": "delay"}])["param"] == "steps[0].seconds"
    ok = [{"id": "f", "type": "filter", "condition": "true"}]
    trig = {"providerType": "chronary", "triggerName": "event.exploded", "kind": "event"}
    assert refused(ok, trig)["param"] == "trigger.triggerName"
    cron = {"providerType": "chronary", "triggerName": "cron", "kind": "schedule", "config": {"cron": "61 * * * *"}}
    assert refused(ok, cron)["param"] == "trigger.config.cron"
    starting = {"providerType": "chronary", "triggerName": "event.starting", "kind": "event", "config": {}}
    assert refused(ok, starting)["param"] == "trigger.config.minutes"
    r = c.post("/connect/v1/flows", json={"name": "x", "steps": [{"id": "Bad Id", "type": "filter", "condition": "1"}]})
    assert r.status_code == 400 and "steps[0].id" in (r.json()["error"]["param"] or r.json()["error"]["message"])
    assert c.get("/connect/v1/flows").json()["total"] == 0  # nothing half-written


def test_filters_branches_delays_and_test_runs(server: Any, receiver: Receiver) -> None:
    c = server.client()
    flow = c.post(
        "/connect/v1/flows",
        json={
            "name": "Route by size",
            "steps": [
                {"id": "only_big", "type": "filter", "condition": "trigger.size > 1"},
                {"id": "pause", "type": "delay", "seconds": 1},
                {
                    "id": "which",
                    "type": "branch",
                    "condition": "trigger.size > 10",
                    "then": [
                        {
                            "id": "huge",
                            "type": "http.request",
                            "url": receiver.url + "/huge",
                            "body": {"n": "{{ trigger.size }}"},
                        }
                    ],
                    "else": [
                        {
                            "id": "mid",
                            "type": "http.request",
                            "url": receiver.url + "/mid",
                            "body": {"n": "{{ trigger.size }}"},
                        }
                    ],
                },
            ],
        },
    ).json()
    small = c.post(f"/connect/v1/flows/{flow['id']}/test", json={"triggerData": {"size": 1}}).json()
    assert small["status"] == "succeeded" and small["mode"] == "test"
    steps = c.get(f"/connect/v1/flows/{flow['id']}/executions/{small['id']}/steps").json()["data"]
    assert [(s["stepId"], s["status"]) for s in steps] == [("only_big", "stopped")]
    mid = c.post(f"/connect/v1/flows/{flow['id']}/test", json={"triggerData": {"size": 5}}).json()
    assert mid["status"] == "waiting"  # parked at the delay, in the database
    (got,) = receiver.wait_for(1, timeout=20)
    assert got.json == {"n": 5}
    (done,) = [e for e in _wait_run(c, flow["id"], count=2) if e["id"] == mid["id"]]
    steps = c.get(f"/connect/v1/flows/{flow['id']}/executions/{done['id']}/steps").json()["data"]
    assert [(s["path"], s["stepId"], s["status"]) for s in steps] == [
        ("0", "only_big", "succeeded"),
        ("1", "pause", "succeeded"),
        ("2", "which", "succeeded"),
        ("2.else.0", "mid", "succeeded"),
    ]
    assert steps[2]["output"] == {"taken": "else"}


def test_template_errors_retries_and_replay(server: Any, receiver: Receiver) -> None:
    c = server.client()
    broken = c.post(
        "/connect/v1/flows",
        json={
            "name": "typo",
            "steps": [
                {"id": "tell", "type": "http.request", "url": receiver.url, "body": {"t": "{{ trigger.event.titel }}"}}
            ],
        },
    ).json()
    run = c.post(f"/connect/v1/flows/{broken['id']}/test", json={"triggerData": {"event": {"title": "x"}}}).json()
    assert run["status"] == "failed" and run["errorStep"] == "0"
    assert "steps[0].body" in run["error"] and "titel" in run["error"]

    receiver.queue(("status", 503), ("status", 503))
    flaky = c.post("/connect/v1/flows", json={"name": "flaky", "steps": [_post_step(receiver.url, retries=3)]}).json()
    first = c.post(
        f"/connect/v1/flows/{flaky['id']}/test", json={"triggerData": {"event": {"title": "A", "start_time": "s"}}}
    )
    assert first.status_code == 200
    (ok,) = _wait_run(c, flaky["id"])
    steps = c.get(f"/connect/v1/flows/{flaky['id']}/executions/{ok['id']}/steps").json()["data"]
    assert steps[0]["attempts"] == 3 and steps[0]["status"] == "succeeded"
    keys = {r.headers["Idempotency-Key"] for r in receiver.requests}
    assert keys == {f"{ok['id']}/0"}  # every attempt carried the same key

    replay = c.post(f"/connect/v1/flows/{flaky['id']}/executions/{ok['id']}/replay")
    assert replay.status_code == 202 and replay.json()["mode"] == "replay" and replay.json()["replayOf"] == ok["id"]
    runs_now = _wait_run(c, flaky["id"], count=2)
    again = next(e for e in runs_now if e["mode"] == "replay")
    assert again["triggerData"] == ok["triggerData"]
    assert receiver.requests[-1].json["title"] == "A"
    failed = c.get("/connect/v1/task-history", params={"status": "failed"}).json()
    assert [e["id"] for e in failed["data"]] == [run["id"]]


def test_permissions_and_agent_keys_own_their_flows(server: Any, receiver: Receiver) -> None:
    c = server.client()
    agent, cal = _calendar(c)
    other, other_cal = _calendar(c)
    no_flows = c.post("/v1/keys", json={"agent_id": agent["id"], "permissions": ["flows.view"]}).json()["secret"]
    r = server.client(no_flows).post(
        "/connect/v1/flows", json={"name": "x", "steps": [{"id": "f", "type": "filter", "condition": "1"}]}
    )
    assert r.status_code == 403 and "flows.write" in r.json()["error"]["message"]
    writer = c.post(
        "/v1/keys",
        json={
            "agent_id": agent["id"],
            "permissions": ["flows.view", "flows.write", "triggers.write", "task_history.view", "actions.execute"],
        },
    ).json()["secret"]
    a = server.client(writer)
    flow = a.post(
        "/connect/v1/flows",
        json={
            "name": "mine",
            "trigger": {"providerType": "chronary", "triggerName": "event.created", "kind": "event"},
            "steps": [_post_step(receiver.url)],
        },
    )
    assert flow.status_code == 201, flow.text
    c.post(
        f"/v1/calendars/{other_cal['id']}/events",
        json={"title": "Not mine", "start_time": "2026-12-20T09:00:00Z", "end_time": "2026-12-20T10:00:00Z"},
    )
    c.post(
        f"/v1/calendars/{cal['id']}/events",
        json={"title": "Mine", "start_time": "2026-12-20T09:00:00Z", "end_time": "2026-12-20T10:00:00Z"},
    )
    (got,) = receiver.wait_for(1, timeout=20)
    assert got.json["title"] == "Mine"
    assert a.get("/connect/v1/flows").json()["total"] == 1
    org_flow = c.post(
        "/connect/v1/flows", json={"name": "org", "steps": [{"id": "f", "type": "filter", "condition": "1"}]}
    ).json()
    assert a.get(f"/connect/v1/flows/{org_flow['id']}").status_code == 404
    assert {f["name"] for f in c.get("/connect/v1/flows").json()["data"]} == {"mine", "org"}
