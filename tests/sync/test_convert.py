"""The VEVENT ↔ event-row converter on the shapes real servers send (no server needed)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import icalendar

from chronary.timeutil import to_ts
from tests.sync import codec as convert

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _cal(*lines: str, extra: str = "") -> str:
    body = "\r\n".join(lines)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n{extra}BEGIN:VEVENT\r\n{body}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"


def test_duration_floating_and_missing_end() -> None:
    tz = ZoneInfo("Europe/Paris")
    res = convert.parse(_cal("UID:d", "DTSTART:20260105T090000", "DURATION:PT90M", "SUMMARY:Floating"), tz)
    assert res and res.master
    assert res.master.start_ts == to_ts(datetime(2026, 1, 5, 9, tzinfo=tz))
    assert res.master.end_ts - res.master.start_ts == 90 * 60
    day = convert.parse(_cal("UID:e", "DTSTART;VALUE=DATE:20260105"), tz)
    assert day and day.master and day.master.all_day and day.master.title == "(no title)"
    assert day.master.end_ts - day.master.start_ts == 86400


def test_override_without_master_and_tasks() -> None:
    only = convert.parse(
        _cal(
            "UID:o",
            "RECURRENCE-ID:20260105T090000Z",
            "DTSTART:20260105T100000Z",
            "DTEND:20260105T110000Z",
            "SUMMARY:One occurrence",
        ),
        ZoneInfo("UTC"),
    )
    assert only and only.master and only.master.title == "One occurrence" and only.overrides == []
    assert only.master.recurrence_id_ts is None
    todo = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:t\r\nSUMMARY:x\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
    )
    assert convert.parse(todo, ZoneInfo("UTC")) is None


def test_custom_vtimezone_and_unchanged_fields_survive_a_build() -> None:
    vtz = (
        "BEGIN:VTIMEZONE\r\nTZID:Custom Zone\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:+0300\r\n"
        "TZOFFSETTO:+0300\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    )
    text = _cal(
        "UID:c",
        "DTSTAMP:20250101T000000Z",
        "DTSTART;TZID=Custom Zone:20260105T090000",
        "DTEND;TZID=Custom Zone:20260105T100000",
        "SUMMARY:Odd zone",
        "CATEGORIES:work",
        "ATTENDEE;CN=Ann;PARTSTAT=ACCEPTED:mailto:ann@example.com",
        extra=vtz,
    )
    tz = ZoneInfo("UTC")
    res = convert.parse(text, tz)
    assert res and res.master and res.master.start_ts == to_ts(datetime(2026, 1, 5, 6, tzinfo=UTC))
    row = {
        "ical_uid": "c",
        "title": "Renamed",
        "description": None,
        "location": None,
        "start_ts": res.master.start_ts,
        "end_ts": res.master.end_ts,
        "all_day": False,
        "status": "confirmed",
        "recurrence": None,
        "attendees": res.master.attendees,
        "sequence": 0,
        "recurring_event_id": None,
    }
    out = icalendar.Calendar.from_ical(convert.build(row, [], tz, text, NOW))
    (ev,) = out.walk("VEVENT")
    assert str(ev["SUMMARY"]) == "Renamed" and ev["DTSTART"].params["TZID"] == "Custom Zone"
    assert ev["ATTENDEE"].params["PARTSTAT"] == "ACCEPTED"  # untouched attendee keeps its params
    assert "CATEGORIES" in ev and len(out.walk("VTIMEZONE")) == 1
    assert int(ev["SEQUENCE"]) == 1 and ev.decoded("LAST-MODIFIED") == NOW
    # nothing changed → the base is kept as it was (no new DTSTAMP/SEQUENCE)
    same = {**row, "title": "Odd zone"}
    (kept,) = icalendar.Calendar.from_ical(convert.build(same, [], tz, text, NOW)).walk("VEVENT")
    assert "SEQUENCE" not in kept and kept.decoded("DTSTAMP") == datetime(2025, 1, 1, tzinfo=UTC)


def test_status_and_moved_times_for_new_events() -> None:
    tz = ZoneInfo("America/New_York")
    row = {
        "ical_uid": "n@chronary",
        "title": "Hold",
        "description": "d",
        "location": "l",
        "start_ts": to_ts(datetime(2026, 3, 9, 14, tzinfo=UTC)),
        "end_ts": to_ts(datetime(2026, 3, 9, 15, tzinfo=UTC)),
        "all_day": False,
        "status": "hold",
        "recurrence": ["RRULE:FREQ=DAILY;COUNT=2", "EXDATE:20260310T140000Z"],
        "attendees": [{"email": "a@example.com", "name": None, "agent_id": "agt_x"}],
        "sequence": 3,
        "recurring_event_id": None,
    }
    (ev,) = icalendar.Calendar.from_ical(convert.build(row, [], tz, None, NOW)).walk("VEVENT")
    assert str(ev["STATUS"]) == "TENTATIVE" and str(ev["UID"]) == "n@chronary" and int(ev["SEQUENCE"]) == 3
    assert ev["RRULE"].to_ical() == b"FREQ=DAILY;COUNT=2" and [d.dt for d in ev["EXDATE"].dts] == [
        datetime(2026, 3, 10, 14, tzinfo=UTC)
    ]
    back = convert.parse(icalendar.Calendar.from_ical(convert.build(row, [], tz, None, NOW)).to_ical().decode(), tz)
    assert back and back.master and back.master.recurrence == row["recurrence"]
    assert back.master.attendees == [{"email": "a@example.com", "name": None, "agent_id": None}]
