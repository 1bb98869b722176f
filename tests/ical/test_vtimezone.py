"""Issue 11: VTIMEZONEs built from tzdata, read back by readers that know nothing about the zone.

Each zone's VTIMEZONE is parsed by dateutil's tzical (what icalendar and khal use for a zone they
do not know) and by icalendar's own transition table (its pytz path), and every UTC offset they
give is compared with zoneinfo's: at and around every transition in the span, and at ordinary
times in between. The text itself must be the form every reader understands: observances with
DTSTART (+ RRULE), DTSTART in the local time before the change, and no comma-separated RDATE
list (ical.js reads only its first value).
"""

from __future__ import annotations

import io
import re
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
from dateutil.rrule import rrulestr
from dateutil.tz import tzical

from chronary.ical import render, vtimezone

FIRST = 1970
END = datetime.now(UTC).year + render.VTIMEZONE_YEARS_AHEAD  # the span render.vtimezone covers
ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # half-hour DST
    "Australia/Adelaide",  # half-hour zone with DST
    "America/Sao_Paulo",  # DST stopped after 2019
    "Europe/Moscow",  # permanent summer time 2011, back to +03 in 2014
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Africa/Casablanca",  # one-off Ramadan changes every year
    "Pacific/Apia",  # skipped 2011-12-30; DST until 2021
    "America/St_Johns",  # -03:30
    "Asia/Jerusalem",  # "Friday before the last Sunday"
    "America/Santiago",
    "Pacific/Chatham",  # +12:45
    "Europe/Dublin",  # negative DST in tzdata
    "UTC",
]
PYTZ_LIMIT = datetime(2038, 1, 1, tzinfo=UTC)  # icalendar's pytz path expands open rules to 2038


def _span(tz: ZoneInfo) -> tuple[int, int]:
    return int(datetime(FIRST, 1, 1, tzinfo=tz).timestamp()), int(datetime(END, 1, 1, tzinfo=tz).timestamp())


def _offset(value: str) -> int:
    sign = -1 if value[0] == "-" else 1
    return sign * (int(value[1:3]) * 3600 + int(value[3:5]) * 60 + int(value[5:7] or 0))


def _observances(text: str) -> list[tuple[str, dict[str, str]]]:
    out = []
    text = text.replace("\r\n ", "")  # unfold
    for kind, body in re.findall(r"BEGIN:(STANDARD|DAYLIGHT)\r\n(.*?)END:\1\r\n", text, re.S):
        props: dict[str, str] = {}
        for line in body.split("\r\n")[:-1]:
            name, _, value = line.partition(":")
            assert name not in props, f"{name} twice in one observance"
            props[name] = value
        out.append((kind, props))
    return out


def _onsets(props: dict[str, str], end_ts: int) -> list[int]:
    """UTC onsets of one observance, expanded here with UNTIL read as the UTC bound it is."""
    start = datetime.strptime(props["DTSTART"], "%Y%m%dT%H%M%S")
    offset_from = timedelta(seconds=_offset(props["TZOFFSETFROM"]))
    if "RRULE" not in props:
        return [int((start - offset_from).replace(tzinfo=UTC).timestamp())]
    parts = dict(p.split("=") for p in props["RRULE"].split(";"))
    until = parts.pop("UNTIL", None)
    bound = datetime.strptime(until, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) if until else None
    rule = rrulestr(";".join(f"{k}={v}" for k, v in parts.items()), dtstart=start)
    out = []
    for local in rule:
        at = (local - offset_from).replace(tzinfo=UTC)
        if (bound is not None and at > bound) or at.timestamp() >= end_ts:
            break
        out.append(int(at.timestamp()))
    return out


def _zoneinfo_changes(tz: ZoneInfo, start: int, end: int, step: int = 6 * 3600) -> list[tuple[int, int]]:
    """(last second before, first second after) of every offset change, by a plain 6-hourly scan."""
    out = []
    prev = datetime.fromtimestamp(start, tz).utcoffset()
    for t in range(start + step, end, step):
        cur = datetime.fromtimestamp(t, tz).utcoffset()
        if cur != prev:
            out.append((t - step, t))
        prev = cur
    return out


@pytest.mark.parametrize("tzid", ZONES)
def test_vtimezone_matches_tzdata_in_independent_readers(tzid):
    tz = ZoneInfo(tzid)
    start, end = _span(tz)
    text = render.vtimezone(tzid, FIRST)
    assert text.startswith(f"BEGIN:VTIMEZONE\r\nTZID:{tzid}\r\n") and text.endswith("END:VTIMEZONE\r\n")
    assert "RDATE" not in text  # never a comma list; one-off changes are observances of their own
    for line in text.split("\r\n"):
        assert len(line) <= 75, line

    # the observances' onsets are exactly zoneinfo's transitions, each at its pre-change local time
    observances = _observances(text)
    anchor_kind, anchor = observances[0]
    assert anchor["DTSTART"] == f"{FIRST}0101T000000" and anchor["TZOFFSETFROM"] == anchor["TZOFFSETTO"]
    assert _offset(anchor["TZOFFSETTO"]) == datetime.fromtimestamp(start, tz).utcoffset().total_seconds()
    onsets: dict[int, tuple[int, int]] = {}
    for _, props in observances[1:]:
        for at in _onsets(props, end):
            assert at not in onsets, f"two observances start at {at}"
            onsets[at] = (_offset(props["TZOFFSETFROM"]), _offset(props["TZOFFSETTO"]))
    for at, (before, after) in onsets.items():
        assert datetime.fromtimestamp(at - 1, tz).utcoffset().total_seconds() == before, (tzid, at)
        assert datetime.fromtimestamp(at, tz).utcoffset().total_seconds() == after, (tzid, at)
    offset_changes = {at for at, (before, after) in onsets.items() if before != after}
    for lo, hi in _zoneinfo_changes(tz, start, end):
        assert any(lo < at <= hi for at in offset_changes), f"{tzid}: change in ({lo}, {hi}] missing"
    if not offset_changes:
        assert len(observances) == 1 and anchor_kind == "STANDARD"

    # what the readers make of it
    dateutil_tz = tzical(io.StringIO(text)).get(tzid)
    icalendar.use_pytz()
    try:
        pytz_tz = icalendar.Timezone.from_ical(text).to_tz(lookup_tzid=False)
    finally:
        icalendar.use_zoneinfo()
    samples = {t for at in onsets for t in (at - 1, at, *range(at - 3 * 3600, at + 3 * 3600 + 1, 1800))}
    samples |= set(range(start, end, 13 * 86400 + 3607))  # ordinary times, drifting through the day
    checked = 0
    for ts in sorted(s for s in samples if start <= s < end):
        utc = datetime.fromtimestamp(ts, UTC)
        local = utc.astimezone(tz)  # fold=1 on the second pass of a repeated hour
        want = local.utcoffset()
        # local → UTC, the way a TZID value is read (fold kept, so both passes are checked)
        assert local.replace(tzinfo=dateutil_tz).utcoffset() == want, (tzid, utc, "dateutil")
        # UTC → local, through icalendar's own transition table
        if utc < PYTZ_LIMIT:
            assert utc.astimezone(pytz_tz).utcoffset() == want, (tzid, utc, "icalendar/pytz")
        checked += 1
    assert checked > 1000


def test_rules_are_yearly_rrules_like_google_and_apple_write():
    berlin = _observances(vtimezone.build("Europe/Berlin", 2000, 2060))
    assert berlin == [
        ("STANDARD", {"TZOFFSETFROM": "+0100", "TZOFFSETTO": "+0100", "TZNAME": "CET", "DTSTART": "20000101T000000"}),
        (
            "DAYLIGHT",
            {
                "TZOFFSETFROM": "+0100",
                "TZOFFSETTO": "+0200",
                "TZNAME": "CEST",
                "DTSTART": "20000326T020000",  # 02:00 CET, not 03:00
                "RRULE": "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
            },
        ),
        (
            "STANDARD",
            {
                "TZOFFSETFROM": "+0200",
                "TZOFFSETTO": "+0100",
                "TZNAME": "CET",
                "DTSTART": "20001029T030000",  # 03:00 CEST
                "RRULE": "FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
            },
        ),
    ]
    rules = {props.get("RRULE") for _, props in _observances(vtimezone.build("America/New_York", 2000, 2060))}
    assert "FREQ=YEARLY;UNTIL=20060402T070000Z;BYMONTH=4;BYDAY=1SU" in rules  # ended with the 2007 law
    assert "FREQ=YEARLY;BYMONTH=3;BYDAY=2SU" in rules and "FREQ=YEARLY;BYMONTH=11;BYDAY=1SU" in rules
    # Sao Paulo's last DST ended in February 2019: nothing in the VTIMEZONE runs past it
    sao_paulo = _observances(vtimezone.build("America/Sao_Paulo", 2000, 2060))
    assert all("UNTIL=" in props["RRULE"] for _, props in sao_paulo if "RRULE" in props)
    assert max(props["DTSTART"] for _, props in sao_paulo) < "2019"
    # east of UTC, UNTIL is late enough for readers that compare it with the local onset
    sydney = {props.get("RRULE") for _, props in _observances(vtimezone.build("Australia/Sydney", 2000, 2060))}
    assert "FREQ=YEARLY;UNTIL=20050327T030000Z;BYMONTH=3;BYDAY=-1SU" in sydney  # onset 2005-03-26T16:00Z
    # seconds in an offset are kept (icalendar rounds them)
    assert "TZOFFSETFROM:-004430\r\n" in vtimezone.build("Africa/Monrovia", 1970, 1980)


@pytest.mark.parametrize("tzid", ["Asia/Tokyo", "Asia/Kolkata", "UTC", "Etc/GMT-14"])
def test_zones_without_changes_have_one_standard(tzid):
    offset = ZoneInfo(tzid).utcoffset(datetime(2030, 1, 1))
    assert offset is not None
    sign, seconds = ("-" if offset < timedelta(0) else "+"), abs(int(offset.total_seconds()))
    observances = _observances(vtimezone.build(tzid, 2000, 2060))
    value = f"{sign}{seconds // 3600:02d}{seconds % 3600 // 60:02d}"
    assert [(k, p["TZOFFSETFROM"], p["TZOFFSETTO"]) for k, p in observances] == [("STANDARD", value, value)]


def test_render_vtimezone_is_deterministic_cached_and_fast():
    vtimezone.build.cache_clear()
    began = time.perf_counter()
    first = render.vtimezone("Europe/Berlin", 2020)
    assert time.perf_counter() - began < 1.0  # ≈ 20 ms here; a feed builds it once per zone
    vtimezone.build.cache_clear()
    assert render.vtimezone("Europe/Berlin", 2020) == first  # same bytes, so the same ETag
    began = time.perf_counter()
    for _ in range(1000):
        render.vtimezone("Europe/Berlin", 2020)
    assert time.perf_counter() - began < 0.5  # cached
    with pytest.raises((KeyError, ValueError)):
        vtimezone.build("No/Such_Zone", 2020, 2050)
