"""History must not slow the present: windows near the end of 100,000 events vs near the start.

Not a test: it prints numbers. Two parts, each at N events in one calendar:

- `--part query` (in process): builds a throw-away database with N one-hour events spread over
  the years (written straight through the store, as an import would) and times the window query
  the events list, availability and the agent context use (`store.events.in_window`, then
  `overlapping`), for 7-day windows near the start and near the end of that history, against
  the same query without the lower bound of `event_spans` (the query before issue 20).

- `--part http` (over HTTP, the real server): starts `python -m chronary serve` on a throw-away
  data dir (bench/api_bench.py's `local_server`), creates two agents with one calendar each and
  the same working hours, then writes N events into each calendar through the store, straight
  into the server's database file (another process, WAL): agent "end" has its history behind
  now (45 years up to a few weeks after now), agent "start" ahead of now (from a few weeks
  before now for 45 years). Both have the same density around now (six one-hour events a day),
  every 50th event a weekly series of 8 (ended, as most old series are) and two open-ended
  series around now, so the same request near now is "near the end" of one history and "near
  the start" of the other. For each endpoint — the agent events list (7-day window), the
  availability of a month, find-meeting-time over a month (with a third, empty agent), the
  agent context, and the first pages of the unwindowed calendar and agent lists (their
  `total` counts all N) — it prints the single-request latency (sequential, p50/p99) and the
  throughput of `--concurrency` keep-alive clients, and the end/start ratio of each.

    .venv/bin/python bench/window_bench.py                       # both parts, 100,000 events
    .venv/bin/python bench/window_bench.py --part http --events 20000
    PYTHONPATH=/tmp/base-1e91ad2 .venv/bin/python bench/window_bench.py --part http   # "before"
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import apsw
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_bench import Result, local_server, run  # noqa: E402

from chronary.store import events as event_store  # noqa: E402
from chronary.store.db import open_connection  # noqa: E402
from chronary.store.migrate import migrate  # noqa: E402

NOW = "2026-12-01T00:00:00.000Z"
HOUR, DAY = 3600, 86_400
T0 = 1_600_000_000


def _event(i: int, calendar_id: str, start: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"evt_{calendar_id[4:]}{i:08d}",
        "calendar_id": calendar_id,
        "ical_uid": f"u{calendar_id}{i}",
        "title": "Meeting",
        "start_ts": start,
        "end_ts": start + HOUR,
        "all_day": False,
        "status": "confirmed",
        "attendees": [],
        "metadata": {},
        "source": "internal",
        "read_only": False,
        "created_at": NOW,
        "updated_at": NOW,
        **extra,
    }


def build(path: Path, count: int) -> apsw.Connection:
    conn = open_connection(path, synchronous="normal")
    migrate(conn)
    conn.execute("INSERT INTO orgs (id, name, created_at) VALUES ('org_1', 'o', ?)", (NOW,))
    conn.execute(
        "INSERT INTO agents (id, org_id, name, type, status, timezone, created_at, updated_at) "
        "VALUES ('agt_1', 'org_1', 'Ada', 'ai', 'active', 'UTC', ?, ?)",
        (NOW, NOW),
    )
    conn.execute(
        "INSERT INTO calendars (id, org_id, agent_id, name, timezone, agent_status, feed_token, created_at, updated_at) "
        "VALUES ('cal_1', 'org_1', 'agt_1', 'Work', 'UTC', 'active', 'tok', ?, ?)",
        (NOW, NOW),
    )
    conn.execute("BEGIN")
    for i in range(count):
        start = T0 + i * 4 * HOUR  # six a day: 100,000 events ≈ 45 years
        event_store.create(conn, _event(i, "cal_1", start) | {"id": f"evt_{i:08d}", "ical_uid": f"u{i}"})
    conn.execute("COMMIT")
    return conn


def unbounded(conn: apsw.Connection, start: int, end: int) -> int:
    """The window query as it was: overlap filtered on the start index, no lower bound."""
    rows = conn.execute(
        """SELECT * FROM events WHERE calendar_id = 'cal_1' AND recurrence IS NULL AND recurring_event_id IS NULL
           AND start_ts < ? AND end_ts > ? ORDER BY start_ts, id""",
        (end, start),
    )
    return len(list(rows))


def timed(fn: Callable[[], object], n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def query_part(count: int, queries: int) -> None:
    with tempfile.TemporaryDirectory(prefix="chronary-window-") as tmp:
        began = time.perf_counter()
        conn = build(Path(tmp) / "chronary.db", count)
        print(f"built {count} events in {time.perf_counter() - began:.1f} s — python {sys.version.split()[0]}")
        last = T0 + (count - 1) * 4 * HOUR
        windows = {"near the start": T0 + 7 * DAY, "near the end": last - 14 * DAY}
        scope = event_store.EventFilter(calendar_id="cal_1")
        print(f"{'query':40} {'window':16} {'rows':>5} {'p50 ms':>8} {'p99 ms':>8}")
        results: dict[tuple[str, str], float] = {}
        for label, start in windows.items():
            end = start + 7 * DAY
            cases: dict[str, Callable[[], object]] = {
                "in_window (bounded)": lambda s=start, e=end: event_store.in_window(conn, scope, s, e),
                "overlapping (bounded)": lambda s=start, e=end: event_store.overlapping(
                    conn, scope, s, e, ("confirmed",), None
                ),
                "unbounded (before)": lambda s=start, e=end: unbounded(conn, s, e),
            }
            rows = len(event_store.in_window(conn, scope, start, end)[0])
            for name, fn in cases.items():
                p50, p99 = timed(fn, queries)
                results[(name, label)] = p50
                print(f"{name:40} {label:16} {rows:>5} {p50:>8.3f} {p99:>8.3f}")
        for name in ("in_window (bounded)", "overlapping (bounded)", "unbounded (before)"):
            ratio = results[(name, "near the end")] / results[(name, "near the start")]
            print(f"end/start ratio, {name}: {ratio:.2f}")
        conn.close()


# --- over HTTP -------------------------------------------------------------------------------

RULES = {
    "working_hours": {d: [{"start": "09:00", "end": "17:00"}] for d in ("mon", "tue", "wed", "thu", "fri")}
    | {"sat": [], "sun": []},
    "buffer_before_minutes": 5,
    "buffer_after_minutes": 5,
}


def iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def fill(path: Path, calendar_id: str, count: int, first: int, now: int) -> None:
    """`count` one-hour events six a day from `first`: every 50th a weekly series of 8, and two
    open-ended series begun a year before now (a daily stand-up, a weekly review)."""
    conn = open_connection(path, synchronous="normal")
    try:
        conn.execute("BEGIN IMMEDIATE")
        for i in range(count - 2):
            start = first + i * 4 * HOUR
            extra: dict[str, Any] = {}
            if i % 50 == 0:
                extra["recurrence"] = ["RRULE:FREQ=WEEKLY;COUNT=8"]
            event_store.create(conn, _event(i, calendar_id, start, **extra))
        year_ago = now - now % DAY - 365 * DAY
        for j, rule in enumerate(("RRULE:FREQ=DAILY", "RRULE:FREQ=WEEKLY;BYDAY=MO")):
            start = year_ago + (7 + j) * HOUR + 30 * 60
            event_store.create(conn, _event(count + j, calendar_id, start, recurrence=[rule]) | {"end_ts": start + 900})
        conn.execute("COMMIT")
    finally:
        conn.close()


def http_part(count: int, requests: int, concurrency: int) -> None:
    private = tempfile.mkdtemp(prefix="chronary-window-http-")
    tempfile.tempdir = private  # local_server's data dir lands here: the one chronary-bench-* in it
    with local_server() as (base, key):
        (data_dir,) = Path(private).glob("chronary-bench-*")
        db_path = data_dir / "chronary.db"
        headers = {"Authorization": f"Bearer {key}"}
        now = int(time.time())
        span = (count - 2) * 4 * HOUR
        agents: dict[str, dict[str, str]] = {}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
            for label in ("end", "start", "empty"):
                agent = c.post("/v1/agents", json={"name": f"history {label}"}).json()
                cal = c.post(f"/v1/agents/{agent['id']}/calendars", json={"name": label, "timezone": "UTC"}).json()
                c.put(f"/v1/agents/{agent['id']}/availability-rules", json=RULES).raise_for_status()
                agents[label] = {"agent": agent["id"], "calendar": cal["id"]}
            began = time.perf_counter()
            day0 = now - now % DAY
            fill(db_path, agents["end"]["calendar"], count, day0 + 60 * DAY - span, now)
            fill(db_path, agents["start"]["calendar"], count, day0 - 60 * DAY, now)
            print(f"wrote 2 × {count} events in {time.perf_counter() - began:.1f} s")
            for label in ("end", "start"):
                total = c.get(f"/v1/calendars/{agents[label]['calendar']}/events", params={"limit": 1}).json()["total"]
                assert total == count, (label, total)

        win = day0 + 7 * DAY  # a week from now: the present, at the end of one history, the start of the other
        cases: dict[str, Callable[[str], Callable[[httpx.Client, int], httpx.Response]]] = {
            "agent list (7-day window)": lambda who: (
                lambda client, i: client.get(
                    f"/v1/agents/{agents[who]['agent']}/events",
                    params={"start_after": iso(win), "start_before": iso(win + 7 * DAY), "limit": 50},
                )
            ),
            "availability (month)": lambda who: (
                lambda client, i: client.get(
                    f"/v1/agents/{agents[who]['agent']}/availability",
                    params={"start": iso(win), "end": iso(win + 31 * DAY)},
                )
            ),
            "find-meeting-time (month)": lambda who: (
                lambda client, i: client.post(
                    "/v1/availability/find-meeting-time",
                    json={
                        "agent_ids": [agents[who]["agent"], agents["empty"]["agent"]],
                        "start": iso(win),
                        "end": iso(win + 31 * DAY),
                        "duration_minutes": 45,
                        "limit": 100,
                    },
                )
            ),
            "agent context": lambda who: lambda client, i: client.get(f"/v1/agents/{agents[who]['agent']}/context"),
            "calendar list (page 1)": lambda who: (
                lambda client, i: client.get(f"/v1/calendars/{agents[who]['calendar']}/events", params={"limit": 50})
            ),
            "agent list (page 1)": lambda who: (
                lambda client, i: client.get(f"/v1/agents/{agents[who]['agent']}/events", params={"limit": 50})
            ),
        }
        print(f"{'request':28} {'history':8} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7}  (x{concurrency} clients)")
        ratios: list[tuple[str, float, float]] = []
        for name, make in cases.items():
            figures, paired = measure(base, key, name, {who: make(who) for who in ("start", "end")}, requests, concurrency)
            for who, (p50, p99, rate) in figures.items():
                print(f"{name:28} {who:8} {p50:>8.2f} {p99:>8.2f} {rate:>7.0f}")
            ratios.append((name, figures["end"][0] / figures["start"][0], paired))
        for name, latency, rate in ratios:
            print(f"end/start, {name}: latency {latency:.2f}, req/s {rate:.2f} of start")


Request = Callable[[httpx.Client, int], httpx.Response]


def measure(
    base: str, key: str, name: str, requests_by: dict[str, Request], requests: int, concurrency: int
) -> tuple[dict[str, tuple[float, float, float]], float]:
    """(p50, p99, req/s) per history, and the end/start ratio of req/s. The machine is shared and
    noisy, so the two histories are measured interleaved: single requests alternate between
    them, and the loaded runs alternate in rounds (req/s: the median round; the ratio: the median
    of each round's end/start, so drift between rounds cancels)."""
    latencies: dict[str, list[float]] = {who: [] for who in requests_by}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        for i in range(requests // 2):
            for who, request in requests_by.items():
                began = time.perf_counter()
                response = request(client, i)
                latencies[who].append((time.perf_counter() - began) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"{name} ({who}): {response.status_code} {response.text[:200]}")
    rates: dict[str, list[float]] = {who: [] for who in requests_by}
    for _ in range(ROUNDS):
        for who, request in requests_by.items():
            loaded = run(name, requests // ROUNDS, concurrency, base, key, request, 200)
            if loaded.errors:
                raise SystemExit(f"{name} ({who}): {loaded.errors} failed requests under load")
            rates[who].append(_rate(loaded))
    out = {}
    for who, lat in latencies.items():
        lat.sort()
        p99 = lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
        out[who] = (statistics.median(lat), p99, statistics.median(rates[who]))
    paired = statistics.median(e / s for e, s in zip(rates["end"], rates["start"], strict=True))
    return out, paired


ROUNDS = 5


def _rate(result: Result) -> float:
    return result.requests / result.seconds if result.seconds else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="events per calendar (default 100000)")
    parser.add_argument("--part", choices=("query", "http", "both"), default="both")
    parser.add_argument("--queries", type=int, default=200, help="in-process queries per measure")
    parser.add_argument(
        "--requests", type=int, default=300, help="HTTP requests per history and endpoint under load (half as many single)"
    )
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    if args.part in ("query", "both"):
        query_part(args.events, args.queries)
    if args.part in ("http", "both"):
        http_part(args.events, args.requests, args.concurrency)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
