"""Event-create and event-list throughput and latency against a live Chronary server.

Not a test: it prints numbers. By default it starts `python -m chronary serve` on a free port
with a throw-away data dir (so the server has its own process and GIL, like in production) and
drives it with a few concurrent httpx clients over real sockets. Every run is bounded by the
request counts given.

    .venv/bin/python bench/api_bench.py                    # 2,000 creates, 2,000 lists, 4 clients
    .venv/bin/python bench/api_bench.py --creates 5000 --concurrency 8
    .venv/bin/python bench/api_bench.py --url http://127.0.0.1:8765 --key chr_sk_…   # existing server
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

KEY_RE = re.compile(r"chr_sk_[A-Za-z0-9_-]{20,}")


@dataclass
class Result:
    name: str
    requests: int
    concurrency: int
    seconds: float
    latencies_ms: list[float]
    errors: int

    def row(self) -> str:
        lat = sorted(self.latencies_ms) or [0.0]
        p50 = statistics.median(lat)
        p99 = lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))]
        rate = self.requests / self.seconds if self.seconds else 0.0
        return (
            f"{self.name:<22} {self.requests:>8} {self.concurrency:>5} {self.seconds:>8.2f} {rate:>9.0f} "
            f"{p50:>8.2f} {p99:>8.2f} {self.errors:>6}"
        )


HEADER = (
    f"{'operation':<22} {'requests':>8} {'conc':>5} {'seconds':>8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_server() -> Iterator[tuple[str, str]]:
    """A fresh `chronary serve` subprocess on a temp data dir; yields (base_url, org key)."""
    with tempfile.TemporaryDirectory(prefix="chronary-bench-") as data:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONARY_")}
        env.update(PYTHONUNBUFFERED="1", CHRONARY_LOG_LEVEL="warning")
        proc = subprocess.Popen(
            [sys.executable, "-m", "chronary", "serve", "--port", str(port), "--data-dir", data],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=data,  # not the checkout: `-m` puts the cwd first on sys.path, ahead of a PYTHONPATH "before" tree
        )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
        reader.start()
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("server did not start:\n" + "".join(lines))
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            key = KEY_RE.search("".join(lines))
            if key is None:
                raise SystemExit("no org key printed:\n" + "".join(lines))
            yield base, key.group(0)
        finally:
            stop_server(proc)


def stop_server(proc: subprocess.Popen[str]) -> None:
    """SIGTERM to the server's process group, then SIGKILL if it is still there after 15 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def target(url: str | None, key: str | None) -> Iterator[tuple[str, str]]:
    """(base_url, org key): the running server given with --url/--key, else a fresh local one."""
    if url:
        yield url.rstrip("/"), key or ""
    else:
        with local_server() as pair:
            yield pair


def run(
    name: str,
    total: int,
    concurrency: int,
    base: str,
    key: str,
    request: Callable[[httpx.Client, int], httpx.Response],
    ok: int,
) -> Result:
    """`total` requests split over `concurrency` threads, each with its own keep-alive client."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency

    def worker(w: int) -> None:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            for i in range(w, total, concurrency):
                t0 = time.perf_counter()
                r = request(client, i)
                latencies[w].append((time.perf_counter() - t0) * 1000)
                if r.status_code != ok:
                    errors[w] += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(concurrency)))
    elapsed = time.perf_counter() - t0
    return Result(name, total, concurrency, elapsed, [x for per in latencies for x in per], sum(errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creates", type=int, default=2000, help="event-create requests (default 2000)")
    parser.add_argument("--lists", type=int, default=2000, help="event-list requests (default 2000)")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument("--url", help="use this running server instead of starting one")
    parser.add_argument("--key", help="org key for --url")
    args = parser.parse_args()
    if args.url and not args.key:
        parser.error("--url needs --key")

    with target(args.url, args.key) as (base, key):
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
            agent = c.post("/v1/agents", json={"name": "bench"}).json()
            cal = c.post(f"/v1/agents/{agent['id']}/calendars", json={"name": "bench", "timezone": "UTC"}).json()
        events = f"/v1/calendars/{cal['id']}/events"
        day0 = 1_900_000_000  # 2030-03-17: spread events over ~a year, 6 a day

        def iso(ts: int) -> str:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))

        def create(client: httpx.Client, i: int) -> httpx.Response:
            start = day0 + (i // 6) * 86400 + (i % 6) * 3600
            return client.post(
                events,
                json={"title": f"bench {i}", "start_time": iso(start), "end_time": iso(start + 1800), "metadata": {"i": i}},
            )

        def list_window(client: httpx.Client, i: int) -> httpx.Response:
            start = day0 + (i % 300) * 86400
            return client.get(
                events, params={"start_after": iso(start), "start_before": iso(start + 7 * 86400), "limit": 50}
            )

        def list_page(client: httpx.Client, i: int) -> httpx.Response:
            return client.get(events, params={"limit": 50, "offset": (i * 50) % max(1, args.creates)})

        results = [run("event create", args.creates, args.concurrency, base, key, create, 201)]
        results.append(run("event list (7-day win)", args.lists, args.concurrency, base, key, list_window, 200))
        results.append(run("event list (page 50)", args.lists, args.concurrency, base, key, list_page, 200))

    print(f"Chronary API bench — {base} — python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(HEADER)
    print("-" * len(HEADER))
    for r in results:
        print(r.row())
    if any(r.errors for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
