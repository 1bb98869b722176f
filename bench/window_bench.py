"""History must not slow the present: a 7-day window near the end of 100,000 events vs near the start.

Not a test: it prints numbers. Builds a throw-away database with N one-hour events spread over
the years in one calendar (written straight through the store, as an import would), then times
the window query the events list, availability and the agent context use
(`store.events.in_window`, then `overlapping`), for 7-day windows near the start and near the
end of that history. For comparison it runs the same query without the lower bound the
`event_spans` table gives it (the query before issue 20): that one walks every earlier event on
the (calendar_id, start_ts) index, so it slows down as history grows.

    .venv/bin/python bench/window_bench.py            # 100,000 events, 200 queries per measure
    .venv/bin/python bench/window_bench.py --events 20000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import apsw

from chronary.store import events as event_store
from chronary.store.db import open_connection
from chronary.store.migrate import migrate

NOW = "2026-12-01T00:00:00.000Z"
HOUR, DAY = 3600, 86_400
T0 = 1_600_000_000


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
        event_store.create(
            conn,
            {
                "id": f"evt_{i:08d}",
                "calendar_id": "cal_1",
                "ical_uid": f"u{i}",
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
            },
        )
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


def timed(fn: object, n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chronary-window-") as tmp:
        began = time.perf_counter()
        conn = build(Path(tmp) / "chronary.db", args.events)
        print(f"built {args.events} events in {time.perf_counter() - began:.1f} s — python {sys.version.split()[0]}")
        last = T0 + (args.events - 1) * 4 * HOUR
        windows = {"near the start": T0 + 7 * DAY, "near the end": last - 14 * DAY}
        scope = event_store.EventFilter(calendar_id="cal_1")
        print(f"{'query':40} {'window':16} {'rows':>5} {'p50 ms':>8} {'p99 ms':>8}")
        results: dict[tuple[str, str], float] = {}
        for label, start in windows.items():
            end = start + 7 * DAY
            cases = {
                "in_window (bounded)": lambda s=start, e=end: event_store.in_window(conn, scope, s, e),
                "overlapping (bounded)": lambda s=start, e=end: event_store.overlapping(
                    conn, scope, s, e, ("confirmed",), None
                ),
                "unbounded (before)": lambda s=start, e=end: unbounded(conn, s, e),
            }
            rows = len(event_store.in_window(conn, scope, start, end)[0])
            for name, fn in cases.items():
                p50, p99 = timed(fn, args.queries)
                results[(name, label)] = p50
                print(f"{name:40} {label:16} {rows:>5} {p50:>8.3f} {p99:>8.3f}")
        for name in ("in_window (bounded)", "overlapping (bounded)", "unbounded (before)"):
            ratio = results[(name, "near the end")] / results[(name, "near the start")]
            print(f"end/start ratio, {name}: {ratio:.2f}")
        conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
