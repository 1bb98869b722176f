"""Skipping whole rule periods before a window must not change which occurrences are found.

`expand` fast-forwards COUNT-less rules so old series stay cheap; this compares it with
dateutil's own, slow, from-DTSTART expansion on random series, windows and DST zones.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from chronary.ical import recurrence

RULES = [
    "RRULE:FREQ=DAILY",
    "RRULE:FREQ=DAILY;INTERVAL=3",
    "RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR",
    "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH",
    "RRULE:FREQ=HOURLY;INTERVAL=5",
    "RRULE:FREQ=WEEKLY;INTERVAL=3;BYDAY=SU;WKST=SU",
    "RRULE:FREQ=DAILY;BYMONTH=3,10",
    "RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20270101T000000Z",
    "RRULE:FREQ=DAILY;COUNT=500",
    "RRULE:FREQ=MONTHLY;BYDAY=-1FR",
    "RRULE:FREQ=WEEKLY;BYDAY=MO,TU;BYSETPOS=-1",
]
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"]


def from_dtstart(start, end, lines, tz, window_start, window_end):
    """The reference: dateutil's between() over the rule as written, nothing skipped."""
    local_start = start.astimezone(tz)
    duration = end.astimezone(tz).replace(tzinfo=None) - local_start.replace(tzinfo=None)
    rules, utc_exdates = recurrence._rule_set(lines, local_start)
    lo = (window_start - (end - start) - timedelta(days=1)).astimezone(tz).replace(tzinfo=None)
    hi = (window_end + timedelta(days=1)).astimezone(tz).replace(tzinfo=None)
    out = []
    for occ in rules.between(lo, hi, inc=True):
        a, b = recurrence.occurrence_span(occ, tz, duration, end - start)
        if a < window_end and b > window_start and a not in utc_exdates:
            out.append((a, b))
    return out


@settings(max_examples=150, deadline=None)
@given(
    rule=st.sampled_from(RULES),
    zone=st.sampled_from(ZONES),
    start_minutes=st.integers(0, 60 * 24 * 400).map(lambda m: m - m % 15),
    length=st.sampled_from([30, 60, 600, 2880]),
    window_hours=st.integers(0, 24 * 500),
    window_days=st.sampled_from([1, 7, 31, 62]),
    exdate=st.booleans(),
)
def test_fast_forward_finds_exactly_what_dateutil_finds(
    rule, zone, start_minutes, length, window_hours, window_days, exdate
):
    tz = ZoneInfo(zone)
    start = datetime(2023, 1, 1, tzinfo=UTC) + timedelta(minutes=start_minutes)
    end = start + timedelta(minutes=length)
    lines = [rule] + ([f"EXDATE:{(start + timedelta(days=7)).strftime('%Y%m%dT%H%M%SZ')}"] if exdate else [])
    window_start = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=window_hours)
    window_end = window_start + timedelta(days=window_days)
    assert recurrence.expand(start, end, lines, tz, window_start, window_end) == from_dtstart(
        start, end, lines, tz, window_start, window_end
    )


def test_an_imported_secondly_rule_is_bounded():
    """Feeds we import are not validated like API input; expansion still stops at its caps."""
    start = datetime(2020, 1, 6, 9, tzinfo=UTC)
    found = recurrence.expand(
        start,
        start + timedelta(seconds=1),
        ["RRULE:FREQ=SECONDLY"],
        ZoneInfo("UTC"),
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 5, 1, tzinfo=UTC),
    )
    assert len(found) == recurrence.MAX_OCCURRENCES
    # fast-forwarded six years of seconds to the window, then stopped at the cap
    assert found[0] == (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 1, 0, 0, 1, tzinfo=UTC))
    assert found[-1][0] == datetime(2026, 3, 1, 1, 23, 19, tzinfo=UTC)
