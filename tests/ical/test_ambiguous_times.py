"""Issue 11: feed instants in a repeated (or skipped) local hour, read back by real readers.

A local time in the hour a DST end repeats names two instants; RFC 5545 reads the TZID form as
the first, Mozilla ical.js as the second. The feed must give every reader the instants the API
gives: each event and occurrence is compared with the API's windowed list, reading the feed with
icalendar + recurring_ical_events (zoneinfo for the TZID) and again with the feed's own VTIMEZONE
(through dateutil's tzical, as khal and icalendar do for zones they do not know).
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events

from chronary.clock import ManualClock
from chronary.ical import render
from tests.ical.conftest import feed_path, parse

BERLIN = ZoneInfo("Europe/Berlin")
WINDOW = (datetime(2026, 6, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC))
OWN_TZID = "Chronary-Test/Berlin"  # a TZID no library knows, so readers must use the feed's VTIMEZONE


def _z(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _api_instants(api: Any, cid: str) -> Counter[tuple[str, datetime, datetime]]:
    out: Counter[tuple[str, datetime, datetime]] = Counter()
    offset = 0
    while True:
        params = {"start_after": _z(WINDOW[0]), "start_before": _z(WINDOW[1]), "limit": 200, "offset": offset}
        r = api.get(f"/v1/calendars/{cid}/events", params=params)
        assert r.status_code == 200, r.text
        items = r.json()["data"]
        for ev in items:
            if ev["status"] != "cancelled":
                start = datetime.fromisoformat(ev["start_time"].replace("Z", "+00:00"))
                end = datetime.fromisoformat(ev["end_time"].replace("Z", "+00:00"))
                out[(ev["title"], start, end)] += 1
        if len(items) < 200:
            return out
        offset += 200


def _feed_instants(cal: icalendar.Calendar) -> Counter[tuple[str, datetime, datetime]]:
    out: Counter[tuple[str, datetime, datetime]] = Counter()
    # recurring_ical_events first applies x_wr_timezone, which rewrites every UTC value into
    # X-WR-TIMEZONE local time; its expansion then loses which pass of a repeated hour a time
    # was (fold), so 01:30Z would come back as 00:30Z whatever the feed says. Read as written.
    cal = copy.deepcopy(cal)
    cal.pop("X-WR-TIMEZONE")
    for occ in recurring_ical_events.of(cal).between(*WINDOW):
        start, end = occ.decoded("DTSTART"), occ.decoded("DTEND")
        assert isinstance(start, datetime) and start.tzinfo is not None
        out[(str(occ["SUMMARY"]), start.astimezone(UTC), end.astimezone(UTC))] += 1
    return out


def _make_feed(make_api: Any) -> tuple[Any, dict[str, Any], bytes]:
    api = make_api(clock=ManualClock(datetime(2026, 7, 1, tzinfo=UTC)))
    cal = api.calendar(name="Berlin", timezone="Europe/Berlin")
    cid = cal["id"]
    # a weekly 10:00 series through 2030: wall-clock time across every DST change
    weekly = api.event(
        cid,
        "2026-07-06T10:00:00+02:00",
        "2026-07-06T11:00:00+02:00",
        title="Weekly",
        recurrence=["RRULE:FREQ=WEEKLY;UNTIL=20301231T230000Z"],
    )
    # one cancelled occurrence (EXDATE) in winter, one moved occurrence (RECURRENCE-ID) in summer
    assert api.delete(f"/v1/calendars/{cid}/events/{weekly['id']}_20271108T090000Z").status_code == 204
    moved = api.patch(
        f"/v1/calendars/{cid}/events/{weekly['id']}_20280605T080000Z",
        json={"start_time": "2028-06-05T15:00:00Z", "end_time": "2028-06-05T16:00:00Z"},
    )
    assert moved.status_code == 200, moved.text
    # the two passes of 02:30 on the DST-end night, and the hours around both changes of 2027
    for start, end in [
        ("2027-10-31T00:30:00Z", "2027-10-31T01:00:00Z"),  # 02:30 CEST (first pass)
        ("2027-10-31T01:30:00Z", "2027-10-31T02:00:00Z"),  # 02:30 CET (second pass)
        ("2027-10-31T00:00:00Z", "2027-10-31T02:00:00Z"),  # 02:00 CEST to 03:00 CET, both passes
        ("2027-10-30T23:30:00Z", "2027-10-31T03:30:00Z"),  # 01:30 CEST to 04:30 CET
        ("2027-03-28T00:30:00Z", "2027-03-28T01:30:00Z"),  # 01:30 CET to 03:30 CEST (over the gap)
        ("2027-03-28T01:00:00Z", "2027-03-28T02:00:00Z"),  # 03:00 to 04:00 CEST, just after the gap
    ]:
        api.event(cid, start, end, title=f"Single {start}")
    # a Sunday 02:30 series: its 2027-10-31 occurrence is in the repeated hour (changed by an
    # override, in its first pass as wall-clock expansion puts it), one in January is cancelled.
    # It stops before 2028-03-26, whose 02:30 does not exist: readers differ there (RFC 5545 and
    # zoneinfo use the offset before the gap, dateutil's tzical the one after) whatever is written.
    night = api.event(
        cid,
        "2027-10-24T02:30:00+02:00",
        "2027-10-24T03:00:00+02:00",
        title="Night",
        recurrence=["RRULE:FREQ=WEEKLY;BYDAY=SU;COUNT=20"],
    )
    override = api.patch(f"/v1/calendars/{cid}/events/{night['id']}_20271031T003000Z", json={"title": "Night moved"})
    assert override.status_code == 200, override.text
    assert api.delete(f"/v1/calendars/{cid}/events/{night['id']}_20280109T013000Z").status_code == 204
    # a series that starts in the second pass of the repeated hour (see render's module doc)
    api.event(
        cid,
        "2027-10-31T01:30:00Z",
        "2027-10-31T01:45:00Z",
        title="Second pass series",
        recurrence=["RRULE:FREQ=DAILY;COUNT=3"],
    )
    r = api.client.get(feed_path(cal))
    assert r.status_code == 200
    return api, cal, r.content


def test_feed_instants_equal_the_api_in_every_reader(make_api):
    api, cal, body = _make_feed(make_api)
    expected = _api_instants(api, cal["id"])
    assert expected[
        ("Single 2027-10-31T01:30:00Z", datetime(2027, 10, 31, 1, 30, tzinfo=UTC), datetime(2027, 10, 31, 2, tzinfo=UTC))
    ]
    assert sum(n for (title, *_), n in expected.items() if title == "Weekly") > 200

    # icalendar resolves TZID=Europe/Berlin with zoneinfo
    assert _feed_instants(parse(body)) == expected

    # the same feed under a TZID nobody knows: every local time goes through the feed's VTIMEZONE
    own = parse(body.replace(b"Europe/Berlin", OWN_TZID.encode()))
    assert [str(tz["TZID"]) for tz in own.walk("VTIMEZONE")] == [OWN_TZID]
    assert _feed_instants(own) == expected


def test_repeated_hour_values_are_written_in_utc(make_api):
    _, _, body = _make_feed(make_api)
    text = body.decode()
    lines = text.split("\r\n")
    # both passes of 02:30 as instants in UTC (ical.js reads a repeated TZID time as the second)
    assert "DTSTART:20271031T003000Z" in lines and "DTSTART:20271031T013000Z" in lines
    assert "DTEND:20271031T010000Z" in lines
    # the override of the Sunday series names its occurrence as readers generate it (TZID)
    assert "RECURRENCE-ID;TZID=Europe/Berlin:20271031T023000" in lines
    # a series master keeps TZID (its RRULE follows wall-clock time), even in the repeated hour
    assert lines.count("DTSTART;TZID=Europe/Berlin:20271031T023000") == 1
    assert "RRULE:FREQ=DAILY;COUNT=3" in text.split("DTSTART;TZID=Europe/Berlin:20271031T023000")[1].split("END:VEVENT")[0]
    # any other local value is outside the repeated hour
    for name, value in re.findall(r"^([A-Z-]+);TZID=Europe/Berlin:(\S+)$", text, re.M):
        for v in value.split(","):
            naive = datetime.strptime(v, "%Y%m%dT%H%M%S")
            if naive.replace(tzinfo=BERLIN, fold=0).utcoffset() != naive.replace(tzinfo=BERLIN, fold=1).utcoffset():
                assert (name, v) in {("DTSTART", "20271031T023000"), ("RECURRENCE-ID", "20271031T023000")}, (name, v)


def test_feed_vtimezone_is_the_rrule_form(make_api):
    _, _, body = _make_feed(make_api)
    text = body.decode()
    vtz = text[text.index("BEGIN:VTIMEZONE") : text.index("END:VTIMEZONE")]
    assert "RDATE" not in vtz
    observances = re.findall(r"BEGIN:(STANDARD|DAYLIGHT)\r\n(.*?)END:\1", vtz, re.S)
    rules = {(kind, props) for kind, props in observances if "RRULE" in props}
    # summer time starts at 02:00 CET and ends at 03:00 CEST: onsets in the local time before
    assert {(kind, re.sub(r"DTSTART:\d{8}", "DTSTART:", props)) for kind, props in rules} == {
        (
            "DAYLIGHT",
            "TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\nDTSTART:T020000\r\n"
            "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n",
        ),
        (
            "STANDARD",
            "TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\nDTSTART:T030000\r\n"
            "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n",
        ),
    }


def test_ambiguous_exdates_and_rdates_stay_exact():
    """Stored EXDATE/RDATE values and cancelled occurrences in the repeated hour: lines, then a reader."""
    fmt = render.time_format("Europe/Berlin", False)
    first, second = datetime(2027, 10, 31, 0, 30, tzinfo=UTC), datetime(2027, 10, 31, 1, 30, tzinfo=UTC)
    lines = render.recurrence_lines(
        [
            "RRULE:FREQ=DAILY;COUNT=5",
            "RDATE:20271031T013000Z,20271101T120000Z",
            "EXDATE;TZID=Europe/Berlin:20271030T023000",
        ],
        fmt,
        [int(first.timestamp()), int(second.timestamp())],
    )
    assert lines == [
        "RRULE:FREQ=DAILY;COUNT=5",
        "RDATE;TZID=Europe/Berlin:20271101T130000",
        "RDATE:20271031T013000Z",  # an instant in the repeated hour: UTC, on its own line
        "EXDATE;TZID=Europe/Berlin:20271030T023000",
        "EXDATE;TZID=Europe/Berlin:20271031T023000",  # the first pass: matches the RRULE's 02:30
        "EXDATE:20271031T013000Z",  # the second pass (the RDATE above): UTC, on its own line
    ]
    vevent = "\r\n".join(
        [
            "BEGIN:VEVENT",
            "UID:x",
            "DTSTAMP:20270101T000000Z",
            fmt.prop("DTSTART", int(datetime(2027, 10, 29, 0, 30, tzinfo=UTC).timestamp()), "series"),
            fmt.prop("DTEND", int(datetime(2027, 10, 29, 0, 45, tzinfo=UTC).timestamp()), "series"),
            *lines,
            "END:VEVENT",
        ]
    )
    cal = icalendar.Calendar.from_ical(f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n{vevent}\r\nEND:VCALENDAR\r\n")
    got = [
        o.decoded("DTSTART").astimezone(UTC)
        for o in recurring_ical_events.of(cal).between(datetime(2027, 10, 1, tzinfo=UTC), datetime(2027, 12, 1, tzinfo=UTC))
    ]
    assert sorted(got) == [
        datetime(2027, 10, 29, 0, 30, tzinfo=UTC),
        datetime(2027, 11, 1, 1, 30, tzinfo=UTC),
        datetime(2027, 11, 1, 12, tzinfo=UTC),
        datetime(2027, 11, 2, 1, 30, tzinfo=UTC),
    ]


@pytest.mark.parametrize("tzid", ["Europe/Berlin", "Australia/Lord_Howe", "Europe/Moscow", "Pacific/Apia"])
def test_utc_is_written_exactly_for_repeated_local_times(tzid):
    """Every 5 minutes (and the second before) near every offset change 2000–2040: the choice matches zoneinfo's
    folds, and every value written reads back as the instant it came from."""
    tz = ZoneInfo(tzid)
    fmt = render.time_format(tzid, False)
    start, end, step = (
        int(datetime(2000, 1, 1, tzinfo=UTC).timestamp()),
        int(datetime(2040, 1, 1, tzinfo=UTC).timestamp()),
        3 * 3600,
    )
    changes = [
        t
        for t in range(start, end, step)
        if datetime.fromtimestamp(t, tz).utcoffset() != datetime.fromtimestamp(t + step, tz).utcoffset()
    ]
    assert changes
    repeated_seen = 0
    for change in changes:
        for ts in (t + edge for t in range(change - step, change + 2 * step, 300) for edge in (-1, 0)):
            local = datetime.fromtimestamp(ts, tz)
            repeated = local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset()
            repeated_seen += repeated
            for role, want_utc in (("instant", repeated), ("occurrence", local.fold == 1), ("series", False)):
                name, _, value = fmt.prop("DTSTART", ts, role).partition(":")
                assert (name == "DTSTART") == want_utc, (tzid, ts, role)
                if want_utc:
                    assert value == datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M%SZ")
                    continue
                assert name == f"DTSTART;TZID={tzid}"
                naive = datetime.strptime(value, "%Y%m%dT%H%M%S")
                if role != "series":  # read as RFC 5545 says (the first pass), and by ical.js (the second) for an instant
                    assert int(naive.replace(tzinfo=tz).timestamp()) == ts, (tzid, ts, role)
                if role == "instant":
                    assert int(naive.replace(tzinfo=tz, fold=1).timestamp()) == ts, (tzid, ts)
    assert repeated_seen > 0
