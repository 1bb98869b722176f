"""Google Calendar sync speed and requests used: initial sync, idle rounds, pushing local bookings.

Not a test: it prints numbers. It starts the protocol fake of Google's OAuth and Calendar v3
(tests/fakes/google.py) over HTTPS on 127.0.0.1 with N events in the account's primary calendar
(timed events spread over a year, and a share of weekly series with one moved, retitled
instance each: a Google exception resource), trusts the fake's CA through SSL_CERT_FILE /
REQUESTS_CA_BUNDLE (as production would a private CA), builds the real app in-process on a
throw-away data dir and connects the account through the OAuth flow (POST
/v1/connections/start → consent → GET /v1/connections/callback), maps the primary calendar
with PATCH, then drives the sync engine directly (the same `sync_connection` the scheduler
calls) and times:

- initial sync: the first round, everything pulled (events/s, requests to Google)
- idle incremental round: nothing changed on either side (median seconds, requests a round)
- push local bookings: M events created through the API, then one round pushes them all
- the round after the push: our own writes must not come back as remote changes (pulled 0)

For every phase it prints the requests the fake received (token, calendarList, events, …) and
for the initial sync the requests used per 1,000 events. The fake's sockets get TCP_NODELAY
(see `no_delayed_ack`; `--fake-latency` leaves its ~40 ms stall per request in). Chronary's own request budget
(`google_requests_per_minute`, default 300 a minute with bursts of 50) applies: a push of more
bookings than the burst waits for it, which is the point of the budget; `--requests-per-minute`
lifts it to see Chronary's own cost.

    .venv/bin/python bench/google_sync_bench.py                     # 1,000 events, 5 idle rounds, 100 pushes
    .venv/bin/python bench/google_sync_bench.py --events 5000 --max-page-size 250
    .venv/bin/python bench/google_sync_bench.py --requests-per-minute 100000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakes import google as fake_google  # noqa: E402
from tests.fakes.google import FakeGoogle  # noqa: E402

CLIENT_ID = "1234-bench.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-bench-secret"
EMAIL = "bench@example.com"
ZONE = "Europe/Berlin"
BASE = "http://127.0.0.1:8765"  # the TestClient's origin
CALLBACK = f"{BASE}/v1/connections/callback"
RETURN = f"{BASE}/done"


def no_delayed_ack() -> None:
    """Answer without Nagle's delay on the fake's sockets (its own test setting is left as is).

    The fake writes each response's headers and body in two sends; on a keep-alive connection
    Nagle's algorithm holds the body until the client's delayed ACK (~40 ms on Linux), so every
    request would cost ~44 ms of pure waiting and the numbers would measure that, not Chronary.
    """
    serve = fake_google._Server.finish_request

    def finish_request(self: Any, request: Any, client_address: Any) -> None:
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        serve(self, request, client_address)

    fake_google._Server.finish_request = finish_request  # type: ignore[method-assign]


def _google_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def fill(fake: FakeGoogle, count: int, recurring_percent: float) -> tuple[int, int]:
    """N events in the primary calendar over the year from tomorrow; returns (series, resources)."""
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    every = round(100 / recurring_percent) if recurring_percent > 0 else 0
    series = resources = 0
    for i in range(count):
        begin = start + timedelta(days=i * 365 // max(count, 1), hours=7 + i % 10)
        body: dict[str, Any] = {
            "summary": f"Bench {i}",
            "location": f"Room {i % 7}",
            "description": "Agenda: status, risks, next steps",
            "start": {"dateTime": _google_time(begin), "timeZone": ZONE},
            "end": {"dateTime": _google_time(begin + timedelta(minutes=45)), "timeZone": ZONE},
        }
        if every and i % every == 0:
            body["summary"] = f"Weekly {i}"
            body["recurrence"] = ["RRULE:FREQ=WEEKLY;COUNT=10"]
            master = fake.put_event(EMAIL, body)
            # the third occurrence (same wall time in ZONE, whatever DST does): later, renamed
            moved = (begin.astimezone(ZoneInfo(ZONE)) + timedelta(days=14)).astimezone(UTC)
            fake.edit_event(
                EMAIL,
                f"{master['id']}_{moved:%Y%m%dT%H%M%SZ}",
                summary=f"Weekly {i} (moved)",
                start={"dateTime": _google_time(moved + timedelta(hours=2)), "timeZone": ZONE},
                end={"dateTime": _google_time(moved + timedelta(hours=2, minutes=45)), "timeZone": ZONE},
            )
            series += 1
            resources += 2
        else:
            fake.put_event(EMAIL, body)
            resources += 1
    return series, resources


def shape(path: str) -> str:
    """A request path with its ids replaced, so requests group by endpoint."""
    parts = path.split("?")[0].split("/")
    out = []
    for i, part in enumerate(parts):
        before = parts[i - 1] if i else ""
        if before == "calendars" and part:
            out.append("{calendarId}")
        elif before in ("events", "calendarList") and part not in ("", "watch", "instances", "import", "quickAdd"):
            out.append("{eventId}")
        else:
            out.append(part)
    return "/".join(out)


def breakdown(fake: FakeGoogle) -> str:
    counts = Counter(f"{r.method} {shape(r.path)}" for r in fake.requests)
    return ", ".join(f"{name} x{n}" for name, n in counts.most_common()) or "none"


def main(args: argparse.Namespace) -> None:
    if not args.fake_latency:
        no_delayed_ack()
    fake = FakeGoogle(tls=True, max_page_size=args.max_page_size)
    try:
        assert fake.cafile is not None
        # before any client is built: httpx/outbound read the trust store when they make a context
        os.environ["SSL_CERT_FILE"] = os.environ["REQUESTS_CA_BUNDLE"] = fake.cafile
        fake.add_client(CLIENT_ID, CLIENT_SECRET, [CALLBACK])
        fake.add_account(EMAIL, time_zone=ZONE)
        fake.set_user(EMAIL)
        t = time.perf_counter()
        n_series, n_resources = fill(fake, args.events, args.recurring)
        print(
            f"fake Google: {args.events} events ({n_series} weekly series with one exception each, "
            f"{n_resources} resources) filled in {time.perf_counter() - t:.1f} s; "
            f"events pages of at most {args.max_page_size}"
        )
        run(fake, args, n_resources)
        if fake.errors:
            print(f"the fake hit {len(fake.errors)} internal errors; the first:\n{fake.errors[0]}")
    finally:
        fake.close()


def run(fake: FakeGoogle, args: argparse.Namespace, n_resources: int) -> None:
    from litestar.testing import TestClient

    from chronary.app import create_app
    from chronary.config import Settings
    from chronary.services.sync.engine import sync_connection

    with tempfile.TemporaryDirectory() as tmp:
        extra = {} if args.requests_per_minute is None else {"google_requests_per_minute": args.requests_per_minute}
        settings = Settings(
            data_dir=Path(tmp),
            workers=False,
            google_client_id=CLIENT_ID,
            google_client_secret=CLIENT_SECRET,
            google_auth_url=fake.auth_url,
            google_token_url=fake.token_url,
            google_revoke_url=fake.revoke_url,
            google_api_url=fake.api_url,
            **extra,
        )
        app = create_app(settings)
        runtime = app.state.runtime
        rows: list[tuple[str, str, float, str, int]] = []
        with TestClient(app, base_url=BASE) as client:
            client.headers["Authorization"] = f"Bearer {runtime.first_key}"

            def ok(resp: Any, status: int = 200) -> Any:
                if resp.status_code != status:
                    raise SystemExit(f"{resp.request.method} {resp.request.url.path}: {resp.status_code} {resp.text}")
                return resp.json() if resp.content else None

            agent = ok(client.post("/v1/agents", json={"name": "bench", "timezone": ZONE}), 201)

            # connect: start → the browser consents at the fake → our callback → return_url
            fake.clear_requests()
            t = time.perf_counter()
            started = ok(
                client.post(
                    "/v1/connections/start", json={"provider": "google", "agent_id": agent["id"], "return_url": RETURN}
                )
            )
            location = urlsplit(fake.consent(started["redirect_url"]))
            back = client.get(f"{location.path}?{location.query}", follow_redirects=False)
            if back.status_code != 302:
                raise SystemExit(f"callback: {back.status_code} {back.text}")
            landed = parse_qs(urlsplit(back.headers["location"]).query)
            if "connection_id" not in landed:
                raise SystemExit(f"the sign-in failed: {back.headers['location']}")
            con_id = landed["connection_id"][0]
            mapped = ok(client.patch(f"/v1/connections/{con_id}", json={"calendars": [{"remote_id": EMAIL, "sync": True}]}))
            connect_s = time.perf_counter() - t
            cal_id = next(c["calendar_id"] for c in mapped["calendars"] if c["remote_id"] == EMAIL)
            rows.append(("connect (OAuth flow + PATCH)", "-", connect_s, "-", fake.request_count))
            connect_requests = breakdown(fake)

            fake.clear_requests()
            t = time.perf_counter()
            first = asyncio.run(sync_connection(runtime, con_id))
            initial = time.perf_counter() - t
            if not first or first["error"]:
                raise SystemExit(f"initial sync failed: {first}")
            initial_requests = fake.request_count
            rows.append(
                ("initial sync (pull)", str(first["pulled"]), initial, f"{first['pulled'] / initial:.0f}", initial_requests)
            )
            initial_breakdown = breakdown(fake)
            stored = ok(client.get(f"/v1/calendars/{cal_id}/events", params={"limit": 1}))["total"]

            idle, idle_requests = [], []
            for _ in range(args.idle_rounds):
                fake.clear_requests()
                t = time.perf_counter()
                summary = asyncio.run(sync_connection(runtime, con_id))
                idle.append(time.perf_counter() - t)
                idle_requests.append(fake.request_count)
                if not summary or summary["error"] or summary["pulled"] or summary["pushed"]:
                    raise SystemExit(f"an idle round did something: {summary}")
            idle_breakdown = breakdown(fake) if args.idle_rounds else "-"
            if args.idle_rounds:
                median_requests = round(statistics.median(idle_requests))
                rows.append(("idle incremental round (median)", "0", statistics.median(idle), "-", median_requests))

            day0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=2)
            t = time.perf_counter()
            for i in range(args.pushes):
                begin = day0 + timedelta(days=i * 365 // max(args.pushes, 1), hours=18)
                ok(
                    client.post(
                        f"/v1/calendars/{cal_id}/events",
                        json={
                            "title": f"Booked {i}",
                            "start_time": _google_time(begin),
                            "end_time": _google_time(begin + timedelta(minutes=30)),
                        },
                    ),
                    201,
                )
            create_s = time.perf_counter() - t
            fake.clear_requests()
            t = time.perf_counter()
            pushed = asyncio.run(sync_connection(runtime, con_id))
            push_s = time.perf_counter() - t
            if not pushed or pushed["error"]:
                raise SystemExit(f"the push round failed: {pushed}")
            rows.append(
                (
                    "push local bookings",
                    str(pushed["pushed"]),
                    push_s,
                    f"{pushed['pushed'] / push_s:.0f}",
                    fake.request_count,
                )
            )
            push_breakdown = breakdown(fake)
            # one more round: our own writes must not come back as remote changes
            fake.clear_requests()
            t = time.perf_counter()
            after = asyncio.run(sync_connection(runtime, con_id))
            after_s = time.perf_counter() - t
            if not after or after["error"]:
                raise SystemExit(f"the round after the push failed: {after}")
            rows.append(("round after the push (pulled)", str(after["pulled"]), after_s, "-", fake.request_count))
            remote = sum(1 for e in fake.stored_events(EMAIL) if str(e.get("summary", "")).startswith("Booked "))
        runtime.db.close()

    budget = args.requests_per_minute or settings.google_requests_per_minute
    print(f"Chronary request budget: {budget} requests/min per account (bursts of {max(1, budget // 6)})")
    print(f"{'measure':34} {'items':>7} {'seconds':>8} {'items/s':>9} {'requests':>9}")
    for name, items, seconds, rate, requests in rows:
        print(f"{name:34} {items:>7} {seconds:8.3f} {rate:>9} {requests:9d}")
    per_1000 = initial_requests * 1000 / max(args.events, 1)
    print(f"requests per 1,000 events (initial sync): {per_1000:.1f}  ({n_resources} Google resources with the exceptions)")
    print(f"stored after the initial sync: {stored} events (pulled {first['pulled']} series/singles)")
    print(f"{args.pushes} bookings created through the API in {create_s:.2f} s; {remote} arrived at the fake")
    print(f"connect requests:      {connect_requests}")
    print(f"initial sync requests: {initial_breakdown}")
    print(f"idle round requests:   {idle_breakdown}   (the last round)")
    print(f"push round requests:   {push_breakdown}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000, help="events in the Google calendar before the first sync")
    parser.add_argument("--recurring", type=float, default=5.0, help="percent of them that are weekly series (default 5)")
    parser.add_argument("--idle-rounds", type=int, default=5, help="incremental rounds with nothing changed")
    parser.add_argument("--pushes", type=int, default=100, help="local events created, then pushed in one round")
    parser.add_argument(
        "--max-page-size", type=int, default=2500, help="the fake's cap on events.list maxResults (Google: 2500)"
    )
    parser.add_argument(
        "--requests-per-minute", type=int, default=None, help="Chronary's Google request budget (default: the server's)"
    )
    parser.add_argument(
        "--fake-latency",
        action="store_true",
        help="leave the fake's ~40 ms Nagle/delayed-ACK stall per response in (default: TCP_NODELAY on its sockets)",
    )
    main(parser.parse_args())
