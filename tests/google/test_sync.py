"""Two-way sync with a Google calendar: both sides converge, nothing is duplicated or lost through
expired sync tokens, revoked grants, rate limits and a round cut short."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chronary.providers import http as google_http
from tests.conftest import Api
from tests.fakes.google import FakeGoogle
from tests.google.conftest import EMAIL, connect, enable, start
from tests.sync.conftest import events, merge_dies_after, sync

BERLIN = "Europe/Berlin"


def _setup(api: Api, fake: FakeGoogle) -> tuple[dict[str, Any], str]:
    agent = api.agent(timezone=BERLIN)
    con = connect(api, fake, agent["id"])
    mapped = enable(api, con)
    return con, mapped["calendar_id"]


def _timed(summary: str, start: str, end: str, **extra: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "start": {"dateTime": start, "timeZone": BERLIN},
        "end": {"dateTime": end, "timeZone": BERLIN},
        **extra,
    }


def _by_title(api: Api, calendar_id: str, **params: Any) -> dict[str, dict[str, Any]]:
    return {e["title"]: e for e in events(api, calendar_id, **params)}


def _remote(fake: FakeGoogle) -> dict[str, dict[str, Any]]:
    return {e.get("summary", ""): e for e in fake.stored_events(EMAIL) if e.get("status") != "cancelled"}


def _outbox(api: Api, prefix: str) -> list[dict[str, Any]]:
    rows = api.runtime.db.read_sync(
        lambda tx: list(tx.conn.execute("SELECT type, payload FROM outbox WHERE type LIKE ? ORDER BY seq", (prefix + "%",)))
    )
    return [{"type": r["type"], **json.loads(r["payload"])} for r in rows]


def test_both_sides_converge(gapi: Api, google: FakeGoogle) -> None:
    google.put_event(EMAIL, _timed("Dentist", "2027-01-05T09:00:00+01:00", "2027-01-05T10:00:00+01:00"))
    google.put_event(
        EMAIL,
        {
            "summary": "Offsite",
            "start": {"date": "2027-01-11"},
            "end": {"date": "2027-01-13"},
            "transparency": "transparent",
        },
    )
    series = google.put_event(
        EMAIL,
        _timed(
            "Standup",
            "2027-01-04T09:30:00+01:00",
            "2027-01-04T09:45:00+01:00",
            recurrence=["RRULE:FREQ=DAILY;COUNT=5"],
            reminders={"useDefault": False, "overrides": [{"method": "popup", "minutes": 10}]},
        ),
    )
    google.edit_event(
        EMAIL,
        f"{series['id']}_20270105T083000Z",
        summary="Standup (late)",
        start={"dateTime": "2027-01-05T11:00:00+01:00", "timeZone": BERLIN},
        end={"dateTime": "2027-01-05T11:15:00+01:00", "timeZone": BERLIN},
    )
    google.delete_event(EMAIL, f"{series['id']}_20270106T083000Z")
    con, cal = _setup(gapi, google)
    first = sync(gapi, con["id"])
    assert first is not None and first["error"] is None and first["pulled"] == 3, first

    stored = _by_title(gapi, cal)
    assert stored["Dentist"]["start_time"] == "2027-01-05T08:00:00Z" and stored["Dentist"]["source"] == "google"
    assert (stored["Offsite"]["start_date"], stored["Offsite"]["end_date"]) == ("2027-01-11", "2027-01-13")
    assert stored["Offsite"]["transparency"] == "transparent"
    standup = stored["Standup"]
    assert standup["reminders"] == [10] and standup["recurrence"][0] == "RRULE:FREQ=DAILY;COUNT=5"
    assert "EXDATE:20270106T083000Z" in standup["recurrence"]  # the cancelled instance
    week = _by_title(gapi, cal, start_after="2027-01-04T00:00:00Z", start_before="2027-01-09T00:00:00Z")
    assert week["Standup (late)"]["start_time"] == "2027-01-05T10:00:00Z"
    occurrences = [
        e["start_time"]
        for e in events(gapi, cal, start_after="2027-01-04T00:00:00Z", start_before="2027-01-09T00:00:00Z")
        if e["title"] == "Standup"
    ]
    assert occurrences == ["2027-01-04T08:30:00Z", "2027-01-07T08:30:00Z", "2027-01-08T08:30:00Z"]

    # Chronary side: a booking and a hold go out; an edit of a mirrored event goes back
    booked = gapi.event(cal, "2027-01-07T13:00:00Z", "2027-01-07T14:00:00Z", title="Client call", reminders=[15])
    hold = gapi.post(
        f"/v1/calendars/{cal}/events",
        json={
            "title": "Maybe lunch",
            "status": "hold",
            "start_time": "2027-01-08T11:00:00Z",
            "end_time": "2027-01-08T12:00:00Z",
        },
    ).json()
    r = gapi.patch(
        f"/v1/calendars/{cal}/events/{stored['Dentist']['id']}",
        json={"title": "Dentist (moved)", "start_time": "2027-01-05T12:00:00Z", "end_time": "2027-01-05T13:00:00Z"},
    )
    assert r.status_code == 200, r.text
    second = sync(gapi, con["id"])
    assert second is not None and second["pushed"] == 3 and second["error"] is None, second
    remote = _remote(google)
    assert (
        remote["Client call"]["start"]["dateTime"].startswith("2027-01-07T")
        and remote["Client call"]["iCalUID"] == booked["ical_uid"]
    )
    assert remote["Client call"]["reminders"]["overrides"] == [{"method": "popup", "minutes": 15}]
    assert remote["Maybe lunch"]["status"] == "tentative"
    assert remote["Dentist (moved)"]["start"]["dateTime"].startswith("2027-01-05T13:00:00+01:00") or remote[
        "Dentist (moved)"
    ]["start"]["dateTime"].startswith("2027-01-05T12:00:00Z")
    # nothing comes back as a change: our own writes are not remote edits
    quiet = sync(gapi, con["id"])
    assert quiet is not None and (quiet["pulled"], quiet["pushed"]) == (0, 0), quiet
    assert _by_title(gapi, cal)["Maybe lunch"]["status"] == "hold"  # still a hold here
    assert _by_title(gapi, cal)["Maybe lunch"]["id"] == hold["id"]

    # the phone edits and deletes; a retried round never doubles anything
    google.edit_event(EMAIL, remote["Client call"]["id"], summary="Client call (confirmed)")
    google.delete_event(EMAIL, remote["Dentist (moved)"]["id"])
    third = sync(gapi, con["id"])
    assert third is not None and third["pulled"] == 2, third
    titles = sorted(_by_title(gapi, cal))  # stored rows: the series' moved occurrence is one of them
    assert titles == ["Client call (confirmed)", "Maybe lunch", "Offsite", "Standup", "Standup (late)"]
    assert sorted(
        e.get("summary")
        for e in google.stored_events(EMAIL)
        if e.get("status") != "cancelled" and not e.get("recurringEventId")
    ) == ["Client call (confirmed)", "Maybe lunch", "Offsite", "Standup"]


def test_expired_sync_token_means_a_full_resync_without_duplicates(gapi: Api, google: FakeGoogle) -> None:
    for day in range(1, 6):
        google.put_event(EMAIL, _timed(f"Event {day}", f"2027-02-0{day}T09:00:00+01:00", f"2027-02-0{day}T10:00:00+01:00"))
    con, cal = _setup(gapi, google)
    assert sync(gapi, con["id"])["pulled"] == 5  # type: ignore[index]
    ids = {e["title"]: e["id"] for e in events(gapi, cal)}
    google.expire_sync_tokens()
    google.put_event(EMAIL, _timed("Event 6", "2027-02-06T09:00:00+01:00", "2027-02-06T10:00:00+01:00"))
    google.delete_event(EMAIL, next(e["id"] for e in google.stored_events(EMAIL) if e["summary"] == "Event 2"))
    summary = sync(gapi, con["id"])
    assert summary is not None and summary["error"] is None, summary
    after = {e["title"]: e["id"] for e in events(gapi, cal)}
    assert sorted(after) == ["Event 1", "Event 3", "Event 4", "Event 5", "Event 6"]
    assert all(after[t] == ids[t] for t in after if t in ids)  # the same events, not copies


def test_revoked_grant_is_reported_and_repaired_by_reauthorizing(gapi: Api, google: FakeGoogle) -> None:
    gapi.receive_webhooks()  # changes are logged with the payloads an endpoint gets
    google.put_event(EMAIL, _timed("Kept", "2027-03-01T09:00:00+01:00", "2027-03-01T10:00:00+01:00"))
    con, cal = _setup(gapi, google)
    sync(gapi, con["id"])
    kept = events(gapi, cal)
    google.revoke_grant(EMAIL)
    google.expire_access_tokens()
    failed = sync(gapi, con["id"])
    assert failed is not None and failed["error"], failed
    state = gapi.get(f"/v1/connections/{con['id']}").json()
    assert (state["status"], state["status_reason"]) == ("error", "reauthorization_required")
    assert [e["data"]["object"]["id"] for e in _outbox(gapi, "connection.error")] == [con["id"]]
    assert events(gapi, cal) == kept  # nothing mirrored is lost
    due = gapi.runtime.db.read_sync(lambda tx: tx.conn.execute("SELECT next_sync_at FROM connections").fetchone())
    assert due["next_sync_at"] > 10**12  # syncing stops until the user acts

    repaired = connect(gapi, google, con["agent_id"], connection_id=con["id"])
    assert repaired["id"] == con["id"] and repaired["status"] == "active"
    assert any(c["calendar_id"] == cal and c["sync"] for c in repaired["calendars"])  # the mapping survived
    google.put_event(EMAIL, _timed("After repair", "2027-03-02T09:00:00+01:00", "2027-03-02T10:00:00+01:00"))
    ok = sync(gapi, con["id"])
    assert ok is not None and ok["error"] is None and ok["pulled"] == 1, ok
    assert sorted(e["title"] for e in events(gapi, cal)) == ["After repair", "Kept"]


def test_a_thousand_events_and_a_round_cut_short(gapi: Api, google: FakeGoogle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(google_http, "BACKOFF_BASE", 0.01)
    google.page_size = google.max_page_size = 250  # four pages
    for i in range(1000):
        day, hour = 1 + i // 40, 6 + (i % 40) // 3
        google.put_event(
            EMAIL, _timed(f"E{i:04}", f"2027-04-{day:02}T{hour:02}:00:00+02:00", f"2027-04-{day:02}T{hour:02}:30:00+02:00")
        )
    con, cal = _setup(gapi, google)

    # Google fails the listing (every retry too): the round records its error and stores nothing
    google.fail_next(4, 503, path="/events")
    cut = sync(gapi, con["id"])
    assert cut is not None and "503" in (cut["error"] or ""), cut
    assert gapi.get(f"/v1/calendars/{cal}/events?limit=1").json()["total"] == 0

    # the process dies in the middle of merging (after two of five chunks were committed)
    with merge_dies_after(2):  # the process dies after two committed chunks
        crashed = sync(gapi, con["id"])
        assert crashed is not None and crashed["error"], crashed
        assert gapi.get(f"/v1/calendars/{cal}/events?limit=1").json()["total"] == 2 * 200

    google.clear_requests()
    summary = sync(gapi, con["id"])  # the next round picks up where the cursor still is: the start
    assert summary is not None and summary["error"] is None and summary["pulled"] == 600, summary
    assert gapi.get(f"/v1/calendars/{cal}/events?limit=1").json()["total"] == 1000
    titles = {e["title"] for page in range(5) for e in events(gapi, cal, limit=200, offset=200 * page)}
    assert len(titles) == 1000  # every event once
    listing = [r for r in google.requests_to("/events", "GET")]
    assert len(listing) == 4  # 1,000 events in 4 pages of 250, nothing else to fetch
    again = sync(gapi, con["id"])
    assert again is not None and again["pulled"] == 0


def test_rate_limits_are_retried_and_retry_after_is_honoured(
    gapi: Api, google: FakeGoogle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(google_http, "BACKOFF_BASE", 0.01)
    google.put_event(EMAIL, _timed("Limited", "2027-05-03T09:00:00+02:00", "2027-05-03T10:00:00+02:00"))
    con, cal = _setup(gapi, google)
    google.fail_next(2, 403, "rateLimitExceeded", path="/events")
    summary = sync(gapi, con["id"])
    assert summary is not None and summary["error"] is None and summary["pulled"] == 1, summary
    google.fail_next(50, 429, retry_after=900, path="/events")
    limited = sync(gapi, con["id"])
    assert limited is not None and limited["error"], limited
    row = gapi.runtime.db.read_sync(lambda tx: tx.conn.execute("SELECT next_sync_at FROM connections").fetchone())
    now = int(gapi.runtime.clock.now().timestamp())
    assert row["next_sync_at"] - now >= 900  # not before Google said


def test_disconnect_revokes_and_keeps_mirrored_events(gapi: Api, google: FakeGoogle) -> None:
    google.put_event(EMAIL, _timed("Stays", "2027-06-01T09:00:00+02:00", "2027-06-01T10:00:00+02:00"))
    con, cal = _setup(gapi, google)
    sync(gapi, con["id"])
    assert gapi.delete(f"/v1/connections/{con['id']}").status_code == 204
    (ev,) = events(gapi, cal)
    assert (ev["title"], ev["source"], ev["remote"], ev["read_only"]) == ("Stays", "internal", None, False)
    assert google.requests_to("/revoke")
    started = start(gapi, con["agent_id"])  # the grant is gone at Google: a new consent is needed
    assert started["redirect_url"].startswith(google.auth_url)


def test_token_refresh_is_recorded_and_transient_failures_are_counted(
    gapi: Api, google: FakeGoogle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(google_http, "BACKOFF_BASE", 0.01)
    con, _ = _setup(gapi, google)
    sync(gapi, con["id"])
    before = gapi.get(f"/v1/connections/{con['id']}").json()["token_refresh"]
    google.expire_access_tokens()  # Google answers 401: the provider refreshes once and goes on
    ok = sync(gapi, con["id"])
    assert ok is not None and ok["error"] is None, ok
    after = gapi.get(f"/v1/connections/{con['id']}").json()
    assert after["token_refresh"]["last_at"] == ok["finished_at"] != before["last_at"]
    assert after["token_refresh"]["failures_count"] == 0
    stored = json.loads(
        gapi.runtime.secrets.decrypt(
            gapi.runtime.db.read_sync(lambda tx: tx.conn.execute("SELECT secret FROM connections").fetchone()["secret"])
        )
    )
    assert stored["access_token"] and stored["refresh_token"]  # the refreshed set is what is stored

    google.expire_access_tokens()
    google.fail_next(50, 503, path="/token")  # the token endpoint is down for a while
    failed = sync(gapi, con["id"])
    assert failed is not None and failed["error"], failed
    state = gapi.get(f"/v1/connections/{con['id']}").json()
    assert state["status"] == "active" and state["token_refresh"]["failures_count"] == 1  # transient: retried later
    google.clear_failures()  # the outage is over
    ok = sync(gapi, con["id"])
    assert ok is not None and ok["error"] is None, ok
    assert gapi.get(f"/v1/connections/{con['id']}").json()["token_refresh"]["failures_count"] == 0
