"""kill -9 of the real server mid-run: the run resumes after a restart, completed steps are not
run again, and the one step that was in flight is repeated with the same Idempotency-Key, so a
receiver that deduplicates on it applies the side effect once. A run parked at a `delay` when the
process dies resumes at its instant and runs the remaining steps exactly once.

`chronary serve` runs as a subprocess (workers on) on a temp data dir; the receivers are local
HTTP servers in this process. Everything waits by polling the API or the receivers (generous
deadlines, no fixed sleeps), so a loaded 2-core CI machine only makes it slower."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.serveproc import ServerProcess, free_port

DEADLINE = 90.0  # seconds any one awaited state may take (far above the ~1 s it takes when quiet)
DELAY_SECONDS = 10  # the delay step's wait: well above a restart (~1 s quiet, a few s loaded)


@dataclass
class Hit:
    at: float  # time.time() when the request arrived
    headers: dict[str, str]
    body: Any

    @property
    def key(self) -> str:
        return self.headers["Idempotency-Key"]


@dataclass
class Sink:
    """A local HTTP receiver that counts requests and applies each Idempotency-Key's effect once.

    With `stall_first`, the first request is applied and then held without an answer (until
    `close()`): the sender is mid-request when it is killed, exactly the case the key is for."""

    stall_first: bool = False
    hits: list[Hit] = field(default_factory=list)
    applied: dict[str, Any] = field(default_factory=dict)  # Idempotency-Key -> the body applied
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _release: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> Sink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hit = Hit(time.time(), dict(self.headers.items()), json.loads(raw) if raw else None)
                with sink._cond:
                    sink.hits.append(hit)
                    key = hit.headers.get("Idempotency-Key", f"none:{len(sink.hits)}")
                    duplicate = key in sink.applied
                    if not duplicate:
                        sink.applied[key] = hit.body  # the side effect, once per key
                    stall = sink.stall_first and len(sink.hits) == 1
                    sink._cond.notify_all()
                if stall:
                    sink._release.wait(600)
                answer = json.dumps({"applied": not duplicate, "duplicate": duplicate}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the sender was killed while we stalled

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def wait_for(self, count: int, timeout: float = DEADLINE) -> list[Hit]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.hits) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"receiver got {len(self.hits)} request(s), wanted {count}")
                self._cond.wait(left)
            return list(self.hits)

    def close(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def sinks() -> Iterator[Callable[..., Sink]]:
    made: list[Sink] = []

    def factory(**kw: Any) -> Sink:
        sink = Sink(**kw).start()
        made.append(sink)
        return sink

    yield factory
    for sink in made:
        sink.close()


@pytest.fixture
def serve(data_dir: Path) -> Iterator[Callable[[], ServerProcess]]:
    """serve() -> `chronary serve` with workers on the test's data dir, on a new free port."""
    started: list[ServerProcess] = []

    def factory() -> ServerProcess:
        port = free_port()
        args = ["serve", "--port", str(port), "--data-dir", str(data_dir), "--workers", "true"]
        # a stalled step must still be in flight when it is killed, however slow the machine
        server = ServerProcess(args, port, env={"CHRONARY_CONNECT_PROXY_TIMEOUT_SECONDS": "600"})
        started.append(server)
        return server.start(timeout=DEADLINE)

    yield factory
    for server in started:
        server.stop()


def kill9(server: ServerProcess) -> None:
    """SIGKILL (kill -9) the server's whole process group: no shutdown code runs at all."""
    assert server.proc is not None and server.proc.poll() is None, server.output
    os.killpg(server.proc.pid, signal.SIGKILL)
    assert server.proc.wait(timeout=30) == -signal.SIGKILL


def poll(check: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what}: not reached within {timeout} s (last: {last!r})")


def execution(c: httpx.Client, flow_id: str, execution_id: str) -> dict[str, Any]:
    r = c.get(f"/connect/v1/flows/{flow_id}/executions/{execution_id}")
    assert r.status_code == 200, r.text
    return r.json()


def steps_of(c: httpx.Client, flow_id: str, execution_id: str) -> list[dict[str, Any]]:
    r = c.get(f"/connect/v1/flows/{flow_id}/executions/{execution_id}/steps")
    assert r.status_code == 200, r.text
    return r.json()["data"]


def finished(c: httpx.Client, flow_id: str, execution_id: str) -> dict[str, Any]:
    """The execution once it has finished (any final status; the caller asserts which)."""
    return poll(
        lambda: (e := execution(c, flow_id, execution_id))["status"] in ("succeeded", "failed", "cancelled") and e,
        f"execution {execution_id} finished",
        timeout=DEADLINE + DELAY_SECONDS,
    )


def http_step(step_id: str, url: str, body: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "http.request", "url": url, "body": body}


def test_kill9_mid_step_resumes_without_a_duplicate_side_effect(serve: Any, sinks: Any) -> None:
    a, b, c_sink = sinks(), sinks(stall_first=True), sinks()
    first = serve()
    key = first.first_key()
    assert key, first.output
    with first.client(key) as c:
        made = c.post(
            "/connect/v1/flows",
            json={
                "name": "charge once",
                "steps": [
                    http_step("note", a.url, {"order": "{{ trigger.order }}"}),
                    http_step("charge", b.url, {"order": "{{ trigger.order }}", "cents": "{{ trigger.cents }}"}),
                    http_step(
                        "receipt",
                        c_sink.url,
                        {"order": "{{ trigger.order }}", "charged": "{{ steps.charge.output.body.applied }}"},
                    ),
                ],
            },
        )
        assert made.status_code == 201, made.text
        flow_id = made.json()["id"]
        queued = c.post(
            f"/connect/v1/flows/{flow_id}/test", json={"triggerData": {"order": "o-17", "cents": 4200}, "wait": False}
        )
        assert queued.status_code == 200, queued.text
        exe_id = queued.json()["id"]
        assert queued.json()["mode"] == "test"

        b.wait_for(1)  # the worker is inside step 2's request, which B applied but does not answer
        mid = steps_of(c, flow_id, exe_id)  # step 2's record was committed before its request
        assert [(s["path"], s["stepId"], s["status"], s["attempts"]) for s in mid] == [
            ("0", "note", "succeeded", 1),
            ("1", "charge", "running", 1),
        ]
        assert execution(c, flow_id, exe_id)["status"] == "running"
    kill9(first)
    assert len(a.hits) == 1 and len(b.hits) == 1 and c_sink.hits == []

    second = serve()  # same data dir: the worker takes the killed process's run back
    with second.client(key) as c:
        done = finished(c, flow_id, exe_id)
        assert done["status"] == "succeeded", (done, second.output)
        steps = steps_of(c, flow_id, exe_id)
        assert [(s["path"], s["stepId"], s["status"], s["attempts"]) for s in steps] == [
            ("0", "note", "succeeded", 1),  # completed before the kill: not run again
            ("1", "charge", "succeeded", 2),  # in flight at the kill: repeated once
            ("2", "receipt", "succeeded", 1),
        ]
        assert steps[1]["output"]["body"] == {"applied": False, "duplicate": True}  # B recognised the repeat
    second.stop()  # nothing can arrive after this: the counts below are final

    assert len(a.hits) == 1
    assert [h.body for h in a.hits] == [{"order": "o-17"}]
    assert len(b.hits) == 2
    assert {h.key for h in b.hits} == {f"{exe_id}/1"}  # both attempts carried the same key
    assert b.applied == {f"{exe_id}/1": {"order": "o-17", "cents": 4200}}  # the side effect, once
    assert len(c_sink.hits) == 1
    # the last step saw step 2's output from its repeated attempt, read back after the restart
    assert c_sink.hits[0].body == {"order": "o-17", "charged": False}
    assert c_sink.hits[0].key == f"{exe_id}/2"


def test_kill9_while_parked_at_a_delay_resumes_on_time_and_runs_the_rest_once(serve: Any, sinks: Any) -> None:
    before, after = sinks(), sinks()
    first = serve()
    key = first.first_key()
    assert key, first.output
    with first.client(key) as c:
        agent = c.post("/v1/agents", json={"name": "Ada", "timezone": "UTC"}).json()
        cal = c.post(f"/v1/agents/{agent['id']}/calendars", json={"name": "Work", "timezone": "UTC"}).json()
        made = c.post(
            "/connect/v1/flows",
            json={
                "name": "follow up later",
                "trigger": {
                    "providerType": "chronary",
                    "triggerName": "event.created",
                    "kind": "event",
                    "config": {"calendarId": cal["id"]},
                },
                "steps": [
                    http_step("now", before.url, {"title": "{{ trigger.event.title }}"}),
                    {"id": "later", "type": "delay", "seconds": DELAY_SECONDS},
                    http_step("then", after.url, {"title": "{{ trigger.event.title }}"}),
                ],
            },
        )
        assert made.status_code == 201, made.text
        flow_id = made.json()["id"]
        event = c.post(
            f"/v1/calendars/{cal['id']}/events",
            json={"title": "Client call", "start_time": "2030-01-07T09:00:00Z", "end_time": "2030-01-07T10:00:00Z"},
        )
        assert event.status_code == 201, event.text

        def parked() -> dict[str, Any] | None:
            found = c.get(f"/connect/v1/flows/{flow_id}/executions").json()["data"]
            return next((e for e in found if e["status"] == "waiting"), None)

        exe_id = poll(parked, "the run parked at the delay")["id"]
        waiting = steps_of(c, flow_id, exe_id)
        assert [(s["stepId"], s["status"]) for s in waiting] == [("now", "succeeded"), ("later", "waiting")]
        resume_ts = waiting[1]["output"]["resume_ts"]
        assert len(before.hits) == 1
    kill9(first)
    assert after.hits == []

    second = serve()
    restarted = time.time()
    with second.client(key) as c:
        (hit,) = after.wait_for(1, timeout=DEADLINE + DELAY_SECONDS)
        # not before its instant (the restart came well before it, on any but a frozen machine),
        # and soon after it (or after the restart, on a machine slow enough to restart late)
        assert hit.at >= resume_ts, (hit.at, resume_ts)
        assert hit.at <= max(resume_ts, restarted) + 30, (hit.at, resume_ts, restarted)
        done = finished(c, flow_id, exe_id)
        assert done["status"] == "succeeded", (done, second.output)
        steps = steps_of(c, flow_id, exe_id)
        assert [(s["path"], s["stepId"], s["status"]) for s in steps] == [
            ("0", "now", "succeeded"),
            ("1", "later", "succeeded"),
            ("2", "then", "succeeded"),
        ]
        assert steps[0]["attempts"] == 1 and steps[2]["attempts"] == 1
        assert len(c.get(f"/connect/v1/flows/{flow_id}/executions").json()["data"]) == 1  # no second run
    second.stop()

    assert [h.body for h in before.hits] == [{"title": "Client call"}]  # not re-run after the restart
    assert [h.body for h in after.hits] == [{"title": "Client call"}]  # exactly once
    assert after.hits[0].key == f"{exe_id}/2"
