"""Automation: trigger-to-first-step latency and executions per second against a live server.

Not a test: it prints numbers. By default it starts `python -m chronary serve` (workers on) on a
free port with a throw-away data dir, and a local HTTP receiver in this process that the flows'
`http.request` steps post to (it answers 200 at once and notes when each request arrived).

- trigger latency: a flow with an `event.created` trigger and one `http.request` step; events are
  created one at a time, and each is timed from the create's HTTP response to the receiver
  getting the step's request (p50/p95/p99). Negative values would mean the step's request
  arrived before the create's response did (the worker wakes on the commit).
- executions/s: a 2-step flow (`filter` + `http.request`) is queued many times with
  `POST /connect/v1/flows/{id}/test` {wait: false} from a few concurrent clients; completed
  executions per second = runs / (last `finishedAt` - first `createdAt`), plus each run's
  queued-to-finished time (which includes the wait behind the backlog).

    .venv/bin/python bench/automation_bench.py                          # 200 events, 1,000 runs
    .venv/bin/python bench/automation_bench.py --events 50 --runs 200   # quicker
    .venv/bin/python bench/automation_bench.py --flow-concurrency 8     # more runs of the flow at once
    .venv/bin/python bench/automation_bench.py --url http://127.0.0.1:8765 --key chr_sk_…   # existing server
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from api_bench import target  # --url/--key, else `chronary serve` on a temp data dir (workers on: the default)

WAIT_SECONDS = 120.0  # longest wait for one step's request, or for the queued runs to finish


@dataclass
class Receiver:
    """Answers every POST 200 at once; notes the perf_counter time each body's `id` arrived."""

    arrived: dict[str, float] = field(default_factory=dict)
    count: int = 0
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                at = time.perf_counter()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")
                try:
                    ident = str(json.loads(raw).get("id"))
                except (ValueError, AttributeError):
                    ident = "?"
                with receiver._cond:
                    receiver.arrived.setdefault(ident, at)
                    receiver.count += 1
                    receiver._cond.notify_all()

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/step"

    def wait_id(self, ident: str, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while ident not in self.arrived:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)
            return self.arrived[ident]

    def wait_count(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.count < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values) or [0.0]
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


@dataclass
class Row:
    name: str
    count: int
    seconds: float
    rate: float | None
    latencies_ms: list[float]
    errors: int

    def line(self) -> str:
        rate = f"{self.rate:>9.1f}" if self.rate is not None else f"{'-':>9}"
        lat = self.latencies_ms
        cells = [f"{pct(lat, q):>9.1f}" if lat else f"{'-':>9}" for q in (0.50, 0.95, 0.99)]
        return f"{self.name:<31} {self.count:>6} {self.seconds:>8.2f} {rate} {' '.join(cells)} {self.errors:>6}"


HEADER = f"{'measure':<31} {'count':>6} {'seconds':>8} {'per s':>9} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'errors':>6}"


def trigger_latency(c: httpx.Client, receiver: Receiver, events: int, warmup: int) -> Row:
    agent = c.post("/v1/agents", json={"name": "bench", "timezone": "UTC"}).json()
    cal = c.post(f"/v1/agents/{agent['id']}/calendars", json={"name": "bench", "timezone": "UTC"}).json()
    flow = c.post(
        "/connect/v1/flows",
        json={
            "name": "bench: event created -> http",
            "trigger": {
                "providerType": "chronary",
                "triggerName": "event.created",
                "kind": "event",
                "config": {"calendarId": cal["id"]},
            },
            "steps": [{"id": "tell", "type": "http.request", "url": receiver.url, "body": {"id": "{{ trigger.event.id }}"}}],
        },
    )
    if flow.status_code != 201:
        raise SystemExit(f"could not create the trigger flow: {flow.status_code} {flow.text}")
    latencies: list[float] = []
    errors = 0
    day0 = 1_900_000_000  # 2030-03-17
    t0 = time.perf_counter()
    for i in range(warmup + events):
        start = day0 + i * 3600
        r = c.post(
            f"/v1/calendars/{cal['id']}/events",
            json={
                "title": f"bench {i}",
                "start_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
                "end_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 1800)),
            },
        )
        answered = time.perf_counter()
        if r.status_code != 201:
            errors += 1
            continue
        arrived = receiver.wait_id(r.json()["id"], WAIT_SECONDS)
        if arrived is None:
            errors += 1
        elif i >= warmup:
            latencies.append((arrived - answered) * 1000)
        if i + 1 == warmup:
            t0 = time.perf_counter()
    return Row("trigger -> first step request", events, time.perf_counter() - t0, None, latencies, errors)


def _stamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def executions_per_second(
    base: str, key: str, c: httpx.Client, receiver: Receiver, runs: int, clients: int, concurrency: int | None
) -> list[Row]:
    payload: dict[str, Any] = {
        "name": "bench: filter + http",
        "steps": [
            {"id": "known", "type": "filter", "condition": "trigger.n >= 0"},
            {"id": "post", "type": "http.request", "url": receiver.url, "body": {"id": "run-{{ trigger.n }}"}},
        ],
    }
    if concurrency is not None:
        payload["concurrency"] = concurrency
    flow = c.post("/connect/v1/flows", json=payload)
    if flow.status_code != 201:
        raise SystemExit(f"could not create the 2-step flow: {flow.status_code} {flow.text}")
    flow_id = flow.json()["id"]
    already = receiver.count
    errors = [0] * clients
    posts: list[list[float]] = [[] for _ in range(clients)]

    def queue(w: int) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            for n in range(w, runs, clients):
                sent = time.perf_counter()
                r = client.post(f"/connect/v1/flows/{flow_id}/test", json={"triggerData": {"n": n}, "wait": False})
                posts[w].append((time.perf_counter() - sent) * 1000)
                if r.status_code != 200 or r.json()["status"] not in ("queued", "running", "succeeded"):
                    errors[w] += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(queue, range(clients)))
    queued_s = time.perf_counter() - t0
    if not receiver.wait_count(already + runs - sum(errors), WAIT_SECONDS):
        print(f"only {receiver.count - already} of {runs} runs reached the receiver", file=sys.stderr)

    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:  # the run is marked succeeded just after its request
        done = c.get(f"/connect/v1/flows/{flow_id}/executions", params={"status": "succeeded", "limit": 1}).json()
        if done["total"] >= runs - sum(errors):
            break
        time.sleep(0.05)
    for offset in range(0, runs, 200):
        page = c.get(f"/connect/v1/flows/{flow_id}/executions", params={"limit": 200, "offset": offset}).json()
        found.extend(page["data"])
    succeeded = [e for e in found if e["status"] == "succeeded"]
    failures = sum(errors) + (runs - len(succeeded))
    queued = Row(f"queue test runs ({clients} clients)", runs, queued_s, runs / queued_s, [x for p in posts for x in p], 0)
    if not succeeded:
        queued.errors = failures
        return [queued]
    first = min(_stamp(e["createdAt"]) for e in succeeded)
    last = max(_stamp(e["finishedAt"]) for e in succeeded)
    span = max(last - first, 1e-3)
    waits = [(_stamp(e["finishedAt"]) - _stamp(e["createdAt"])) * 1000 for e in succeeded]
    queued.errors = sum(errors)
    return [
        queued,
        Row("executions (queued -> finished)", len(succeeded), span, len(succeeded) / span, waits, failures),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200, help="events created for the latency (default 200)")
    parser.add_argument("--warmup", type=int, default=5, help="events created first and not counted (default 5)")
    parser.add_argument("--runs", type=int, default=1000, help="test runs queued for executions/s (default 1000)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients queueing runs (default 4)")
    parser.add_argument("--flow-concurrency", type=int, help="the 2-step flow's concurrency (default: the server's)")
    parser.add_argument("--url", help="use this running server (workers on) instead of starting one")
    parser.add_argument("--key", help="org key for --url")
    args = parser.parse_args()
    if args.url and not args.key:
        parser.error("--url needs --key")

    receiver = Receiver().start()
    try:
        with (
            target(args.url, args.key) as (base, key),
            httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c,
        ):
            rows = [trigger_latency(c, receiver, args.events, args.warmup)]
            rows += executions_per_second(base, key, c, receiver, args.runs, args.clients, args.flow_concurrency)
    finally:
        receiver.close()

    print(f"Chronary automation bench — {base} — python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(HEADER)
    print("-" * len(HEADER))
    for row in rows:
        print(row.line())
    if any(row.errors for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
