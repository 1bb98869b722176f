"""iCal subscription import speed: parse and write N events, then re-sync unchanged and changed.

Not a test: it prints numbers. Generates a feed of N events (timed, all-day, weekly series with
EXDATE and a RECURRENCE-ID override, TZID'd times) served by a local http.server on 127.0.0.1,
subscribes a calendar to it in a throw-away data dir, and times:

- parse only: `chronary.ical.decode.decode_feed` on the body (strict, as subscriptions read it)
- first sync: fetch + parse + write all events (through the sync-now path)
- unchanged sync: the server answers 304 to the conditional GET
- changed sync: 10 % of the events edited, 5 % removed (digest skips the untouched rest)

    .venv/bin/python bench/import_bench.py             # 10,000 events
    .venv/bin/python bench/import_bench.py --events 2000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from litestar.testing import TestClient  # noqa: E402

from chronary.app import create_app  # noqa: E402
from chronary.config import Settings  # noqa: E402
from chronary.ical.decode import decode_feed  # noqa: E402
from chronary.workers.subscriptions import sync_subscription  # noqa: E402
from tests.ical.feedserver import FeedServer  # noqa: E402


def make_feed(count: int, edited: int = 0, drop: int = 0) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Bench//EN", "X-WR-TIMEZONE:Europe/Berlin"]
    start = datetime(2026, 1, 5, 8, tzinfo=UTC)
    for i in range(drop, count):
        begin = start + timedelta(hours=5 * i)
        title = f"Event {i}{' (edited)' if i < edited else ''}, room; {i % 7}"
        ev = [
            f"UID:bench-{i}@example.com",
            "DTSTAMP:20260101T000000Z",
            f"SUMMARY:{title}",
            "DESCRIPTION:Line one\\nLine two\\, with comma",
        ]
        kind = i % 20
        if kind == 0:
            day = begin.date()
            ev += [f"DTSTART;VALUE=DATE:{day:%Y%m%d}", f"DTEND;VALUE=DATE:{day + timedelta(days=1):%Y%m%d}"]
        elif kind == 1:
            local = begin.astimezone(ZoneInfo("Europe/Berlin"))
            ev += [
                f"DTSTART;TZID=Europe/Berlin:{local:%Y%m%dT%H%M%S}",
                f"DTEND;TZID=Europe/Berlin:{local + timedelta(hours=1):%Y%m%dT%H%M%S}",
                "RRULE:FREQ=WEEKLY;COUNT=10",
                f"EXDATE;TZID=Europe/Berlin:{local + timedelta(days=14):%Y%m%dT%H%M%S}",
            ]
            lines += ["BEGIN:VEVENT", *ev, "END:VEVENT"]
            ov = local + timedelta(days=7)
            ev = [
                f"UID:bench-{i}@example.com",
                "DTSTAMP:20260101T000000Z",
                f"SUMMARY:{title} (moved)",
                f"RECURRENCE-ID;TZID=Europe/Berlin:{ov:%Y%m%dT%H%M%S}",
                f"DTSTART;TZID=Europe/Berlin:{ov + timedelta(hours=2):%Y%m%dT%H%M%S}",
                f"DTEND;TZID=Europe/Berlin:{ov + timedelta(hours=3):%Y%m%dT%H%M%S}",
            ]
        else:
            ev += [
                f"DTSTART:{begin:%Y%m%dT%H%M%SZ}",
                f"DTEND:{begin + timedelta(minutes=45):%Y%m%dT%H%M%SZ}",
                "BEGIN:VALARM",
                "ACTION:DISPLAY",
                "DESCRIPTION:x",
                "TRIGGER:-PT10M",
                "END:VALARM",
            ]
        lines += ["BEGIN:VEVENT", *ev, "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    n = args.events
    body = make_feed(n).encode()
    t0 = time.perf_counter()
    resources = decode_feed(body, ZoneInfo("UTC"), strict=True)
    parse_s = time.perf_counter() - t0
    items = sum(1 + len(r.overrides) for r in resources)  # VEVENTs read: masters and overrides
    server = FeedServer()
    server.serve("/bench.ics", body)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            app = create_app(Settings(data_dir=Path(tmp), workers=False))
            runtime = app.state.runtime
            with TestClient(app, base_url="http://127.0.0.1:8765") as client:
                client.headers["Authorization"] = f"Bearer {runtime.first_key}"
                agent = client.post("/v1/agents", json={"name": "bench"}).json()
                cal = client.post(f"/v1/agents/{agent['id']}/calendars", json={"name": "c", "timezone": "UTC"}).json()
                # the first (background) sync after create imports an empty feed; the timed ones follow
                server.serve("/bench.ics", make_feed(0))
                sub = client.post(
                    f"/v1/agents/{agent['id']}/ical-subscriptions",
                    json={"calendar_id": cal["id"], "url": server.url("/bench.ics")},
                ).json()
                server.serve("/bench.ics", body)

                def timed_sync() -> float:
                    started = time.perf_counter()
                    result = client.blocking_portal.call(lambda: sync_subscription(runtime, sub["id"]))
                    assert result in ("synced", "not_modified"), result
                    return time.perf_counter() - started

                first = timed_sync()
                count = client.get(f"/v1/ical-subscriptions/{sub['id']}").json()["event_count"]
                unchanged = timed_sync()
                server.serve("/bench.ics", make_feed(n, edited=n // 10, drop=n // 20))
                changed = timed_sync()
                stored = client.get(f"/v1/calendars/{cal['id']}/events", params={"limit": 1}).json()["total"]
    finally:
        server.close()
    print(f"feed: {n} VEVENT series/singles, {items} parsed items, {len(body) / 1e6:.2f} MB")
    print(f"{'measure':34} {'seconds':>8} {'events/s':>10}")
    print(f"{'parse only (decode_feed)':34} {parse_s:8.2f} {items / parse_s:10.0f}")
    print(f"{'first sync (fetch+parse+write)':34} {first:8.2f} {count / first:10.0f}")
    print(f"{'unchanged sync (304)':34} {unchanged:8.3f}")
    print(f"{'changed sync (10% edit, 5% gone)':34} {changed:8.2f} {stored / changed:10.0f}")
    print(f"stored events after changes: {stored}")


if __name__ == "__main__":
    main()
