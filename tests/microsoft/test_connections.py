"""Outlook / Microsoft 365 through Graph, end to end: connect like a browser, both sides converge
(Windows zone names, a daily series with a moved and a cancelled occurrence), an expired delta, a
revoked grant repaired in place, 1,000 events with a round cut short, throttling."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chronary.providers import http as provider_http
from tests.conftest import Api
from tests.fakes.microsoft import FakeMicrosoft
from tests.microsoft.conftest import EMAIL, connect, enable
from tests.sync.conftest import events, merge_dies_after, sync

WIN_BERLIN = "W. Europe Standard Time"


def _when(local: str, zone: str = WIN_BERLIN) -> dict[str, str]:
    return {"dateTime": local, "timeZone": zone}


def _setup(api: Api, fake: FakeMicrosoft) -> tuple[dict[str, Any], str]:
    agent = api.agent(timezone="Europe/Berlin")
    con = connect(api, fake, agent["id"])
    mapped = enable(api, con)
    return con, mapped["calendar_id"]


def _by_title(api: Api, calendar_id: str, **params: Any) -> dict[str, dict[str, Any]]:
    """Stored masters and single events by title (a series' exception rows share its title)."""
    return {e["title"]: e for e in events(api, calendar_id, **params) if e["recurring_event_id"] is None}


def _remote(fake: FakeMicrosoft, con: dict[str, Any]) -> dict[str, dict[str, Any]]:
    calendar = next(c["remote_id"] for c in con["calendars"] if c["name"] == "Calendar")
    return {e["subject"]: e for e in fake.stored_events(calendar)}


def test_connect_like_a_browser(mapi: Api, microsoft: FakeMicrosoft) -> None:
    microsoft.add_calendar(EMAIL, "Team (read only)", can_edit=False)
    con = connect(mapi, microsoft, mapi.agent()["id"])
    assert (con["provider"], con["email"], con["status"]) == ("microsoft", EMAIL, "active")
    calendars = {c["name"]: c for c in con["calendars"]}
    assert calendars["Team (read only)"]["read_only"] is True and calendars["Calendar"]["read_only"] is False
    (row,) = mapi.runtime.db.read_sync(lambda tx: list(tx.conn.execute("SELECT secret FROM connections")))
    assert "refresh" not in row["secret"].lower()  # the token cache is stored encrypted
    tokens = json.loads(mapi.runtime.secrets.decrypt(row["secret"]))
    assert tokens  # and decrypts to the provider's token set
    again = connect(mapi, microsoft, con["agent_id"])
    assert again["id"] == con["id"]  # the same account again: the same connection


def test_both_sides_converge(mapi: Api, microsoft: FakeMicrosoft) -> None:
    microsoft.user_create(EMAIL, subject="Dentist", start=_when("2027-01-05T09:00:00"), end=_when("2027-01-05T10:00:00"))
    microsoft.user_create(
        EMAIL,
        subject="Pacific call",
        start=_when("2027-01-05T08:00:00", "Pacific Standard Time"),
        end=_when("2027-01-05T09:00:00", "Pacific Standard Time"),
        showAs="tentative",
        isReminderOn=True,
        reminderMinutesBeforeStart=30,
    )
    microsoft.user_create(
        EMAIL,
        subject="Offsite",
        isAllDay=True,
        start=_when("2027-01-11T00:00:00"),
        end=_when("2027-01-13T00:00:00"),
        showAs="free",
    )
    series = microsoft.user_create(
        EMAIL,
        subject="Standup",
        start=_when("2027-01-04T09:30:00"),
        end=_when("2027-01-04T09:45:00"),
        recurrence={
            "pattern": {"type": "daily", "interval": 1},
            "range": {"type": "numbered", "startDate": "2027-01-04", "numberOfOccurrences": 5},
        },
    )
    microsoft.user_move_occurrence(series, "2027-01-05T09:30:00", "2027-01-05T11:00:00", "2027-01-05T11:15:00")
    microsoft.user_cancel_occurrence(series, "2027-01-06T09:30:00")
    con, cal = _setup(mapi, microsoft)
    first = sync(mapi, con["id"])
    assert first is not None and first["error"] is None, first

    stored = _by_title(mapi, cal)
    assert stored["Dentist"]["start_time"] == "2027-01-05T08:00:00Z" and stored["Dentist"]["source"] == "microsoft"
    assert stored["Pacific call"]["start_time"] == "2027-01-05T16:00:00Z"  # 08:00 in Pacific Standard Time
    assert stored["Pacific call"]["status"] == "tentative" and stored["Pacific call"]["reminders"] == [30]
    assert (stored["Offsite"]["start_date"], stored["Offsite"]["end_date"]) == ("2027-01-11", "2027-01-13")
    assert stored["Offsite"]["transparency"] == "transparent"
    standup = stored["Standup"]
    assert standup["recurrence"][0].startswith("RRULE:FREQ=DAILY") and "COUNT=5" in standup["recurrence"][0]
    assert "EXDATE:20270106T083000Z" in standup["recurrence"]
    week = events(mapi, cal, start_after="2027-01-04T00:00:00Z", start_before="2027-01-09T00:00:00Z")
    standups = sorted(e["start_time"] for e in week if e["title"] == "Standup")
    assert standups == ["2027-01-04T08:30:00Z", "2027-01-05T10:00:00Z", "2027-01-07T08:30:00Z", "2027-01-08T08:30:00Z"]

    booked = mapi.event(cal, "2027-01-07T13:00:00Z", "2027-01-07T14:00:00Z", title="Client call", reminders=[15])
    hold = mapi.post(
        f"/v1/calendars/{cal}/events",
        json={
            "title": "Maybe lunch",
            "status": "hold",
            "start_time": "2027-01-08T11:00:00Z",
            "end_time": "2027-01-08T12:00:00Z",
        },
    )
    assert hold.status_code == 201, hold.text
    r = mapi.patch(f"/v1/calendars/{cal}/events/{stored['Dentist']['id']}", json={"title": "Dentist (moved)"})
    assert r.status_code == 200, r.text
    second = sync(mapi, con["id"])
    assert second is not None and second["error"] is None and second["pushed"] == 3, second
    remote = _remote(microsoft, con)
    assert remote["Client call"]["reminderMinutesBeforeStart"] == 15
    assert remote["Maybe lunch"]["showAs"] == "tentative"
    assert "Dentist (moved)" in remote and booked["ical_uid"]
    quiet = sync(mapi, con["id"])
    assert quiet is not None and (quiet["pulled"], quiet["pushed"]) == (0, 0), quiet
    assert _by_title(mapi, cal)["Maybe lunch"]["status"] == "hold"

    microsoft.user_update(remote["Client call"]["id"], subject="Client call (confirmed)")
    microsoft.user_delete(remote["Dentist (moved)"]["id"])
    third = sync(mapi, con["id"])
    assert third is not None and third["error"] is None, third
    titles = set(_by_title(mapi, cal))
    assert "Client call (confirmed)" in titles and "Dentist (moved)" not in titles and "Client call" not in titles


def test_expired_delta_means_a_full_resync_without_duplicates(mapi: Api, microsoft: FakeMicrosoft) -> None:
    for day in range(1, 6):
        microsoft.user_create(
            EMAIL, subject=f"Event {day}", start=_when(f"2027-02-0{day}T09:00:00"), end=_when(f"2027-02-0{day}T10:00:00")
        )
    con, cal = _setup(mapi, microsoft)
    assert sync(mapi, con["id"])["error"] is None  # type: ignore[index]
    ids = {e["title"]: e["id"] for e in events(mapi, cal)}
    microsoft.expire_delta_tokens("SyncStateNotFound")
    microsoft.user_create(EMAIL, subject="Event 6", start=_when("2027-02-06T09:00:00"), end=_when("2027-02-06T10:00:00"))
    summary = sync(mapi, con["id"])
    assert summary is not None and summary["error"] is None, summary
    after = {e["title"]: e["id"] for e in events(mapi, cal)}
    assert sorted(after) == [f"Event {d}" for d in range(1, 7)]
    assert all(after[t] == ids[t] for t in ids)


@pytest.mark.parametrize("how", ["revoked", "interaction_required"])
def test_a_dead_grant_is_reported_and_repaired(mapi: Api, microsoft: FakeMicrosoft, how: str) -> None:
    microsoft.user_create(EMAIL, subject="Kept", start=_when("2027-03-01T09:00:00"), end=_when("2027-03-01T10:00:00"))
    con, cal = _setup(mapi, microsoft)
    sync(mapi, con["id"])
    kept = events(mapi, cal)
    (microsoft.revoke_grant if how == "revoked" else microsoft.require_interaction)(EMAIL)
    microsoft.expire_access_tokens()
    failed = sync(mapi, con["id"])
    assert failed is not None and failed["error"], failed
    state = mapi.get(f"/v1/connections/{con['id']}").json()
    assert (state["status"], state["status_reason"]) == ("error", "reauthorization_required")
    assert events(mapi, cal) == kept
    repaired = connect(mapi, microsoft, con["agent_id"], connection_id=con["id"])
    assert repaired["id"] == con["id"] and repaired["status"] == "active"
    ok = sync(mapi, con["id"])
    assert ok is not None and ok["error"] is None, ok
    assert [e["title"] for e in events(mapi, cal)] == ["Kept"]


def test_a_thousand_events_throttling_and_a_round_cut_short(
    mapi: Api, microsoft: FakeMicrosoft, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provider_http, "BACKOFF_BASE", 0.01)
    for i in range(1000):
        day, hour = 1 + i // 40, 6 + (i % 40) // 3
        microsoft.user_create(
            EMAIL,
            subject=f"E{i:04}",
            start=_when(f"2027-04-{day:02}T{hour:02}:00:00"),
            end=_when(f"2027-04-{day:02}T{hour:02}:30:00"),
        )
    con, cal = _setup(mapi, microsoft)
    microsoft.fail_next(2, 429, retry_after=1, path_contains="delta")  # throttled, then let through
    with merge_dies_after(2):  # the process dies after two committed chunks
        crashed = sync(mapi, con["id"])
        assert crashed is not None and crashed["error"], crashed
    summary = sync(mapi, con["id"])
    assert summary is not None and summary["error"] is None, summary
    assert mapi.get(f"/v1/calendars/{cal}/events?limit=1").json()["total"] == 1000
    assert max(microsoft.max_concurrency_seen.values()) <= 4
    again = sync(mapi, con["id"])
    assert again is not None and again["pulled"] == 0, again


def test_persistent_throttling_waits_as_long_as_graph_says(mapi: Api, microsoft: FakeMicrosoft) -> None:
    con, _ = _setup(mapi, microsoft)
    assert sync(mapi, con["id"])["error"] is None  # type: ignore[index]
    microsoft.fail_next(50, 429, retry_after=600, path_contains="delta")
    limited = sync(mapi, con["id"])
    assert limited is not None and limited["error"], limited
    row = mapi.runtime.db.read_sync(lambda tx: tx.conn.execute("SELECT next_sync_at FROM connections").fetchone())
    assert row["next_sync_at"] - int(mapi.runtime.clock.now().timestamp()) >= 600
