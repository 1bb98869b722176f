"""Cron schedules: validation, next ticks in a timezone across DST, and catch-up after downtime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chronary.services.automation import cron

BERLIN = "Europe/Berlin"
HOUR = timedelta(hours=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def ticks(expr: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
    out: list[datetime] = []
    tick = cron.next_after(expr, zone, start)
    while tick < end:
        out.append(tick)
        tick = cron.next_after(expr, zone, tick)
    return out


# --- validate ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr",
    [
        "0 7 * * *",
        " */15  9-17 * * mon-fri ",
        "0 0 1 jan *",
        "0 0 L * *",
        "0 9 15W * *",
        "0 9 * * mon#2",
        "0 9 * * L5",
        "0 9 ? * 7",
        "5,10,50 1-3/2 1-31/2 */3 0-6",
        "@daily",
        "@HOURLY",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
        "@midnight",
    ],
)
def test_valid_expressions(expr: str) -> None:
    cron.validate(expr, BERLIN)
    assert cron.next_after(expr, BERLIN, utc(2026, 1, 1)) > utc(2026, 1, 1)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 0 * * * *", "6 fields: the sixth would be read as seconds"),
        ("0 0 * * * * 2030", "7 fields: give 5"),
        ("0 0 * *", "4 fields: give 5"),
        ("", "the cron expression is empty"),
        ("   ", "the cron expression is empty"),
        ("60 * * * *", "not a valid cron expression"),
        ("0 24 * * *", "not a valid cron expression"),
        ("*/0 * * * *", "not a valid cron expression"),
        ("0 0 * * 8", "not a valid cron expression"),
        ("0 0 * * 1#6", "not a valid cron expression"),
        ("1,,2 * * * *", "not a valid cron expression"),
        ("H * * * *", "'H': hashed and random (H, R) fields are not supported"),
        ("R 1 * * *", "'R': hashed and random (H, R) fields are not supported"),
        ("0 0 30 2 *", "'0 0 30 2 *' never fires (no such date)"),
        ("0 0 31 4,6 *", "never fires"),
        ("@reboot", "unknown cron alias '@reboot'"),
        ("0\u00a00 * * *", "characters other than printable ASCII"),
        ("1" * 201, "longer than 200 characters"),
    ],
)
def test_invalid_expressions_say_why(expr: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        cron.validate(expr, BERLIN)
    assert message in str(info.value)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../etc/passwd", "/usr/share/zoneinfo/UTC", "x" * 80])
def test_unknown_timezones_are_refused(zone: str) -> None:
    with pytest.raises(ValueError) as info:
        cron.validate("0 7 * * *", zone)
    assert str(info.value) == f"unknown timezone {zone!r}: use an IANA name such as Europe/Berlin or UTC"


def test_non_strings_are_refused() -> None:
    with pytest.raises(ValueError, match="a cron expression must be a string"):
        cron.validate(["0 7 * * *"], BERLIN)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="the timezone must be a string"):
        cron.validate("0 7 * * *", None)  # type: ignore[arg-type]


# --- next_after -------------------------------------------------------------------------------------


def test_a_daily_time_follows_the_zone_offset() -> None:
    assert cron.next_after("0 7 * * *", BERLIN, utc(2026, 1, 10, 12)) == utc(2026, 1, 11, 6)
    assert cron.next_after("0 7 * * *", BERLIN, utc(2026, 7, 10, 12)) == utc(2026, 7, 11, 5)
    assert ticks("0 7 * * *", BERLIN, utc(2026, 3, 27), utc(2026, 3, 31)) == [
        utc(2026, 3, 27, 6),
        utc(2026, 3, 28, 6),
        utc(2026, 3, 29, 5),
        utc(2026, 3, 30, 5),
    ]


def test_next_after_is_strictly_after_and_answers_aware_utc() -> None:
    tick = cron.next_after("0 7 * * *", BERLIN, utc(2026, 1, 11, 6))
    assert tick == utc(2026, 1, 12, 6)
    assert tick.tzinfo is UTC
    assert cron.next_after("0 7 * * *", BERLIN, utc(2026, 1, 11, 5, 59, 59, 999999)) == utc(2026, 1, 11, 6)
    tokyo = datetime(2026, 1, 11, 14, 59, tzinfo=ZoneInfo("Asia/Tokyo"))  # 05:59Z
    assert cron.next_after("0 7 * * *", BERLIN, tokyo) == utc(2026, 1, 11, 6)
    assert cron.next_after("*/5 * * * *", "UTC", utc(2026, 1, 1, 0, 2, 30)) == utc(2026, 1, 1, 0, 5)
    with pytest.raises(ValueError, match="after must be an aware datetime"):
        cron.next_after("0 7 * * *", BERLIN, datetime(2026, 1, 1))


def test_weekday_and_month_fields() -> None:
    # 2026-01-02 is a Friday; mon-fri at 09:00 in New York (UTC-5)
    assert ticks("0 9 * * mon-fri", "America/New_York", utc(2026, 1, 2, 15), utc(2026, 1, 7)) == [
        utc(2026, 1, 5, 14),
        utc(2026, 1, 6, 14),
    ]
    assert cron.next_after("0 0 L 2 *", "UTC", utc(2026, 1, 1)) == utc(2026, 2, 28)
    assert cron.next_after("0 0 29 2 *", "UTC", utc(2026, 1, 1)) == utc(2028, 2, 29)


def test_spring_forward_a_skipped_fixed_time_fires_once_at_the_jump() -> None:
    # 2026-03-29 in Berlin: 02:00 CET becomes 03:00 CEST at 01:00Z, so 02:30 never happens
    assert ticks("30 2 * * *", BERLIN, utc(2026, 3, 27), utc(2026, 3, 31)) == [
        utc(2026, 3, 27, 1, 30),
        utc(2026, 3, 28, 1, 30),
        utc(2026, 3, 29, 1, 0),
        utc(2026, 3, 30, 0, 30),
    ]
    # several skipped times of one schedule still fire once
    assert ticks("0,15,30,45 2 * * *", BERLIN, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12)) == [utc(2026, 3, 29, 1, 0)]
    # a time right after the gap is its own tick, at the same instant as the jump: once
    assert ticks("30 2,3 * * *", BERLIN, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12)) == [
        utc(2026, 3, 29, 1, 0),
        utc(2026, 3, 29, 1, 30),
    ]


def test_fall_back_a_repeated_fixed_time_fires_once_at_its_first_pass() -> None:
    # 2026-10-25 in Berlin: 03:00 CEST becomes 02:00 CET at 01:00Z, so 02:30 happens at 00:30Z and 01:30Z
    assert ticks("30 2 * * *", BERLIN, utc(2026, 10, 23), utc(2026, 10, 27)) == [
        utc(2026, 10, 23, 0, 30),
        utc(2026, 10, 24, 0, 30),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 26, 1, 30),
    ]
    assert cron.next_after("30 2 * * *", BERLIN, utc(2026, 10, 25, 0, 30)) == utc(2026, 10, 26, 1, 30)
    assert cron.next_after("30 2 * * *", BERLIN, utc(2026, 10, 25, 1)) == utc(2026, 10, 26, 1, 30)
    assert ticks("0 1,2,3 * * *", BERLIN, utc(2026, 10, 24, 12), utc(2026, 10, 25, 12)) == [
        utc(2026, 10, 24, 23),
        utc(2026, 10, 25, 0),
        utc(2026, 10, 25, 2),
    ]


def test_wildcard_schedules_keep_their_rhythm_through_both_changes() -> None:
    spring = ticks("*/30 * * * *", BERLIN, utc(2026, 3, 28, 23), utc(2026, 3, 29, 3))
    assert spring == [utc(2026, 3, 28, 23, 30) + i * timedelta(minutes=30) for i in range(7)]
    fall = ticks("*/30 * * * *", BERLIN, utc(2026, 10, 24, 23), utc(2026, 10, 25, 3))
    assert fall == [utc(2026, 10, 24, 23, 30) + i * timedelta(minutes=30) for i in range(7)]
    # the local day has 23 and 25 hours: an hourly schedule fires that many times in it
    assert len(ticks("0 * * * *", BERLIN, utc(2026, 3, 28, 22, 59), utc(2026, 3, 29, 21, 59))) == 23
    assert len(ticks("@hourly", BERLIN, utc(2026, 10, 24, 21, 59), utc(2026, 10, 25, 22, 59))) == 25


def test_a_wildcard_schedule_finds_the_second_pass_of_a_repeated_hour() -> None:
    # at 00:55Z (02:55 CEST, first pass) the next "every 10 minutes of 02h on Oct 25" is 02:00 CET
    assert cron.next_after("*/10 2 25 10 *", BERLIN, utc(2026, 10, 25, 0, 55)) == utc(2026, 10, 25, 1, 0)
    assert cron.next_after("*/10 2 25 10 *", BERLIN, utc(2026, 10, 25, 1, 55)) == utc(2027, 10, 25, 0, 0)
    # fixed minutes: the first pass only, then next year
    assert cron.next_after("0-30/10 2 25 10 *", BERLIN, utc(2026, 10, 25, 0, 35)) == utc(2027, 10, 25, 0, 0)


def test_southern_and_midnight_transitions() -> None:
    # Sydney falls back on 2026-04-05 at 03:00 AEDT (16:00Z): 02:30 happens at 15:30Z and 16:30Z
    assert ticks("30 2 * * *", "Australia/Sydney", utc(2026, 4, 4, 12), utc(2026, 4, 5, 18)) == [
        utc(2026, 4, 4, 15, 30),
        utc(2026, 4, 5, 16, 30),
    ]
    assert ticks("*/30 2 * * *", "Australia/Sydney", utc(2026, 4, 4, 14, 59), utc(2026, 4, 4, 17, 30)) == [
        utc(2026, 4, 4, 15, 0),
        utc(2026, 4, 4, 15, 30),
        utc(2026, 4, 4, 16, 0),
        utc(2026, 4, 4, 16, 30),
    ]
    # Santiago springs forward at midnight (2026-09-06 00:00 → 01:00): midnight fires at the jump
    assert ticks("0 0 * * *", "America/Santiago", utc(2026, 9, 4), utc(2026, 9, 8)) == [
        utc(2026, 9, 4, 4),
        utc(2026, 9, 5, 4),
        utc(2026, 9, 6, 4),
        utc(2026, 9, 7, 3),
    ]


@settings(max_examples=60, deadline=None)
@given(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)))
def test_every_fifteen_minutes_is_fifteen_real_minutes_apart(start: datetime) -> None:
    after = start.replace(tzinfo=UTC)
    first = cron.next_after("*/15 * * * *", BERLIN, after)
    second = cron.next_after("*/15 * * * *", BERLIN, first)
    assert timedelta(0) < first - after <= timedelta(minutes=15)
    assert second - first == timedelta(minutes=15)
    assert first.minute % 15 == 0 and first.second == 0


@settings(max_examples=60, deadline=None)
@given(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)))
def test_a_fixed_daily_time_fires_exactly_once_per_local_day(start: datetime) -> None:
    zone = ZoneInfo(BERLIN)
    after = start.replace(tzinfo=UTC)
    first = cron.next_after("30 2 * * *", BERLIN, after)
    second = cron.next_after("30 2 * * *", BERLIN, first)
    assert first > after
    assert (second.astimezone(zone).date() - first.astimezone(zone).date()).days == 1
    assert timedelta(hours=22) <= second - first <= timedelta(hours=25)


# --- due --------------------------------------------------------------------------------------------

GRACE = timedelta(minutes=60)


def test_due_fires_the_tick_that_just_passed_and_answers_the_next() -> None:
    fired, following = cron.due("0 7 * * *", BERLIN, utc(2026, 1, 10, 6), utc(2026, 1, 11, 6, 0, 2), GRACE)
    assert fired == [utc(2026, 1, 11, 6)]
    assert following == utc(2026, 1, 12, 6)
    # asked again with that tick recorded: nothing more
    fired, following = cron.due("0 7 * * *", BERLIN, utc(2026, 1, 11, 6), utc(2026, 1, 11, 6, 0, 30), GRACE)
    assert fired == []
    assert following == utc(2026, 1, 12, 6)


def test_due_exactly_at_the_tick_fires_it() -> None:
    assert cron.due("0 7 * * *", BERLIN, utc(2026, 1, 10, 6), utc(2026, 1, 11, 6), GRACE) == (
        [utc(2026, 1, 11, 6)],
        utc(2026, 1, 12, 6),
    )


def test_after_downtime_only_the_latest_missed_tick_within_grace_fires() -> None:
    # down for three hours: 36 five-minute ticks were missed, one (the latest) fires
    fired, following = cron.due("*/5 * * * *", "UTC", utc(2026, 1, 1, 9), utc(2026, 1, 1, 12, 3), GRACE)
    assert fired == [utc(2026, 1, 1, 12, 0)]
    assert following == utc(2026, 1, 1, 12, 5)
    # a daily tick missed by 30 minutes still fires, by two hours it is skipped
    assert cron.due("0 7 * * *", BERLIN, utc(2026, 1, 8, 6), utc(2026, 1, 11, 6, 30), GRACE)[0] == [utc(2026, 1, 11, 6)]
    assert cron.due("0 7 * * *", BERLIN, utc(2026, 1, 8, 6), utc(2026, 1, 11, 8), GRACE) == ([], utc(2026, 1, 12, 6))


def test_the_grace_boundary_is_inclusive() -> None:
    now = utc(2026, 1, 11, 7)
    assert cron.due("0 7 * * *", BERLIN, None, now, GRACE)[0] == [utc(2026, 1, 11, 6)]
    late = now + timedelta(microseconds=1)
    assert cron.due("0 7 * * *", BERLIN, None, late, GRACE)[0] == []


def test_never_fired_means_the_latest_tick_within_grace() -> None:
    assert cron.due("*/10 * * * *", "UTC", None, utc(2026, 1, 1, 12, 7), GRACE) == (
        [utc(2026, 1, 1, 12, 0)],
        utc(2026, 1, 1, 12, 10),
    )
    assert cron.due("0 7 * * *", BERLIN, None, utc(2026, 1, 11, 12), GRACE) == ([], utc(2026, 1, 12, 6))


def test_a_clock_gone_back_fires_nothing_twice() -> None:
    fired, following = cron.due("0 * * * *", "UTC", utc(2026, 1, 1, 12), utc(2026, 1, 1, 11, 30), GRACE)
    assert fired == []
    assert following == utc(2026, 1, 1, 13)


def test_due_on_the_fall_back_night_fires_the_repeated_time_once() -> None:
    fired, following = cron.due("30 2 * * *", BERLIN, utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 31), GRACE)
    assert fired == [utc(2026, 10, 25, 0, 30)]
    assert following == utc(2026, 10, 26, 1, 30)
    # an hour later the wall clock reads 02:31 again: nothing is due
    assert cron.due("30 2 * * *", BERLIN, fired[0], utc(2026, 10, 25, 1, 31), GRACE) == ([], utc(2026, 10, 26, 1, 30))


def test_due_validates_and_wants_aware_times() -> None:
    with pytest.raises(ValueError, match="6 fields"):
        cron.due("* * * * * *", "UTC", None, utc(2026, 1, 1), GRACE)
    with pytest.raises(ValueError, match="now must be an aware datetime"):
        cron.due("* * * * *", "UTC", None, datetime(2026, 1, 1), GRACE)
    with pytest.raises(ValueError, match="last_fired must be an aware datetime"):
        cron.due("* * * * *", "UTC", datetime(2026, 1, 1), utc(2026, 1, 1), GRACE)
