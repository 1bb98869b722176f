"""Series made in Chronary reach CalDAV with the calendar's TZID and a VTIMEZONE, so the
server and the phone repeat them on the same wall-clock time as the API across DST changes;
instants a local time cannot name unambiguously go out in UTC (issue 11, item 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from chronary.timeutil import to_ts
from tests.conftest import Api
from tests.sync import codec as convert
from tests.sync.conftest import Radicale, sync
from tests.sync.test_sync_roundtrip import _remote, _setup

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 12, 1, tzinfo=UTC)
WINDOW = (datetime(2027, 2, 1, tzinfo=UTC), datetime(2027, 12, 31, tzinfo=UTC))


def _z(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _api_starts(api: Api, cal_id: str, series_id: str) -> list[str]:
    r = api.get(
        f"/v1/calendars/{cal_id}/events",
        params={"start_after": _z(WINDOW[0]), "start_before": _z(WINDOW[1]), "limit": 200},
    )
    assert r.status_code == 200, r.text
    return sorted(e["start_time"] for e in r.json()["data"] if e["recurring_event_id"] == series_id)


def _server_starts(cal: Any, uid: str) -> list[str]:
    """Radicale's own CALDAV:expand over the window (each instance comes back in UTC)."""
    found = cal.search(start=WINDOW[0], end=WINDOW[1], event=True, expand=True, server_expand=True)
    comps = [c for obj in found for c in icalendar.Calendar.from_ical(obj.data).walk("VEVENT") if str(c["UID"]) == uid]
    assert comps and all("RRULE" not in c for c in comps)  # expanded instances, not the series
    return sorted(_z(c.decoded("DTSTART")) for c in comps)


def _vtimezone_rdate_lines(text: str) -> list[str]:
    unfolded = text.replace("\r\n", "\n").replace("\n ", "").replace("\n\t", "")
    lines = unfolded.split("\n")
    start, end = lines.index("BEGIN:VTIMEZONE"), lines.index("END:VTIMEZONE")
    return [line for line in lines[start:end] if line.startswith("RDATE")]


def test_weekly_series_expands_on_radicale_like_the_api_across_both_dst_changes(api: Api, radicale: Radicale) -> None:
    cal, con, mapped, _ = _setup(api, radicale, tz="Europe/Berlin")
    cal_id = mapped["calendar_id"]
    series = api.event(
        cal_id,
        "2027-03-01T09:00:00+01:00",
        "2027-03-01T09:30:00+01:00",
        title="Standup",
        recurrence=["RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20271130T230000Z"],
    )
    single = api.event(cal_id, "2027-07-14T12:00:00+02:00", "2027-07-14T13:00:00+02:00", title="Lunch")
    summary = sync(api, con["id"])
    assert summary and summary["pushed"] == 2 and summary["error"] is None, summary

    expected = _api_starts(api, cal_id, series["id"])
    assert len(expected) == 40
    # 09:00 in Berlin throughout: 08:00Z in winter, 07:00Z in summer (DST 28 March – 31 October)
    for instant in ("2027-03-22T08:00:00Z", "2027-03-29T07:00:00Z", "2027-10-25T07:00:00Z", "2027-11-01T08:00:00Z"):
        assert instant in expected

    remote = _remote(cal)
    text = remote[series["ical_uid"]].data
    stored = icalendar.Calendar.from_ical(text)
    (master,) = stored.walk("VEVENT")
    assert master["DTSTART"].params["TZID"] == "Europe/Berlin" and master["DTEND"].params["TZID"] == "Europe/Berlin"
    assert master.decoded("DTSTART") == datetime(2027, 3, 1, 9, tzinfo=BERLIN)
    assert [str(z["TZID"]) for z in stored.walk("VTIMEZONE")] == ["Europe/Berlin"]
    assert all("," not in line for line in _vtimezone_rdate_lines(text))
    one = remote[single["ical_uid"]].icalendar_component
    assert one["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert one.decoded("DTSTART") == datetime(2027, 7, 14, 12, tzinfo=BERLIN)

    # the server's own expansion and a client library's over the stored text agree with the API
    assert _server_starts(cal, series["ical_uid"]) == expected
    client = recurring_ical_events.of(stored).between(WINDOW[0], WINDOW[1])
    assert sorted(_z(ev.decoded("DTSTART")) for ev in client) == expected

    # the pushed body pulls back as what was pushed: nothing to merge, nothing to push
    summary = sync(api, con["id"])
    assert summary and (summary["pulled"], summary["pushed"]) == (0, 0), summary
    assert _api_starts(api, cal_id, series["id"]) == expected


def test_overrides_and_exdates_of_a_series_carry_its_tzid(api: Api, radicale: Radicale) -> None:
    cal, con, mapped, _ = _setup(api, radicale, tz="Europe/Berlin")
    cal_id = mapped["calendar_id"]
    base = f"/v1/calendars/{cal_id}/events"
    series = api.event(
        cal_id,
        "2027-03-01T09:00:00+01:00",
        "2027-03-01T09:30:00+01:00",
        title="Standup",
        recurrence=["RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20271130T230000Z", "EXDATE:20270308T080000Z"],
    )
    # a summer occurrence moved to 11:00 local
    moved = api.patch(
        f"{base}/{series['id']}_20270607T070000Z",
        json={"start_time": "2027-06-07T11:00:00+02:00", "end_time": "2027-06-07T11:30:00+02:00"},
    )
    assert moved.status_code == 200, moved.text
    sync(api, con["id"])
    stored = icalendar.Calendar.from_ical(_remote(cal)[series["ical_uid"]].data)
    master = next(c for c in stored.walk("VEVENT") if "RECURRENCE-ID" not in c)
    override = next(c for c in stored.walk("VEVENT") if "RECURRENCE-ID" in c)
    assert master["EXDATE"].params["TZID"] == "Europe/Berlin"
    assert [d.dt for d in master["EXDATE"].dts] == [datetime(2027, 3, 8, 9, tzinfo=BERLIN)]
    assert override["RECURRENCE-ID"].params["TZID"] == "Europe/Berlin"
    assert override.decoded("RECURRENCE-ID") == datetime(2027, 6, 7, 9, tzinfo=BERLIN)
    assert override["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert override.decoded("DTSTART") == datetime(2027, 6, 7, 11, tzinfo=BERLIN)
    expected = _api_starts(api, cal_id, series["id"])
    assert "2027-03-08T08:00:00Z" not in expected and "2027-06-07T09:00:00Z" in expected
    assert _server_starts(cal, series["ical_uid"]) == expected


# -- the converter on its own ---------------------------------------------------------------------


def _row(start: datetime, end: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "id": "evt_x",
        "ical_uid": "x@chronary",
        "title": "Meeting",
        "description": None,
        "location": None,
        "start_ts": to_ts(start),
        "end_ts": to_ts(end),
        "all_day": False,
        "status": "confirmed",
        "recurrence": None,
        "attendees": [],
        "sequence": 0,
        "recurring_event_id": None,
        "recurrence_id_ts": None,
        "source": "internal",
        "remote": None,
        **fields,
    }


def _zoned(prop: Any) -> bool:
    return prop.params.get("TZID") == "Europe/Berlin"


def test_values_in_the_repeated_hour_go_out_by_their_role() -> None:
    # 31 October 2027, Berlin: 02:30 happens twice (00:30Z in CEST, then 01:30Z in CET)
    first, second = datetime(2027, 10, 31, 0, 30, tzinfo=UTC), datetime(2027, 10, 31, 1, 30, tzinfo=UTC)
    later = datetime(2027, 10, 31, 2, 30, tzinfo=UTC)  # 03:30 CET: one instant only
    # instants of a single event: UTC in the repeated hour, whichever pass; TZID otherwise
    (ev,) = icalendar.Calendar.from_ical(convert.build(_row(first, later), [], BERLIN, None, NOW)).walk("VEVENT")
    assert not _zoned(ev["DTSTART"]) and ev.decoded("DTSTART") == first
    assert _zoned(ev["DTEND"]) and ev.decoded("DTEND") == later
    (ev,) = icalendar.Calendar.from_ical(convert.build(_row(second, later), [], BERLIN, None, NOW)).walk("VEVENT")
    assert not _zoned(ev["DTSTART"]) and ev.decoded("DTSTART") == second
    # a daily 02:30 series: Chronary (like RFC 5545) puts its 31 October occurrence in the first pass
    day = 86400
    series = _row(
        first - timedelta(days=1),
        first - timedelta(days=1) + timedelta(minutes=30),
        recurrence=["RRULE:FREQ=DAILY;COUNT=4", "EXDATE:20271031T003000Z,20271031T013000Z", "RDATE:20271031T013000Z"],
    )
    moved = _row(
        second,
        second + timedelta(minutes=30),
        id="evt_x_20271101T013000Z",
        recurring_event_id="evt_x",
        recurrence_id_ts=to_ts(first) + day + 3600,  # 1 November 02:30 CET
    )
    text = convert.build(series, [moved], BERLIN, None, NOW)
    cal = icalendar.Calendar.from_ical(text)
    master = next(c for c in cal.walk("VEVENT") if "RECURRENCE-ID" not in c)
    override = next(c for c in cal.walk("VEVENT") if "RECURRENCE-ID" in c)
    assert _zoned(master["DTSTART"]) and master["DTSTART"].to_ical() == b"20271030T023000"
    # EXDATE names occurrences: the first pass as the wall-clock time a reader generates, the second in UTC
    exdates = {_zoned(p): [to_ts(d.dt) for d in p.dts] for p in master["EXDATE"]}  # an ambiguous local
    assert exdates == {True: [to_ts(first)], False: [to_ts(second)]}  # datetime never == another zone's
    assert not _zoned(master["RDATE"]) and [d.dt for d in master["RDATE"].dts] == [second]
    assert _zoned(override["RECURRENCE-ID"]) and override["RECURRENCE-ID"].to_ical() == b"20271101T023000"
    assert not _zoned(override["DTSTART"]) and override.decoded("DTSTART") == second
    back = convert.parse(text, BERLIN)
    assert (
        back
        and back.master
        and sorted(back.master.recurrence or [])
        == [
            "EXDATE:20271031T003000Z",
            "EXDATE:20271031T013000Z",
            "RDATE:20271031T013000Z",
            "RRULE:FREQ=DAILY;COUNT=4",
        ]
    )
    assert [o.recurrence_id_ts for o in back.overrides] == [moved["recurrence_id_ts"]]
    # a series starting in the second pass keeps its wall-clock DTSTART (the RRULE repeats it)
    late = _row(second, second + timedelta(minutes=30), recurrence=["RRULE:FREQ=DAILY;COUNT=2"])
    (ev,) = icalendar.Calendar.from_ical(convert.build(late, [], BERLIN, None, NOW)).walk("VEVENT")
    assert _zoned(ev["DTSTART"]) and ev["DTSTART"].to_ical() == b"20271031T023000"


def test_utc_calendars_stay_utc_and_until_becomes_utc() -> None:
    start = datetime(2027, 3, 1, 9, tzinfo=UTC)
    (ev,) = icalendar.Calendar.from_ical(
        convert.build(_row(start, start.replace(hour=10)), [], ZoneInfo("UTC"), None, NOW)
    ).walk("VEVENT")
    assert "TZID" not in ev["DTSTART"].params and ev.decoded("DTSTART") == start
    cal = icalendar.Calendar.from_ical(
        convert.build(
            _row(start, start.replace(hour=10), recurrence=["RRULE:FREQ=WEEKLY;UNTIL=20270401"]), [], BERLIN, None, NOW
        )
    )
    (ev,) = cal.walk("VEVENT")
    # a date UNTIL is local midnight in the series' zone, written in UTC as RFC 5545 requires
    assert ev["RRULE"].to_ical() == b"FREQ=WEEKLY;UNTIL=20270331T220000Z"


def test_chronary_body_once_pushed_in_utc_moves_to_the_calendars_tzid() -> None:
    start = datetime(2027, 3, 1, 8, tzinfo=UTC)
    old = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Chronary//Sync//EN\r\nBEGIN:VEVENT\r\nUID:x@chronary\r\n"
        "DTSTAMP:20261101T000000Z\r\nSEQUENCE:0\r\nDTSTART:20270301T080000Z\r\nDTEND:20270301T090000Z\r\n"
        "RRULE:FREQ=WEEKLY;COUNT=40\r\nSUMMARY:Meeting\r\nSTATUS:CONFIRMED\r\nTRANSP:OPAQUE\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:x@chronary\r\nDTSTAMP:20261101T000000Z\r\nRECURRENCE-ID:20270607T070000Z\r\n"
        "DTSTART:20270607T090000Z\r\nDTEND:20270607T100000Z\r\nSUMMARY:Meeting\r\nSTATUS:CONFIRMED\r\n"
        "TRANSP:OPAQUE\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    master = _row(start, start.replace(hour=9), recurrence=["RRULE:FREQ=WEEKLY;COUNT=40"])
    rid = datetime(2027, 6, 7, 7, tzinfo=UTC)
    exc = _row(
        rid.replace(hour=9),
        rid.replace(hour=10),
        id="evt_x_20270607T070000Z",
        recurring_event_id="evt_x",
        recurrence_id_ts=to_ts(rid),
    )
    cal = icalendar.Calendar.from_ical(convert.build(master, [exc], BERLIN, old, NOW))
    comps = {("RECURRENCE-ID" in c): c for c in cal.walk("VEVENT")}
    assert comps[False]["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert comps[True]["RECURRENCE-ID"].params["TZID"] == "Europe/Berlin"
    assert comps[True].decoded("RECURRENCE-ID") == rid
    assert [str(z["TZID"]) for z in cal.walk("VTIMEZONE")] == ["Europe/Berlin"]
    # a remote event written in UTC keeps UTC, even when its times change here
    remote = {**master, "source": "caldav", "start_ts": master["start_ts"] + 3600, "end_ts": master["end_ts"] + 3600}
    kept = icalendar.Calendar.from_ical(convert.build(remote, [exc], BERLIN, old, NOW))
    ev = next(c for c in kept.walk("VEVENT") if "RECURRENCE-ID" not in c)
    assert "TZID" not in ev["DTSTART"].params and ev.decoded("DTSTART") == start.replace(hour=9)
    assert not kept.walk("VTIMEZONE")


def test_remote_tzid_and_its_vtimezone_are_kept() -> None:
    vtz = (
        "BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\nX-FROM-THE-PHONE:yes\r\nBEGIN:STANDARD\r\n"
        "DTSTART:19701101T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nTZOFFSETFROM:-0400\r\n"
        "TZOFFSETTO:-0500\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700308T020000\r\n"
        "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nEND:DAYLIGHT\r\n"
        "END:VTIMEZONE\r\n"
    )
    old = (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//phone//EN\r\n{vtz}BEGIN:VEVENT\r\nUID:ny\r\n"
        "DTSTAMP:20261101T000000Z\r\nDTSTART;TZID=America/New_York:20270301T090000\r\n"
        "DTEND;TZID=America/New_York:20270301T100000\r\nRRULE:FREQ=WEEKLY;COUNT=5\r\nSUMMARY:NY\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    ny = ZoneInfo("America/New_York")
    start = datetime(2027, 3, 1, 10, tzinfo=ny)  # moved an hour later here, in a Berlin calendar
    row = _row(
        start,
        start.replace(hour=11),
        ical_uid="ny",
        title="NY",
        source="caldav",
        recurrence=["RRULE:FREQ=WEEKLY;COUNT=5", "EXDATE:20270308T150000Z"],
    )
    cal = icalendar.Calendar.from_ical(convert.build(row, [], BERLIN, old, NOW))
    (ev,) = cal.walk("VEVENT")
    assert ev["DTSTART"].params["TZID"] == "America/New_York" and ev.decoded("DTSTART") == start
    assert ev["EXDATE"].params["TZID"] == "America/New_York"
    assert [d.dt for d in ev["EXDATE"].dts] == [datetime(2027, 3, 8, 10, tzinfo=ny)]
    (zone,) = cal.walk("VTIMEZONE")
    assert str(zone["X-FROM-THE-PHONE"]) == "yes"  # theirs, not one built here
