"""Webhook delivery throughput, and what draining a backlog costs the API (issue 20, item 4).

Not a test: it prints numbers. It starts `python -m chronary serve` (bench/api_bench.py's
`local_server`: its own process, throw-away data dir) and, in a second process, a fast local
receiver: a bare asyncio HTTP/1.1 server on 127.0.0.1 (keep-alive, answers 200 "ok" at once) that
checks every request's signature with the endpoint's secret and counts distinct payload ids.
One webhook endpoint ("event.created") points at it.

1. Throughput: the endpoint is paused, N events are created over the API (4 clients; the
   deliveries are fanned out as pending), then the endpoint is resumed and the clock runs until
   the receiver has N distinct payloads. deliveries/s = N / that time (claim, sign, POST, record:
   everything after fan-out). Then every delivery must show `succeeded` in the delivery log.
2. Backlog vs API latency, in R rounds (default 3, pooled so the p99 rests on enough samples):
   paused again, a backlog of B events is created; a probe sends `GET /health` at a steady
   rate (default 300/s, one keep-alive raw socket, in this process) for a few seconds with no
   backlog moving ("idle"), then the endpoint is resumed and the same probe runs until the B
   deliveries have arrived ("draining"). It prints p50/p99/max per window and pooled, and the
   ratio pooled draining p99 / pooled idle p99 (the target is <= 2).

    .venv/bin/python bench/webhook_bench.py                       # N=2000, B=1000, 3 rounds
    .venv/bin/python bench/webhook_bench.py --deliveries 500 --rounds 1
    PYTHONPATH=/path/to/old/checkout .venv/bin/python bench/webhook_bench.py   # that code's figures
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_bench import target  # noqa: E402

DAY0 = 1_900_000_000  # 2030-03-17: events spread ~6 a day


# --- the receiver (runs in its own process: `webhook_bench.py --receiver`) ------------------------


class _Receiver(asyncio.Protocol):
    """Minimal HTTP/1.1: POST = a webhook (verify, count), GET /count = stats, PUT /secret."""

    state: dict[str, object] = {"secret": b"", "ids": set(), "bad": 0, "first": None, "last": None, "posts": 0}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.buf[:end].decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            length = int(headers.get("content-length", "0"))
            if len(self.buf) < end + 4 + length:
                return
            body, self.buf = self.buf[end + 4 : end + 4 + length], self.buf[end + 4 + length :]
            out = self._handle(lines[0].split(" ")[0], headers, body)
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(out), out)
            )
            if headers.get("connection", "").lower() == "close":
                self.transport.close()
                return

    def _handle(self, method: str, headers: dict[str, str], body: bytes) -> bytes:
        s = self.state
        if method == "PUT":
            s["secret"] = body
            return b"ok"
        if method == "GET":
            ids = s["ids"]
            assert isinstance(ids, set)
            info = {"ids": len(ids), "posts": s["posts"], "bad": s["bad"], "first": s["first"], "last": s["last"]}
            return json.dumps(info).encode()
        now = time.monotonic()  # CLOCK_MONOTONIC: comparable with the bench process's clock
        s["first"] = s["first"] or now
        s["last"] = now
        s["posts"] = int(s["posts"]) + 1  # type: ignore[call-overload]
        ts, sig = headers.get("chronary-webhook-timestamp", ""), headers.get("chronary-webhook-signature", "")
        secret = s["secret"]
        assert isinstance(secret, bytes)
        expected = "v1=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sig):
            s["bad"] = int(s["bad"]) + 1  # type: ignore[call-overload]
        ids = s["ids"]
        assert isinstance(ids, set)
        ids.add(headers.get("chronary-webhook-id"))
        return b"ok"


def serve_receiver() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Receiver, "127.0.0.1", 0, backlog=512)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())


class Receiver:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--receiver"], stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        assert self.proc.stdout is not None
        self.base = f"http://127.0.0.1:{int(self.proc.stdout.readline())}"
        self.client = httpx.Client(base_url=self.base, timeout=10)

    @property
    def url(self) -> str:
        return f"{self.base}/hook"

    def set_secret(self, secret: str) -> None:
        self.client.put("/secret", content=secret.encode())

    def stats(self) -> dict[str, float]:
        return dict(self.client.get("/count").json())

    def wait_for(self, count: int, timeout: float) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.stats()
            if got["ids"] >= count:
                return got
            if time.monotonic() > deadline:
                raise SystemExit(f"receiver got {got['ids']} of {count} deliveries in {timeout:g} s")
            time.sleep(0.02)

    def close(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(10)


# --- the /health probe ----------------------------------------------------------------------------


class Probe:
    """GET /health at a fixed rate over one keep-alive socket; latencies in ms per window."""

    def __init__(self, base: str, rate: float) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request = f"GET /health HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
        self.interval = 1.0 / rate
        self.samples: list[float] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _one(self) -> None:
        t0 = time.perf_counter()
        self.sock.sendall(self.request)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += self.sock.recv(65536)
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            rest += self.sock.recv(65536)
        self.samples.append((time.perf_counter() - t0) * 1000)
        if not head.startswith(b"HTTP/1.1 200"):
            self.errors += 1

    def _loop(self) -> None:
        next_at = time.perf_counter()
        while not self._stop.is_set():
            self._one()
            next_at += self.interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                next_at = time.perf_counter()  # fell behind: don't burst to catch up

    def start(self) -> None:
        self.samples = []
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> list[float]:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        return self.samples

    def close(self) -> None:
        self.sock.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values) or [0.0]
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# --- the run --------------------------------------------------------------------------------------


def iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def create_events(base: str, key: str, calendar: str, first: int, count: int, concurrency: int = 4) -> None:
    def worker(w: int) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
            for i in range(first + w, first + count, concurrency):
                start = DAY0 + (i // 6) * 86400 + (i % 6) * 3600
                body = {"title": f"hook {i}", "start_time": iso(start), "end_time": iso(start + 1800)}
                r = c.post(f"/v1/calendars/{calendar}/events", json=body)
                if r.status_code != 201:
                    raise SystemExit(f"event create failed: {r.status_code} {r.text}")

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(concurrency)))


def count(c: httpx.Client, webhook: str, status: str) -> int:
    r = c.get(f"/v1/webhooks/{webhook}/deliveries", params={"status": status, "limit": 1})
    return int(r.json()["total"])


def wait_count(c: httpx.Client, webhook: str, status: str, wanted: int, timeout: float = 120) -> None:
    """Wait until the delivery log has `wanted` deliveries in `status` (fan-out runs after each
    commit; the log is written once per batch after the requests)."""
    deadline = time.monotonic() + timeout
    while (got := count(c, webhook, status)) < wanted:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {got} of {wanted} deliveries are {status}")
        time.sleep(0.05)


def set_status(c: httpx.Client, webhook: str, status: str) -> None:
    r = c.patch(f"/v1/webhooks/{webhook}", json={"status": status})
    assert r.status_code == 200, r.text


def backlog_round(
    c: httpx.Client, base: str, key: str, calendar: str, webhook: str, receiver: Receiver, first: int, args: Any
) -> tuple[list[float], list[float], float]:
    """Pause, queue `args.backlog` deliveries, probe idle, resume and probe while they drain."""
    set_status(c, webhook, "paused")
    create_events(base, key, calendar, first, args.backlog)
    wait_count(c, webhook, "pending", args.backlog)
    time.sleep(1.0)  # let the creation's after-effects (fan-out, checkpoints) settle
    probe = Probe(base, args.rate)
    probe.start()
    end = time.monotonic() + args.idle_seconds
    while time.monotonic() < end:  # the same receiver polling as while draining
        receiver.stats()
        time.sleep(0.02)
    idle = probe.stop()
    probe.start()
    drain_start = time.monotonic()
    set_status(c, webhook, "active")
    got = receiver.wait_for(first + args.backlog, args.timeout)
    draining = probe.stop()
    probe.close()
    if got["bad"] or probe.errors:
        raise SystemExit(f"{got['bad']} bad signatures, {probe.errors} probe errors")
    return idle, draining, args.backlog / (got["last"] - drain_start)


def row(name: str, values: list[float]) -> str:
    return f"{name:<26} {len(values):>8} {statistics.median(values):>8.2f} {pct(values, 0.99):>8.2f} {max(values):>8.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=2000, help="phase 1: deliveries to drain (default 2000)")
    parser.add_argument("--backlog", type=int, default=1000, help="phase 2: backlog size (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="phase 2: idle + drain rounds (default 3)")
    parser.add_argument("--rate", type=float, default=300.0, help="phase 2: /health probes per second (default 300)")
    parser.add_argument("--idle-seconds", type=float, default=3.0, help="phase 2: idle probe window (default 3)")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up on a phase after this many seconds")
    parser.add_argument("--receiver", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        serve_receiver()
        return

    receiver = Receiver()
    rounds = []
    try:
        with target(None, None) as (base, key):
            auth = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=base, headers=auth, timeout=60) as c:
                agent = c.post("/v1/agents", json={"name": "hooks"}).json()
                cal = c.post(f"/v1/agents/{agent['id']}/calendars", json={"name": "hooks", "timezone": "UTC"}).json()
                wh = c.post("/v1/webhooks", json={"url": receiver.url, "events": ["event.created"]}).json()
                receiver.set_secret(wh["secret"])

                # phase 1: throughput
                set_status(c, wh["id"], "paused")
                t0 = time.monotonic()
                create_events(base, key, cal["id"], 0, args.deliveries)
                created = time.monotonic() - t0
                wait_count(c, wh["id"], "pending", args.deliveries)
                started = time.monotonic()
                set_status(c, wh["id"], "active")
                got = receiver.wait_for(args.deliveries, args.timeout)
                elapsed = got["last"] - started
                wait_count(c, wh["id"], "succeeded", args.deliveries, 30)  # and the log says so

                # phase 2: backlog vs /health, in rounds
                for n in range(args.rounds):
                    first = args.deliveries + n * args.backlog
                    rounds.append(backlog_round(c, base, key, cal["id"], wh["id"], receiver, first, args))
    finally:
        receiver.close()

    print(f"Chronary webhook bench — python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"phase 1: {args.deliveries} events created in {created:.1f} s ({args.deliveries / created:.0f}/s, 4 clients)")
    print(f"phase 1: {args.deliveries} deliveries in {elapsed:.2f} s = {args.deliveries / elapsed:.0f} deliveries/s")
    print(f"         receiver: {int(got['posts'])} POSTs, {int(got['ids'])} distinct ids, {int(got['bad'])} bad signatures")
    print(f"phase 2: {args.rounds} rounds, a backlog of {args.backlog} each, /health probed at {args.rate:g}/s")
    print(f"{'GET /health':<26} {'samples':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for n, (idle, draining, rate) in enumerate(rounds, 1):
        print(row(f"round {n} idle", idle))
        print(row(f"round {n} draining ({rate:.0f}/s)", draining))
    all_idle = [x for r in rounds for x in r[0]]
    all_draining = [x for r in rounds for x in r[1]]
    print(row("all rounds idle", all_idle))
    print(row("all rounds draining", all_draining))
    ratio = pct(all_draining, 0.99) / pct(all_idle, 0.99)
    print(f"p99 ratio draining/idle (all rounds): {ratio:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
