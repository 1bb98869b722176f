"""iCal feeds at 100,000 events (issue 20, item 3): rebuild after one edit vs a cold render, and
the server's memory after a feed, an edit and an availability query over that calendar.

Not a test: it prints numbers. Method:

1. Fill a throw-away data dir in this process through the services (one agent, one calendar in
   Europe/Berlin with default reminders, N events three hours apart from 60 days ago: 10 %
   all-day, 10 % weekly series of 20 with a reminder — every tenth series with one edited and one
   deleted occurrence — and the rest timed meetings with description, location and non-ASCII
   text), then close it.
2. Start `python -m chronary serve` on that data dir (its own process, workers on, as in
   production) and drive it with httpx over a real socket:
   - cold render: the first GET of the feed (every cache empty: SQL read + every VEVENT rendered)
   - rebuild after one edit: PATCH one event's title via the API, then GET the feed; three
     rounds on different events, the median is compared with the cold render
   - warm 200 and 304 (If-None-Match), for reference
   - availability: `GET /v1/agents/{id}/availability` over the coming 31 days
3. Read the server process's VmRSS (resident now) and VmHWM (peak resident) from
   /proc/PID/status after each step.

Run from the repository root (the server subprocess inherits PYTHONPATH, so the "before" figure
is measured with `PYTHONPATH=/tmp/base-… .venv/bin/python bench/feeds100k_bench.py`):

    .venv/bin/python bench/feeds100k_bench.py                  # 100,000 events
    .venv/bin/python bench/feeds100k_bench.py --events 20000
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx

sys.path.append(str(Path(__file__).resolve().parent.parent))  # after PYTHONPATH: "before" runs use the old code

from api_bench import stop_server  # noqa: E402

from chronary.config import Settings  # noqa: E402
from chronary.runtime import open_runtime  # noqa: E402
from chronary.schemas.agents import AgentCreate  # noqa: E402
from chronary.schemas.calendars import CalendarCreate  # noqa: E402
from chronary.schemas.events import EventCreate, EventUpdate  # noqa: E402
from chronary.services import agents as agent_service  # noqa: E402
from chronary.services import calendars as calendar_service  # noqa: E402
from chronary.services import events as event_service  # noqa: E402
from chronary.services import occurrences  # noqa: E402
from chronary.services.context import Ctx, Principal  # noqa: E402
from chronary.store import events as event_store  # noqa: E402


def _event(i: int, begin: datetime) -> EventCreate:
    kind = i % 10
    if kind == 0:
        return EventCreate(
            title=f"Offsite {i}",
            start_time=begin.date().isoformat(),
            end_time=(begin.date() + timedelta(days=1)).isoformat(),
            all_day=True,
        )
    if kind == 1:
        return EventCreate(
            title=f"Weekly {i}, sync; team",
            start_time=begin.isoformat(),
            end_time=(begin + timedelta(minutes=30)).isoformat(),
            recurrence=["RRULE:FREQ=WEEKLY;COUNT=20"],
            reminders=[10],
        )
    return EventCreate(
        title=f"Meeting {i} — café ☕",
        start_time=begin.isoformat(),
        end_time=(begin + timedelta(hours=1)).isoformat(),
        description="Agenda:\n1. status, 2. risks; 3. next steps",
        location="Room 4",
        reminders=[5, 15] if kind == 2 else None,
    )


def fill(data_dir: Path, count: int) -> tuple[str, str, str, str]:
    """(org key, agent id, calendar id, feed path) of a data dir holding `count` events."""
    runtime = open_runtime(Settings(data_dir=data_dir, workers=False))
    ctx = Ctx(Principal(runtime.org_id, "key_bench"), runtime.settings.base_url)
    agent = runtime.db.write_sync(lambda tx: agent_service.create(tx, ctx.principal, AgentCreate(name="Bench agent")))
    cal = runtime.db.write_sync(
        lambda tx: calendar_service.create(
            tx, ctx, agent.id, CalendarCreate(name="Bench", timezone="Europe/Berlin", default_reminders=[15])
        )
    )
    zone = ZoneInfo("Europe/Berlin")
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=60)

    def chunk(first: int, last: int):
        def work(tx) -> None:
            for i in range(first, last):
                begin = start + timedelta(hours=3 * i)
                created = event_service.create(tx, ctx, cal.id, _event(i, begin))
                if i % 100 == 1:  # every tenth series: one edited and one deleted occurrence
                    master = event_store.get(tx.conn, created.id)
                    occ = occurrences.expand_series(master, zone, master["start_ts"], master["end_ts"] + 30 * 86400, [])
                    event_service.update(tx, ctx, cal.id, occ[2]["id"], EventUpdate(title="Moved sync"))
                    event_service.delete(tx, ctx, cal.id, occ[3]["id"])

        return work

    for first in range(0, count, 10_000):
        runtime.db.write_sync(chunk(first, min(count, first + 10_000)))
    key = runtime.first_key
    runtime.db.close()
    assert key is not None
    return key, agent.id, cal.id, urlsplit(cal.ical_url).path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def serve(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONARY_")}
    env.update(PYTHONUNBUFFERED="1", CHRONARY_LOG_LEVEL="warning", CHRONARY_FEED_RATE_LIMIT_PER_MINUTE="100000")
    proc = subprocess.Popen(
        [sys.executable, "-m", "chronary", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=data_dir,  # not the checkout: `-m` would import it ahead of PYTHONPATH
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("server did not start:\n" + "".join(lines))
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="edit + rebuild rounds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chronary-feeds100k-") as tmp:
        t0 = time.perf_counter()
        key, agent_id, cal_id, path = fill(Path(tmp), args.events)
        print(f"filled {args.events} events in {time.perf_counter() - t0:.1f} s")
        proc, base = serve(Path(tmp))
        rows: list[tuple[str, float | None, float, float]] = []

        def step(name: str, ms: float | None) -> None:
            rows.append((name, ms, *memory(proc.pid)))

        try:
            with httpx.Client(base_url=base, timeout=600, headers={"Authorization": f"Bearer {key}"}) as client:
                step("server started", None)
                t0 = time.perf_counter()
                cold = client.get(path)
                step("cold render (GET 200)", (time.perf_counter() - t0) * 1000)
                assert cold.status_code == 200, cold.text
                size, vevents, etag = len(cold.content), cold.content.count(b"BEGIN:VEVENT"), cold.headers["etag"]
                del cold
                listed = client.get(f"/v1/calendars/{cal_id}/events", params={"limit": args.rounds}).json()["data"]
                rebuilds = []
                for i, event in enumerate(listed[: args.rounds]):
                    r = client.patch(f"/v1/calendars/{cal_id}/events/{event['id']}", json={"title": f"edited {i}"})
                    assert r.status_code == 200, r.text
                    t0 = time.perf_counter()
                    again = client.get(path)
                    rebuilds.append((time.perf_counter() - t0) * 1000)
                    assert again.status_code == 200 and again.headers["etag"] != etag
                    assert f"SUMMARY:edited {i}".encode() in again.content
                    etag = again.headers["etag"]
                    del again
                    step(f"edit {i + 1} + rebuild (GET 200)", rebuilds[-1])
                t0 = time.perf_counter()
                assert client.get(path).status_code == 200
                step("warm 200", (time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
                step("304 If-None-Match", (time.perf_counter() - t0) * 1000)
                now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
                t0 = time.perf_counter()
                avail = client.get(
                    f"/v1/agents/{agent_id}/availability",
                    params={"start": now.isoformat(), "end": (now + timedelta(days=31)).isoformat()},
                )
                assert avail.status_code == 200, avail.text
                step("availability, 31 days", (time.perf_counter() - t0) * 1000)
        finally:
            stop_server(proc)
    print(f"feed: {vevents} VEVENTs, {size / 1e6:.1f} MB")
    print(f"{'step':32} {'ms':>9} {'VmRSS MB':>9} {'VmHWM MB':>9}")
    for name, ms, rss, hwm in rows:
        print(f"{name:32} {'' if ms is None else f'{ms:9.0f}':>9} {rss:9.0f} {hwm:9.0f}")
    cold_ms = rows[1][1] or 1.0
    print(f"rebuild / cold (median of {len(rebuilds)}): {statistics.median(rebuilds) / cold_ms:.3f}")
    print(f"VmRSS after the sequence: {rows[-1][2]:.0f} MB, peak VmHWM: {rows[-1][3]:.0f} MB")


if __name__ == "__main__":
    main()
