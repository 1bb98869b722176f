"""Real-world .ics exports (Google, Outlook, Apple) import correctly through a subscription.

The reference is `recurring_ical_events` expanding the source file: our windowed event list
and our own feed of the importing calendar must show the same occurrences.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import recurring_ical_events

from chronary.clock import ManualClock
from tests.ical.conftest import feed_path, parse
from tests.ical.subsync import run_subscription_worker

FIXTURES = Path(__file__).parent / "fixtures"
WINDOW = ("2026-02-01T00:00:00Z", "2026-06-01T00:00:00Z")


def _key(ev) -> tuple[str, str]:
    start = ev.decoded("DTSTART")
    when = start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(start, datetime) else start.isoformat()
    return when, str(ev["SUMMARY"])


def _reference(body: bytes) -> list[tuple[str, str]]:
    cal = parse(body)
    found = recurring_ical_events.of(cal).between(datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC))
    return sorted(_key(ev) for ev in found if str(ev.get("STATUS", "")) != "CANCELLED")


def _ours(api, calendar_id: str) -> list[tuple[str, str]]:
    r = api.get(
        f"/v1/calendars/{calendar_id}/events", params={"start_after": WINDOW[0], "start_before": WINDOW[1], "limit": 200}
    )
    assert r.status_code == 200
    out = []
    for e in r.json()["data"]:
        if e["status"] == "cancelled":
            continue
        out.append((e["start_date"] if e["all_day"] else e["start_time"], e["title"]))
    return sorted(out)


def _subscribe(api, feed_server, name: str, timezone: str) -> tuple[dict, dict, bytes]:
    body = (FIXTURES / f"{name}.ics").read_bytes()
    feed_server.serve(f"/{name}.ics", body)
    agent = api.agent(name)
    cal = api.calendar(agent["id"], name=name, timezone=timezone)
    r = api.post(
        f"/v1/agents/{agent['id']}/ical-subscriptions",
        json={"calendar_id": cal["id"], "url": feed_server.url(f"/{name}.ics"), "label": name},
    )
    assert r.status_code == 201, r.text
    run_subscription_worker(api)  # the request marked it due; the worker syncs it
    sub = api.get(f"/v1/ical-subscriptions/{r.json()['id']}").json()
    assert sub["status"] == "active" and sub["last_error"] is None, sub
    return sub, cal, body


@pytest.mark.parametrize(
    ("name", "timezone", "count"),
    [
        ("google", "Europe/Berlin", 5),  # the cancelled lunch is kept, marked cancelled (ical/decode.py)
        ("outlook", "UTC", 4),
        ("apple", "America/New_York", 4),
    ],
)
def test_fixture_imports_like_a_calendar_app_reads_it(make_api, feed_server, name, timezone, count):
    api = make_api(clock=ManualClock(datetime(2026, 2, 15, tzinfo=UTC)))
    sub, cal, body = _subscribe(api, feed_server, name, timezone)
    assert sub["event_count"] == count
    reference = _reference(body)
    assert reference and _ours(api, cal["id"]) == reference
    # and our own feed of the importing calendar, read by a calendar app, shows the same
    ours_feed = api.client.get(feed_path(cal)).content
    assert _reference(ours_feed) == reference
    stored = api.get(f"/v1/calendars/{cal['id']}/events", params={"limit": 200}).json()["data"]
    assert all(e["source"] == "external_ical" and e["read_only"] for e in stored)


def test_google_details(make_api, feed_server):
    api = make_api(clock=ManualClock(datetime(2026, 2, 15, tzinfo=UTC)))
    _, cal, _ = _subscribe(api, feed_server, "google", "Europe/Berlin")
    events = api.get(f"/v1/calendars/{cal['id']}/events", params={"limit": 200}).json()["data"]
    by_title = {e["title"]: e for e in events}
    standup = by_title["Weekly standup"]
    assert standup["ical_uid"] == "7kukuqrfedlm2f9t6dmnvtnuvd@google.com"
    assert standup["description"] == "Daily sync, blockers first.\nJoin: https://meet.google.com/abc-defg-hij"
    assert standup["location"] == "Room 4.12, Berlin HQ"
    assert standup["reminders"] == [10]
    moved = by_title["Weekly standup (moved to 11)"]
    assert moved["recurring_event_id"] == standup["id"] and moved["id"] == f"{standup['id']}_20260323T080000Z"
    assert moved["start_time"] == "2026-03-23T10:00:00Z"
    offsite = by_title["Team offsite"]
    assert (offsite["all_day"], offsite["start_date"], offsite["end_date"]) == (True, "2026-03-10", "2026-03-12")
    assert by_title["Vendor call; pricing, terms"]["status"] == "tentative"
    assert by_title["Cancelled lunch"]["status"] == "cancelled"  # kept, as the feed says, and never busy


def test_outlook_windows_zone_and_cancelled_override(make_api, feed_server):
    api = make_api(clock=ManualClock(datetime(2026, 2, 15, tzinfo=UTC)))
    _, cal, _ = _subscribe(api, feed_server, "outlook", "UTC")
    r = api.get(
        f"/v1/calendars/{cal['id']}/events",
        params={"start_after": "2026-03-01T00:00:00Z", "start_before": "2026-03-11T00:00:00Z"},
    )
    review = [(e["start_time"], e["status"]) for e in r.json()["data"] if e["title"].startswith("Project review")]
    assert review == [
        ("2026-03-05T13:00:00Z", "confirmed"),
        ("2026-03-07T13:00:00Z", "cancelled"),
        ("2026-03-08T13:00:00Z", "confirmed"),
        ("2026-03-09T13:00:00Z", "confirmed"),
    ]


def test_apple_series_keeps_new_york_wall_clock_in_a_berlin_calendar(make_api, feed_server):
    """The importing calendar's zone differs from the series' zone: 09:00 New York still wins."""
    api = make_api(clock=ManualClock(datetime(2026, 2, 15, tzinfo=UTC)))
    _, cal, body = _subscribe(api, feed_server, "apple", "Europe/Berlin")
    lessons = [s for s, t in _ours(api, cal["id"]) if t == "Piano lesson"]
    assert lessons == ["2026-03-02T14:00:00Z", "2026-03-09T13:00:00Z", "2026-03-23T13:00:00Z"]
    birthday = [s for s, t in _ours(api, cal["id"]) if t.startswith("Sam")]
    assert birthday == [date(2026, 4, 14).isoformat()]
