"""Turning an event body's start/end into stored UTC instants, all-day events included.

All-day events are whole days in the calendar's timezone: the body sends dates (YYYY-MM-DD;
the end date is exclusive, as in iCalendar), and we store the instants of local midnight so
availability treats them like any other busy time. Instants are taken too: local midnight in
the calendar's timezone, or UTC midnight — how clients of the hosted Chronary API send a date
(`"2027-03-12T00:00:00Z"` with `all_day: true` means 12 March wherever the calendar is).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from chronary.errors import ValidationError
from chronary.timeutil import parse_date, parse_instant

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_RECURRENCE_LINE = re.compile(r"^(RRULE|EXRULE|RDATE|EXDATE)([;:])", re.IGNORECASE)
# Calendars are for meetings, not timers: sub-hourly rules (which Google and Outlook refuse
# too) would make every availability query and feed walk thousands of occurrences.
_SUB_HOURLY = re.compile(r"(^|[:;])FREQ=(SECONDLY|MINUTELY)(;|$)", re.IGNORECASE)
MAX_EVENT_DAYS = 366 * 5


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tz).astimezone(UTC)


def _as_day(value: str, param: str, tz: ZoneInfo) -> date:
    """The date an all-day bound names. Local midnight and UTC midnight never name different
    dates for one instant (a zone would need a whole-day offset), so the order of the checks
    does not matter."""
    if _DATE_ONLY.match(value):
        return parse_date(value, param)
    instant = parse_instant(value, param)
    for reading in (instant.astimezone(tz), instant.astimezone(UTC)):
        if reading.time() == time(0):
            return reading.date()
    raise ValidationError(
        f"{param} of an all-day event must be a date (YYYY-MM-DD), local midnight in the calendar's timezone "
        "or UTC midnight",
        param,
    )


def resolve(start: str, end: str, all_day: bool, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """(start, end) in UTC; raises a validation error naming the field that is wrong."""
    if all_day:
        first, after_last = _as_day(start, "start_time", tz), _as_day(end, "end_time", tz)
        if after_last <= first:
            raise ValidationError("end_time must be after start_time (the end date is exclusive)", "end_time")
        try:
            begin, finish = local_midnight(first, tz), local_midnight(after_last, tz)
        except OverflowError:  # year 1 east of UTC falls before datetime.min
            raise ValidationError("event times must fall between the years 1900 and 2200", "start_time") from None
    else:
        for value, param in ((start, "start_time"), (end, "end_time")):
            if _DATE_ONLY.match(value):
                raise ValidationError(f"{param} needs a time and offset unless all_day is true", param)
        begin, finish = parse_instant(start, "start_time"), parse_instant(end, "end_time")
        # stored as whole seconds: compare what is stored, or .1s → .9s would become zero-length
        begin, finish = begin.replace(microsecond=0), finish.replace(microsecond=0)
        if finish <= begin:
            raise ValidationError("end_time must be after start_time", "end_time")
    if finish - begin > timedelta(days=MAX_EVENT_DAYS):
        raise ValidationError("an event may last at most 5 years", "end_time")
    if begin.year < 1900 or finish.year > 2200:
        raise ValidationError("event times must fall between the years 1900 and 2200", "start_time")
    return begin, finish


def all_day_dates(start: datetime, end: datetime, tz: ZoneInfo) -> tuple[str, str]:
    return start.astimezone(tz).date().isoformat(), end.astimezone(tz).date().isoformat()


def check_recurrence(lines: list[str] | None, start: datetime) -> list[str] | None:
    """Reject lines that are not RRULE/EXRULE/RDATE/EXDATE or that dateutil cannot parse."""
    if not lines:
        return None
    cleaned = []
    for i, raw in enumerate(lines):
        line = raw.strip()
        param = f"recurrence[{i}]"
        if not _RECURRENCE_LINE.match(line):
            raise ValidationError(f"{param} must start with RRULE:, EXDATE, RDATE or EXRULE", param)
        if "\n" in line or "\r" in line:
            raise ValidationError(f"{param} must be a single line", param)
        if _SUB_HOURLY.search(line):
            raise ValidationError(f"{param}: FREQ=SECONDLY and FREQ=MINUTELY are not supported; the finest is HOURLY", param)
        try:
            rrulestr(line, dtstart=start.replace(tzinfo=None) if ";TZID=" in line.upper() else start, forceset=True)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise ValidationError(f"{param} is not a valid recurrence line: {exc}", param) from None
        cleaned.append(line)
    if not any(line.upper().startswith(("RRULE", "RDATE")) for line in cleaned):
        raise ValidationError("recurrence needs at least one RRULE or RDATE line", "recurrence")
    return cleaned
