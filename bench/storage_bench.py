"""Database size of 100,000 plain events vs the events' own bytes, and the change log's share
(issue 20, item 5).

Method: a throw-away data dir opened with `open_runtime` (the default pipeline, no webhook
endpoint, no connection, no flow), one org-level agent and calendar, then `--events` plain events
(title, start, end, a small metadata object) created through the events service
(`services.events.create`, the path of POST /v1/calendars/{id}/events), 100 per write
transaction so the run takes seconds, not minutes. Every 1,000 events the change log is read by
its webhook consumer as the running server's webhook worker does on its poll
(`changes.consume(db, "webhooks", dispatch.fan_out, 500)`). At the end the WAL is checkpointed
into the file and the file's size is compared with

- the events' own bytes: the sum of each event's JSON as the API returns it (msgspec encoding
  of the `Event` struct), and
- the raw column bytes of the events table (text lengths, 8 per number), for reference;

and SQLite's `dbstat` gives the pages of each table and index (the change log: `changes` and its
indexes; from migration 0020 on, `change_log`, its indexes and `change_payloads`). Bounded by
`--events`.

    .venv/bin/python bench/storage_bench.py                  # 100,000 events
    .venv/bin/python bench/storage_bench.py --events 20000
    PYTHONPATH=/tmp/base-1e91ad2 .venv/bin/python bench/storage_bench.py     # the code before

Exits non-zero when the file is larger than twice the events' own bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import msgspec

from chronary.config import Settings
from chronary.runtime import open_runtime
from chronary.schemas.agents import AgentCreate
from chronary.schemas.calendars import CalendarCreate
from chronary.schemas.events import EventCreate
from chronary.services import agents, calendars, changes, events, keys
from chronary.services.context import Ctx
from chronary.store.db import Tx
from chronary.webhooks import dispatch

BATCH = 100
CONSUME_EVERY = 1000
# the change log's tables and indexes, before migration 0020 (one table) and after (two)
CHANGE_LOG = ("changes", "sqlite_autoindex_changes_1", "changes_created")
CHANGE_LOG += ("change_log", "sqlite_autoindex_change_log_1", "change_log_created", "change_payloads")


def iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="events to create (default 100000)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="chronary-storage-") as tmp:
        data = Path(tmp)
        rt = open_runtime(Settings(data_dir=data, workers=False, sqlite_synchronous="normal"))
        db = rt.db
        principal = db.read_sync(lambda tx: keys.authenticate(tx, rt.first_key))
        ctx = Ctx(principal=principal, base_url="http://127.0.0.1:8765")
        agent = db.write_sync(lambda tx: agents.create(tx, principal, AgentCreate(name="bench")))
        cal = db.write_sync(lambda tx: calendars.create(tx, ctx, agent.id, CalendarCreate(name="bench", timezone="UTC")))
        own = 0
        t0 = time.perf_counter()
        for first in range(0, args.events, BATCH):

            def batch(tx: Tx, first: int = first) -> list[bytes]:
                out = []
                for i in range(first, min(args.events, first + BATCH)):
                    start, end = iso(1_900_000_000 + i * 3600), iso(1_900_000_000 + i * 3600 + 1800)
                    body = EventCreate(title=f"bench {i}", start_time=start, end_time=end, metadata={"i": i})
                    made = events.create(tx, ctx, cal.id, body)
                    out.append(msgspec.json.encode(made))
                return out

            own += sum(len(body) for body in db.write_sync(batch))
            if (first + BATCH) % CONSUME_EVERY == 0 or first + BATCH >= args.events:
                asyncio.run(changes.consume(db, dispatch.CONSUMER, dispatch.fan_out, 500))
        seconds = time.perf_counter() - t0
        db.write_sync_raw(lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
        size = (data / "chronary.db").stat().st_size

        def stats(tx: Tx) -> tuple[dict[str, int], int, int, int]:
            pages: dict[str, int] = defaultdict(int)
            for row in tx.conn.execute("SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name"):
                pages[row["name"]] += int(row["bytes"])
            raw = one_int(
                tx,
                """SELECT sum(length(id) + length(calendar_id) + length(ical_uid) + length(title)
                   + coalesce(length(description), 0) + coalesce(length(location), 0) + length(status)
                   + coalesce(length(reminders), 0) + coalesce(length(recurrence), 0) + length(attendees)
                   + length(metadata) + length(source) + coalesce(length(remote), 0) + length(created_at)
                   + length(updated_at) + length(transparency) + 8 * 8) FROM events""",
            )
            logged = one_int(tx, "SELECT count(*) FROM changes")
            kept = one_int(tx, "SELECT count(*) FROM changes WHERE payload IS NOT NULL")
            return pages, raw, logged, kept

        pages, raw, logged, kept = db.read_sync(stats)
        db.close()

    log_bytes = sum(pages.get(name, 0) for name in CHANGE_LOG)
    events_bytes = sum(
        b for name, b in pages.items() if name == "events" or name.startswith(("events_", "sqlite_autoindex_events"))
    )
    print(f"Chronary storage bench — {args.events} plain events, no webhook endpoint — {os.cpu_count()} CPUs")
    print(f"created in {seconds:.1f} s; change log rows {logged}, with payload {kept}")
    print(f"{'':<34} {'bytes':>12} {'x own':>7}")
    for name, value in (
        ("database file", size),
        ("events' own bytes (API JSON)", own),
        ("events' raw column bytes", raw),
        ("events table + its indexes", events_bytes),
        ("change log (changes + indexes)", log_bytes),
    ):
        print(f"{name:<34} {value:>12} {value / own:>7.2f}")
    print(f"change log share of the file: {100 * log_bytes / size:.0f} %")
    print("largest tables and indexes:")
    for name, value in sorted(pages.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {name:<40} {value:>12}")
    print(f"file / own bytes: {size / own:.2f}  (target <= 2.00)")
    if size > 2 * own:
        sys.exit(1)


def one_int(tx: Tx, sql: str) -> int:
    row: dict[str, Any] = next(iter(tx.conn.execute(sql)))
    return int(next(iter(row.values())) or 0)


if __name__ == "__main__":
    main()
