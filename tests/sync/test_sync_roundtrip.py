"""Two-way sync against a real Radicale: both sides' creates, edits and deletes converge;
recurring series with exceptions, all-day events and timezones survive the round trip."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

from tests.conftest import Api
from tests.sync.conftest import Radicale, connect, enable, events, sync, vevent


def _setup(api: Api, radicale: Radicale, tz: str = "UTC") -> tuple[Any, dict, dict, Any]:
    user = radicale.new_user()
    cal = radicale.make_calendar(user)
    agent = api.agent(timezone=tz)
    con = connect(api, agent["id"], user, radicale.url)
    mapped = enable(api, con, f"/{user}/work/")
    return cal, con, mapped, user


def _webhooks(api: Api) -> list[tuple[str, str]]:
    rows = api.runtime.db.read_sync(
        lambda tx: list(tx.conn.execute("SELECT type, payload FROM outbox WHERE type LIKE 'event.%' ORDER BY seq"))
    )
    return [(r["type"], json.loads(r["payload"])["data"]["object"]["ical_uid"]) for r in rows]


def _remote(cal: Any) -> dict[str, Any]:
    return {str(e.icalendar_component["UID"]): e for e in cal.get_events()}


def test_both_sides_converge(api: Api, radicale: Radicale) -> None:
    api.receive_webhooks()  # changes are logged with the payloads an endpoint gets
    cal, con, mapped, _ = _setup(api, radicale)
    cal_id = mapped["calendar_id"]
    cal.save_event(vevent("phone-a", "Dentist"))
    cal.save_event(vevent("phone-b", "Gym", "20260106T170000Z", "20260106T180000Z"))
    summary = sync(api, con["id"])
    assert summary and summary["pulled"] == 2 and summary["error"] is None
    local = {e["ical_uid"]: e for e in events(api, cal_id)}
    assert set(local) == {"phone-a", "phone-b"}
    assert local["phone-a"]["title"] == "Dentist" and local["phone-a"]["start_time"] == "2026-01-05T09:00:00Z"
    assert local["phone-a"]["source"] == "caldav" and local["phone-a"]["read_only"] is False
    # local side: create, edit a mirrored one, delete a mirrored one
    booked = api.event(cal_id, "2026-01-07T13:00:00Z", "2026-01-07T14:00:00Z", title="Booked by agent")
    r = api.patch(
        f"/v1/calendars/{cal_id}/events/{local['phone-a']['id']}",
        json={"title": "Dentist (moved)", "start_time": "2026-01-05T10:00:00Z", "end_time": "2026-01-05T11:00:00Z"},
    )
    assert r.status_code == 200
    assert api.delete(f"/v1/calendars/{cal_id}/events/{local['phone-b']['id']}").status_code == 204
    assert api.get(f"/v1/connections/{con['id']}").json()["pending_pushes"] == 3
    summary = sync(api, con["id"])
    assert summary and summary["pushed"] == 3 and summary["pulled"] == 0, summary
    remote = _remote(cal)
    assert set(remote) == {"phone-a", booked["ical_uid"]}
    a = remote["phone-a"].icalendar_component
    assert str(a["SUMMARY"]) == "Dentist (moved)"
    assert a.decoded("DTSTART") == datetime(2026, 1, 5, 10, tzinfo=ZoneInfo("UTC"))
    assert str(remote[booked["ical_uid"]].icalendar_component["SUMMARY"]) == "Booked by agent"
    after = api.get(f"/v1/calendars/{cal_id}/events/{booked['id']}").json()
    assert after["remote"]["href"].endswith(".ics") and after["remote"]["etag"]
    # nothing echoes back: an idle round changes nothing
    summary = sync(api, con["id"])
    assert summary and (summary["pulled"], summary["pushed"], summary["conflicts"]) == (0, 0, 0)
    # remote side: edit and delete
    ev = remote["phone-a"]
    comp = ev.icalendar_component
    comp["SUMMARY"] = "Dentist (phone edit)"
    ev.save()
    remote[booked["ical_uid"]].delete()
    cal.save_event(vevent("phone-c", "New on the phone", "20260108T090000Z", "20260108T100000Z"))
    summary = sync(api, con["id"])
    assert summary and summary["pulled"] == 3
    local = {e["ical_uid"]: e for e in events(api, cal_id)}
    assert set(local) == {"phone-a", "phone-c"} and local["phone-a"]["title"] == "Dentist (phone edit)"
    # webhooks: the first import of a calendar is quiet; later remote changes are announced
    sent = _webhooks(api)
    assert ("event.updated", "phone-a") in sent and ("event.deleted", booked["ical_uid"]) in sent
    assert ("event.created", "phone-c") in sent and ("event.created", "phone-b") not in sent
    got = api.get(f"/v1/connections/{con['id']}").json()
    assert got["last_synced_at"] and got["last_sync"]["finished_at"] and got["pending_pushes"] == 0


SERIES = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//phone//EN\r
BEGIN:VTIMEZONE\r
TZID:Europe/Berlin\r
BEGIN:STANDARD\r
DTSTART:19701025T030000\r
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r
TZOFFSETFROM:+0200\r
TZOFFSETTO:+0100\r
END:STANDARD\r
BEGIN:DAYLIGHT\r
DTSTART:19700329T020000\r
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r
TZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r
END:DAYLIGHT\r
END:VTIMEZONE\r
BEGIN:VEVENT\r
UID:series-1\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Europe/Berlin:20260316T090000\r
DTEND;TZID=Europe/Berlin:20260316T093000\r
RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6\r
EXDATE;TZID=Europe/Berlin:20260323T090000\r
SUMMARY:Standup\r
X-PHONE-COLOR:teal\r
BEGIN:VALARM\r
ACTION:DISPLAY\r
DESCRIPTION:Standup\r
TRIGGER:-PT10M\r
END:VALARM\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:series-1\r
DTSTAMP:20260101T000000Z\r
RECURRENCE-ID;TZID=Europe/Berlin:20260406T090000\r
DTSTART;TZID=Europe/Berlin:20260406T110000\r
DTEND;TZID=Europe/Berlin:20260406T113000\r
SUMMARY:Standup (late)\r
END:VEVENT\r
END:VCALENDAR\r
"""

ALL_DAY = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//phone//EN\r
BEGIN:VEVENT\r
UID:holiday-1\r
DTSTAMP:20260101T000000Z\r
DTSTART;VALUE=DATE:20260501\r
DTEND;VALUE=DATE:20260503\r
SUMMARY:Long weekend\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_recurrence_all_day_and_timezones_round_trip(api: Api, radicale: Radicale) -> None:
    cal, con, mapped, _ = _setup(api, radicale, tz="Europe/Berlin")
    cal_id = mapped["calendar_id"]
    assert api.get(f"/v1/calendars/{cal_id}").json()["timezone"] == "Europe/Berlin"
    cal.save_event(SERIES)
    cal.save_event(ALL_DAY)
    sync(api, con["id"])
    stored = {e["ical_uid"]: e for e in events(api, cal_id) if e["recurring_event_id"] is None}
    series, holiday = stored["series-1"], stored["holiday-1"]
    assert series["recurrence"] == ["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6", "EXDATE:20260323T080000Z"]  # the codec's form
    assert series["reminders"] == [10] and holiday["reminders"] is None
    assert holiday["all_day"] is True and (holiday["start_date"], holiday["end_date"]) == ("2026-05-01", "2026-05-03")
    # expanded: DST on 29 March keeps 09:00 Berlin; 23 March excluded; 6 April moved to 11:00
    window = api.get(
        f"/v1/calendars/{cal_id}/events",
        params={"start_after": "2026-03-01T00:00:00Z", "start_before": "2026-05-01T00:00:00Z", "limit": 50},
    ).json()["data"]
    starts = sorted(e["start_time"] for e in window if e["ical_uid"] == "series-1")
    assert starts == [
        "2026-03-16T08:00:00Z",
        "2026-03-30T07:00:00Z",
        "2026-04-06T09:00:00Z",
        "2026-04-13T07:00:00Z",
        "2026-04-20T07:00:00Z",
    ], starts
    moved = next(e for e in window if e["start_time"] == "2026-04-06T09:00:00Z")
    assert moved["title"] == "Standup (late)" and moved["recurring_event_id"] == series["id"]
    # a local edit of the series goes back without losing what Chronary does not model
    r = api.patch(f"/v1/calendars/{cal_id}/events/{series['id']}", json={"title": "Team standup"})
    assert r.status_code == 200
    r = api.patch(f"/v1/calendars/{cal_id}/events/{holiday['id']}", json={"title": "Long weekend!", "reminders": [1440]})
    assert r.status_code == 200
    summary = sync(api, con["id"])
    assert summary and summary["pushed"] == 2
    remote = _remote(cal)
    back = icalendar.Calendar.from_ical(remote["series-1"].data)
    master = next(c for c in back.walk("VEVENT") if "RECURRENCE-ID" not in c)
    override = next(c for c in back.walk("VEVENT") if "RECURRENCE-ID" in c)
    assert str(master["SUMMARY"]) == "Team standup"
    assert master["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert master.decoded("DTSTART") == datetime(2026, 3, 16, 9, tzinfo=ZoneInfo("Europe/Berlin"))
    assert master["RRULE"].to_ical() == b"FREQ=WEEKLY;COUNT=6;BYDAY=MO"
    assert [d.dt for d in master["EXDATE"].dts] == [datetime(2026, 3, 23, 9, tzinfo=ZoneInfo("Europe/Berlin"))]
    assert str(master["X-PHONE-COLOR"]) == "teal" and master.walk("VALARM")
    assert override.decoded("RECURRENCE-ID") == datetime(2026, 4, 6, 9, tzinfo=ZoneInfo("Europe/Berlin"))
    assert str(override["SUMMARY"]) == "Standup (late)"
    assert override.decoded("DTSTART") == datetime(2026, 4, 6, 11, tzinfo=ZoneInfo("Europe/Berlin"))
    day = remote["holiday-1"].icalendar_component
    assert day.decoded("DTSTART") == date(2026, 5, 1) and day.decoded("DTEND") == date(2026, 5, 3)
    assert str(day["SUMMARY"]) == "Long weekend!"
    assert [a.decoded("TRIGGER") for a in day.walk("VALARM")] == [timedelta(days=-1)]
    # the next pull re-reads both unchanged: still one series, one exception, one all-day event
    summary = sync(api, con["id"])
    assert summary and summary["pulled"] == 0
    rows = api.runtime.db.read_sync(
        lambda tx: list(
            tx.conn.execute(
                "SELECT ical_uid, recurring_event_id IS NOT NULL AS exc FROM events WHERE calendar_id = ? ORDER BY 1, 2",
                (cal_id,),
            )
        )
    )
    assert [(r["ical_uid"], r["exc"]) for r in rows] == [("holiday-1", 0), ("series-1", 0), ("series-1", 1)]


def test_local_all_day_and_recurring_events_push(api: Api, radicale: Radicale) -> None:
    cal, con, mapped, _ = _setup(api, radicale, tz="America/New_York")
    cal_id = mapped["calendar_id"]
    day = api.event(cal_id, "2026-07-03", "2026-07-04", title="Holiday", all_day=True)
    weekly = api.event(
        cal_id, "2026-03-02T14:00:00Z", "2026-03-02T15:00:00Z", title="Weekly", recurrence=["RRULE:FREQ=WEEKLY;COUNT=3"]
    )
    sync(api, con["id"])
    remote = _remote(cal)
    d = remote[day["ical_uid"]].icalendar_component
    assert d.decoded("DTSTART") == date(2026, 7, 3) and d.decoded("DTEND") == date(2026, 7, 4)
    w = remote[weekly["ical_uid"]].icalendar_component
    assert w["RRULE"].to_ical() == b"FREQ=WEEKLY;COUNT=3"
    assert w.decoded("DTSTART") == datetime(2026, 3, 2, 14, tzinfo=ZoneInfo("UTC"))
    # pulling them back changes nothing
    summary = sync(api, con["id"])
    assert summary and (summary["pulled"], summary["pushed"]) == (0, 0)
    again = {e["id"]: e for e in events(api, cal_id)}
    assert again[day["id"]]["start_date"] == "2026-07-03"
    assert again[weekly["id"]]["recurrence"] == ["RRULE:FREQ=WEEKLY;COUNT=3"]


def test_read_only_remote_calendar(api: Api, radicale: Radicale) -> None:
    """Radicale's rights make a calendar read-only for the user; its current-user-privilege-set
    then lists only read privileges, which the provider parses into read_only."""
    cal, con, _, user = _setup(api, radicale)
    path = radicale.make_read_only_calendar(user, "Shared", {"ro-1.ics": vevent("ro-1", "Shared")})
    listed = {c["remote_id"]: c for c in api.get(f"/v1/connections/{con['id']}?expand[]=calendars").json()["calendars"]}
    assert path not in listed  # discovered on the next round
    sync(api, con["id"])
    listed = {c["remote_id"]: c for c in api.get(f"/v1/connections/{con['id']}?expand[]=calendars").json()["calendars"]}
    assert listed[path]["read_only"] is True and listed[f"/{user}/work/"]["read_only"] is False
    r = api.patch(f"/v1/connections/{con['id']}", json={"calendars": [{"remote_id": path, "sync": True}]})
    assert r.status_code == 200, r.text
    mapped = next(c for c in r.json()["calendars"] if c["remote_id"] == path)
    sync(api, con["id"])
    (ev,) = events(api, mapped["calendar_id"])
    assert ev["read_only"] is True
    r = api.patch(f"/v1/calendars/{mapped['calendar_id']}/events/{ev['id']}", json={"title": "x"})
    assert r.status_code == 403
    assert ev["title"] == "Shared" and ev["source"] == "caldav"
    # a local event there stays local: nothing is queued for a calendar we may not write
    local = api.post(
        f"/v1/calendars/{mapped['calendar_id']}/events",
        json={"title": "Mine", "start_time": "2026-03-04T09:00:00Z", "end_time": "2026-03-04T10:00:00Z"},
    )
    assert local.status_code == 201, local.text
    assert api.get(f"/v1/connections/{con['id']}").json()["pending_pushes"] == 0


def test_remote_calendar_deleted_on_the_account(api: Api, radicale: Radicale) -> None:
    cal, con, mapped, user = _setup(api, radicale)
    other = radicale.make_calendar(user, "other", "Other")
    cal.save_event(vevent("gone-1", "Survives locally"))
    sync(api, con["id"])
    other.delete()
    # an account that suddenly lists no calendars at all is a glitch until proven otherwise
    cal.delete()
    summary = sync(api, con["id"])
    assert summary and "listed no calendars" in summary["error"]
    assert events(api, mapped["calendar_id"])[0]["remote"] is not None
    radicale.make_calendar(user, "other", "Other")
    summary = sync(api, con["id"])
    assert summary and summary["error"] is None
    got = api.get(f"/v1/connections/{con['id']}", params={"expand[]": "calendars"}).json()
    assert [c["remote_id"] for c in got["calendars"]] == [f"/{user}/other/"] and got["status"] == "active"
    (ev,) = events(api, mapped["calendar_id"])
    assert ev["title"] == "Survives locally" and ev["remote"] is None and ev["source"] == "internal"


def test_holds_go_out_tentative_and_stay_holds(api: Api, radicale: Radicale) -> None:
    cal, con, mapped, _ = _setup(api, radicale)
    cal_id = mapped["calendar_id"]
    r = api.post(
        f"/v1/calendars/{cal_id}/events",
        json={"title": "Maybe", "start_time": "2026-06-01T09:00:00Z", "end_time": "2026-06-01T10:00:00Z", "status": "hold"},
    )
    assert r.status_code == 201, r.text
    hold = r.json()
    sync(api, con["id"])
    (remote,) = cal.get_events()
    assert str(remote.icalendar_component["STATUS"]) == "TENTATIVE"
    remote.icalendar_component["SUMMARY"] = "Maybe (renamed on phone)"
    remote.save()
    summary = sync(api, con["id"])
    assert summary and summary["pulled"] == 1
    got = api.get(f"/v1/calendars/{cal_id}/events/{hold['id']}").json()
    assert got["status"] == "hold" and got["title"] == "Maybe (renamed on phone)" and got["hold_expires_at"]
