"""`chronary import ics`: Google, Apple and Outlook exports land with their series, overrides,
cancellations, zones, all-day dates, reminders and attendees; re-importing updates by UID."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from tests.portability.conftest import FIXTURES, count_rows, events_of

GOOGLE_STANDUP = "5hk0e7q0r1d4o8p3kq2m0a9s1c@google.com"


def _window(api, cal_id: str, start: str, end: str) -> list[dict]:
    return events_of(api, cal_id, start_after=start, start_before=end)


def _by_start(events: list[dict]) -> dict[str, dict]:
    return {e["start_time"]: e for e in events}


def test_google_export_into_a_new_agent_calendar(api, chronary, data_dir: Path) -> None:
    ada = api.agent("Ada")
    result = chronary("import", "ics", str(FIXTURES / "google.ics"), "--new-calendar", "Team", "--agent", ada["id"])
    assert result.exit_code == 0, result.output
    cal_id = result.stdout.split(":")[0]
    assert "created" in result.stdout and cal_id.startswith("cal_")

    cal = api.get(f"/v1/calendars/{cal_id}").json()
    assert (cal["name"], cal["timezone"], cal["agent_id"]) == (
        "Team",
        "Europe/Berlin",
        ada["id"],
    )  # the file's X-WR-TIMEZONE

    stored = events_of(api, cal_id)
    standup = next(e for e in stored if e["ical_uid"] == GOOGLE_STANDUP and not e["recurring_event_id"])
    assert standup["recurrence"][0].startswith("RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR")
    assert standup["reminders"] == [10]
    assert standup["source"] == "internal" and standup["read_only"] is False  # writable, Chronary's own now
    assert {a["email"] for a in standup["attendees"]} == {"ana.lima@example.com", "bo@example.com"}
    assert "meet.google.com" in standup["description"]

    week = _by_start(_window(api, cal_id, "2026-01-05T00:00:00Z", "2026-01-17T00:00:00Z"))
    assert "2026-01-07T08:30:00Z" not in week  # EXDATE
    assert week["2026-01-12T08:30:00Z"]["title"] == "Standup"  # 09:30 Berlin in winter
    moved = week["2026-01-13T10:00:00Z"]  # RECURRENCE-ID override, moved to 11:00 Berlin
    assert (moved["title"], moved["location"]) == ("Standup (moved)", "Room Orion")
    assert week["2026-01-15T08:30:00Z"]["status"] == "cancelled"  # a cancelled occurrence stays listed as such
    after_dst = _by_start(_window(api, cal_id, "2026-03-30T00:00:00Z", "2026-03-31T00:00:00Z"))
    assert "2026-03-30T07:30:00Z" in after_dst  # still 09:30 in Berlin after the clocks moved

    ski = next(e for e in stored if e["title"] == "Ski trip")
    assert ski["all_day"] and ski["start_date"] == "2026-02-16" and ski["transparency"] == "transparent"
    assert ski["location"] == "Arlberg, Austria"
    partner = next(e for e in stored if e["title"] == "Partner sync")
    assert partner["status"] == "tentative" and partner["reminders"] == [30, 1440]
    # the feed shows them too (the import went through the change path: revision moved)
    feed = api.client.get(urlsplit(cal["ical_url"]).path)
    assert feed.status_code == 200 and "Standup (moved)" in feed.text


def test_reimport_is_idempotent_and_a_newer_export_updates(api, chronary, data_dir: Path, tmp_path: Path) -> None:
    cal = api.calendar(name="Work", timezone="Europe/Berlin")
    first = chronary("import", "ics", str(FIXTURES / "google.ics"), "--calendar", cal["id"])
    assert first.exit_code == 0, first.output
    rows = count_rows(data_dir, "events", "calendar_id = ?", (cal["id"],))
    changes = count_rows(data_dir, "changes")
    assert rows == 6  # four masters, two overrides

    again = chronary("import", "ics", str(FIXTURES / "google.ics"), "--calendar", cal["id"])
    assert again.exit_code == 0, again.output
    assert "0 created, 0 updated, 6 unchanged" in again.stdout
    assert count_rows(data_dir, "events", "calendar_id = ?", (cal["id"],)) == rows
    assert count_rows(data_dir, "changes") == changes  # nothing written at all

    newer = (FIXTURES / "google.ics").read_text().replace("SUMMARY:Ski trip", "SUMMARY:Ski trip (booked)")
    (tmp_path / "newer.ics").write_text(newer)
    updated = chronary("import", "ics", str(tmp_path / "newer.ics"), "--calendar", cal["id"])
    assert updated.exit_code == 0, updated.output
    assert "0 created, 1 updated, 5 unchanged" in updated.stdout
    ski = [e for e in events_of(api, cal["id"]) if e["title"].startswith("Ski trip")]
    assert [e["title"] for e in ski] == ["Ski trip (booked)"]  # updated in place, not duplicated
    assert ski[0]["sequence"] == 1  # the source kept SEQUENCE:0; ours moves past the old version


def test_outlook_export_with_windows_zone_names(api, chronary) -> None:
    cal = api.calendar(name="Outlook", timezone="UTC")
    result = chronary("import", "ics", str(FIXTURES / "outlook.ics"), "--calendar", cal["id"])
    assert result.exit_code == 0, result.output
    stored = events_of(api, cal["id"])
    review = next(e for e in stored if e["title"] == "Design review" and not e["recurring_event_id"])
    assert review["reminders"] == [15] and review["location"] == "Room 4.12"
    assert review["remote"] == {"type": "import", "tzid": "Europe/Berlin"}  # "W. Europe Standard Time"
    occurrences = _by_start(_window(api, cal["id"], "2026-01-01T00:00:00Z", "2026-05-01T00:00:00Z"))
    reviews = sorted(s for s, e in occurrences.items() if e["title"] == "Design review")
    assert "2026-01-06T09:00:00Z" in reviews  # 10:00 in Berlin, winter
    assert "2026-02-03T09:00:00Z" not in reviews  # EXDATE
    assert "2026-03-17T13:00:00Z" in reviews and "2026-03-17T09:00:00Z" not in reviews  # moved to 14:00
    assert "2026-03-31T08:00:00Z" in reviews  # 10:00 in Berlin after DST, though the calendar is UTC
    assert occurrences["2026-03-31T06:00:00Z"]["title"] == "Dentist"
    easter = next(e for e in stored if e["title"] == "Easter holidays")
    assert easter["all_day"] and easter["start_date"] == "2026-04-03" and easter["transparency"] == "transparent"


def test_apple_export_all_day_alarms_and_dst(api, chronary) -> None:
    bo = api.agent("Bo", type="human")
    result = chronary("import", "ics", str(FIXTURES / "apple.ics"), "--new-calendar", "Home", "--agent", bo["id"])
    assert result.exit_code == 0, result.output
    cal_id = result.stdout.split(":")[0]
    assert api.get(f"/v1/calendars/{cal_id}").json()["timezone"] == "America/New_York"
    stored = events_of(api, cal_id)
    birthday = next(e for e in stored if e["title"].startswith("Mom’s birthday"))
    assert birthday["all_day"] and birthday["recurrence"] == ["RRULE:FREQ=YEARLY"] and birthday["reminders"] == [900]
    this_year = _window(api, cal_id, "2026-03-13T00:00:00Z", "2026-03-16T00:00:00Z")
    assert any(e["title"].startswith("Mom’s birthday") and e["start_date"] == "2026-03-14" for e in this_year)
    swims = _by_start(_window(api, cal_id, "2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z"))
    assert swims["2026-01-07T12:00:00Z"]["title"] == "Swim practice"  # 07:00 EST
    assert "2026-01-28T12:00:00Z" not in swims  # EXDATE
    assert swims["2026-03-11T12:00:00Z"]["title"] == "Swim practice (late lane)"  # 08:00 EDT, moved
    assert swims["2026-03-18T11:00:00Z"]["title"] == "Swim practice"  # 07:00 EDT
    dinner = next(e for e in stored if e["title"] == "Dinner with Sam")
    assert dinner["reminders"] == [60] and {a["name"] for a in dinner["attendees"]} == {"Sam Rivera", "Jordan Avery"}


def test_org_level_calendar_named_after_the_file(api, chronary) -> None:
    result = chronary("import", "ics", str(FIXTURES / "apple.ics"), "--new-calendar", "", "--timezone", "Europe/Paris")
    assert result.exit_code == 0, result.output
    cal = api.get(f"/v1/calendars/{result.stdout.split(':')[0]}").json()
    assert (cal["name"], cal["timezone"], cal["agent_id"]) == ("Home", "Europe/Paris", None)  # X-WR-CALNAME


def test_own_export_back_into_the_same_calendar_keeps_holds(api, chronary, tmp_path: Path) -> None:
    cal = api.calendar(name="Mine", timezone="UTC")
    hold = api.event(cal["id"], "2030-01-10T15:00:00Z", "2030-01-10T16:00:00Z", "Held", status="hold")
    out = tmp_path / "mine.ics"
    assert chronary("export", "ics", "--calendar", cal["id"], "--out", str(out)).exit_code == 0
    assert "X-CHRONARY-HOLD:TRUE" in out.read_text()
    again = chronary("import", "ics", str(out), "--calendar", cal["id"])
    assert again.exit_code == 0, again.output
    [event] = events_of(api, cal["id"])
    assert event["id"] == hold["id"]  # matched by its UID, not duplicated
    assert (event["status"], event["hold_expires_at"]) == ("hold", hold["hold_expires_at"])
