"""The feed decoder: the fast reader agrees with icalendar, and falls back to it when unsure."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest

from chronary.ical import decode, fastparse
from chronary.ical.decode import decode_feed
from chronary.ical.model import CodecError, EventData
from tests.ical.feedserver import vcalendar, vevent

FIXTURES = Path(__file__).parent / "fixtures"


def _events(root, zone: ZoneInfo) -> list[EventData]:
    """Every decoded VEVENT of a parsed VCALENDAR (fast reader's or icalendar's), in order."""
    resources = decode._group(root, decode._zones(root, zone), True, None)
    return [piece for r in resources for piece in (r.master, *r.overrides)]


def parse_feed(body: bytes, zone: ZoneInfo) -> list[EventData]:
    return [piece for r in decode_feed(body, zone) for piece in (r.master, *r.overrides)]


CUSTOM_ZONE = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Legacy//EN\r
BEGIN:VTIMEZONE\r
TZID:Customized Time Zone\r
BEGIN:STANDARD\r
DTSTART:16010101T000000\r
TZOFFSETFROM:+0530\r
TZOFFSETTO:+0530\r
END:STANDARD\r
END:VTIMEZONE\r
BEGIN:VEVENT\r
UID:custom@test\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Customized Time Zone:20260302T090000\r
DTEND;TZID=Customized Time Zone:20260302T100000\r
SUMMARY:Custom zone\r
END:VEVENT\r
END:VCALENDAR\r
"""


@pytest.mark.parametrize("name", ["google", "outlook", "apple"])
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
def test_fast_reader_matches_icalendar(name, zone):
    body = (FIXTURES / f"{name}.ics").read_bytes()
    fast = _events(fastparse.parse(body.decode()), ZoneInfo(zone))
    slow = _events(icalendar.Calendar.from_ical(body), ZoneInfo(zone))
    assert fast == slow and len(fast) >= 4


def test_tricky_text_and_params_match():
    body = vcalendar(
        vevent(
            "t@test",
            "20260302T090000Z",
            "20260302T100000Z",
            "Emoji 😀\\, commas\\; semis \\\\ slash\\nnewline",
            'LOCATION;ALTREP="http://x.example/a:b;c":Room\\, 1',
            "DESCRIPTION:folded line that is long enough to be folded by the writer at se\r\n venty-five octets",
        )
    )
    fast = _events(fastparse.parse(body), ZoneInfo("UTC"))
    slow = _events(icalendar.Calendar.from_ical(body), ZoneInfo("UTC"))
    assert fast == slow
    assert fast[0].title == "Emoji 😀, commas; semis \\ slash\nnewline"
    assert fast[0].location == "Room, 1"
    assert fast[0].description.endswith("at seventy-five octets")


def test_unknown_vtimezone_falls_back_to_icalendar():
    with pytest.raises(fastparse.Unsupported):
        fastparse.parse(CUSTOM_ZONE)
    [item] = parse_feed(CUSTOM_ZONE.encode(), ZoneInfo("UTC"))
    assert datetime.fromtimestamp(item.start_ts, UTC) == datetime(2026, 3, 2, 3, 30, tzinfo=UTC)


def test_floating_times_use_x_wr_timezone_then_the_calendar_zone():
    floating = vevent("f@test", "20260302T090000", "20260302T100000", "Floating")
    [plain] = parse_feed(vcalendar(floating).encode(), ZoneInfo("Europe/Berlin"))
    assert datetime.fromtimestamp(plain.start_ts, UTC) == datetime(2026, 3, 2, 8, tzinfo=UTC)
    body = vcalendar(floating).replace("X-WR-CALNAME", "X-WR-TIMEZONE:America/New_York\r\nX-WR-CALNAME")
    [ny] = parse_feed(body.encode(), ZoneInfo("Europe/Berlin"))
    assert datetime.fromtimestamp(ny.start_ts, UTC) == datetime(2026, 3, 2, 14, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not iCalendar data"),
        (b"\xef\xbb\xbf<html><body>login</body></html>", "HTML page"),
        (vcalendar("UID:x@test\nSUMMARY:no start").encode(), "missing DTSTART"),
        (vcalendar(vevent("d@test", "20260230T090000Z", "20260230T100000Z", "Feb 30")).encode(), "invalid DTSTART"),
        (
            vcalendar(vevent("r@test", "20260302T090000Z", "20260302T100000Z", "R", "RRULE:FREQ=DAILY;BYHOUR=99")).encode(),
            "invalid recurrence",
        ),
    ],
)
def test_unimportable_feeds_raise_clear_errors(body, message):
    with pytest.raises(CodecError) as err:
        parse_feed(body, ZoneInfo("UTC"))
    assert message in str(err.value)
