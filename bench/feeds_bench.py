"""iCal feed rendering: cold render of a big calendar, rebuild after one edit, and 304s.

Not a test: it prints numbers. Builds a throw-away data dir, fills one calendar with N events
through the events service (a mix of timed, all-day, recurring with an edited occurrence, and
events with reminders), then measures over HTTP (Litestar TestClient, in-process):

- cold render: the first GET with every cache empty (SQL read + every VEVENT rendered)
- rebuild after one edit: GET after one PATCH (the other VEVENTs come from the cache)
- warm 200: GET without validators, body served from the per-revision cache
- 304: GET with If-None-Match

    .venv/bin/python bench/feeds_bench.py              # 10,000 events
    .venv/bin/python bench/feeds_bench.py --events 50000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from litestar.testing import TestClient  # noqa: E402

from chronary.app import create_app  # noqa: E402
from chronary.config import Settings  # noqa: E402
from chronary.schemas.events import EventCreate  # noqa: E402
from chronary.services import events as event_service  # noqa: E402
from chronary.services import feeds as feed_service  # noqa: E402
from chronary.services.context import Ctx, Principal  # noqa: E402


def fill(app, calendar_id: str, count: int) -> None:
    runtime = app.state.runtime
    ctx = Ctx(Principal(runtime.org_id, "key_bench"), runtime.settings.base_url)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=60)

    def work(tx):
        for i in range(count):
            begin = start + timedelta(hours=3 * i)
            kind = i % 10
            if kind == 0:
                data = EventCreate(
                    title=f"Offsite {i}",
                    start_time=begin.date().isoformat(),
                    end_time=(begin.date() + timedelta(days=1)).isoformat(),
                    all_day=True,
                )
            elif kind == 1:
                data = EventCreate(
                    title=f"Weekly {i}, sync; team",
                    start_time=begin.isoformat(),
                    end_time=(begin + timedelta(minutes=30)).isoformat(),
                    recurrence=["RRULE:FREQ=WEEKLY;COUNT=20"],
                    reminders=[10],
                )
            else:
                data = EventCreate(
                    title=f"Meeting {i} — café ☕",
                    start_time=begin.isoformat(),
                    end_time=(begin + timedelta(hours=1)).isoformat(),
                    description="Agenda:\n1. status, 2. risks; 3. next steps",
                    location="Room 4",
                    reminders=[5, 15] if kind == 2 else None,
                )
            event_service.create(tx, ctx, calendar_id, data)

    runtime.db.write_sync(work)


def timed(fn, repeat: int = 1) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=200, help="requests for the warm/304 averages")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(data_dir=Path(tmp), workers=False, feed_rate_limit_per_minute=10**9))
        key = app.state.runtime.first_key
        with TestClient(app, base_url="http://127.0.0.1:8765") as client:
            headers = {"Authorization": f"Bearer {key}"}
            cal = client.post(
                "/v1/calendars",
                json={"name": "Bench", "timezone": "Europe/Berlin", "default_reminders": [15]},
                headers=headers,
            ).json()
            t0 = time.perf_counter()
            fill(app, cal["id"], args.events)
            print(f"filled {args.events} events in {time.perf_counter() - t0:.1f} s")
            path = urlsplit(cal["ical_url"]).path
            feed_service.CACHE = feed_service.FeedCache()
            cold = {}
            cold_ms = timed(lambda: cold.setdefault("r", client.get(path)))[0]
            resp = cold["r"]
            assert resp.status_code == 200, resp.text
            etag = resp.headers["etag"]
            vevents = resp.content.count(b"BEGIN:VEVENT")
            warm = timed(lambda: client.get(path), args.repeat)
            not_modified = timed(lambda: client.get(path, headers={"If-None-Match": etag}), args.repeat)
            assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
            events = client.get(f"/v1/calendars/{cal['id']}/events", params={"limit": 1}, headers=headers).json()
            first = events["data"][0]["id"]
            client.patch(f"/v1/calendars/{cal['id']}/events/{first}", json={"title": "edited"}, headers=headers)
            rebuild = timed(lambda: client.get(path))[0]
            print(f"feed: {vevents} VEVENTs, {len(resp.content) / 1e6:.2f} MB")
            print(f"{'measure':28} {'ms':>10}")
            print(f"{'cold render (HTTP 200)':28} {cold_ms:10.1f}")
            print(f"{'rebuild after one edit':28} {rebuild:10.1f}")
            print(f"{'warm 200 (cached body) p50':28} {statistics.median(warm):10.2f}")
            print(f"{'304 If-None-Match p50':28} {statistics.median(not_modified):10.2f}")
            print(f"{'304 If-None-Match p99':28} {sorted(not_modified)[int(len(not_modified) * 0.99) - 1]:10.2f}")


if __name__ == "__main__":
    main()
