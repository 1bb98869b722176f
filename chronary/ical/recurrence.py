"""Expand a stored series (start, end, RRULE/EXDATE/RDATE lines) into occurrences in a window.

Rules are evaluated on wall-clock time in the calendar's timezone, so a 09:00 weekly meeting
stays at 09:00 local across DST changes (its UTC instant shifts by an hour). All-day series
expand on dates. Never counts an unbounded rule: expansion is always clipped to the window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, HOURLY, MINUTELY, SECONDLY, WEEKLY, rrule, rruleset, rrulestr

MAX_OCCURRENCES = 5000  # per series per window: a FREQ=MINUTELY rule cannot flood a response
MAX_STEPS = 200_000  # occurrences looked at per expansion, whatever the rule (COUNT=10**9 …)
# Rule periods that are fixed lengths of wall-clock time, so whole periods can be skipped.
_PERIOD = {
    WEEKLY: timedelta(weeks=1),
    DAILY: timedelta(days=1),
    HOURLY: timedelta(hours=1),
    MINUTELY: timedelta(minutes=1),
    SECONDLY: timedelta(seconds=1),
}


def _fast_forward(rule: rrule, lo: datetime) -> rrule:
    """Move a COUNT-less rule's start forward by whole periods to just before `lo`.

    dateutil generates every occurrence from DTSTART, so a daily series begun years ago costs
    thousands of steps per query (and FREQ=SECONDLY millions). Skipping whole multiples of the
    rule's period keeps exactly the same occurrences from `lo` on: the BY* filters repeat per
    period and INTERVAL phase is preserved. COUNT needs the true start, so it is left alone.
    """
    inner: Any = rule  # dateutil keeps the parsed rule parts private and untyped
    period = _PERIOD.get(inner._freq)
    start = inner._dtstart
    if period is None or inner._count is not None or start is None or start >= lo:
        return rule
    step = period * inner._interval
    skipped = (lo - start) // step
    return rule.replace(dtstart=start + step * skipped) if skipped > 0 else rule


def _rule_set(lines: list[str], dtstart_local: datetime, lo: datetime | None = None) -> tuple[rruleset, frozenset[datetime]]:
    """Parse lines with a naive local dtstart; UTC/offset RDATE values become local too.

    EXDATEs written with Z or TZID come back separately as UTC instants: matching them by instant
    (not by naive local time) is exact for an occurrence in the spring-forward gap and for the
    second pass of a repeated hour, where two instants share one local time.
    """
    tz = dtstart_local.tzinfo
    naive = dtstart_local.replace(tzinfo=None)
    text = "\n".join(_local_until(line, tz) for line in lines)
    rs = rrulestr(text, dtstart=naive, forceset=True, ignoretz=False, tzinfos=None)
    # dateutil returns aware datetimes for values written with Z/TZID and naive ones otherwise;
    # normalise everything to naive local wall-clock time so comparisons are consistent.
    out = rruleset()
    parsed: Any = rs  # dateutil exposes no public accessor for a set's parts
    for rule in parsed._rrule:
        until = rule._until
        if until is not None and until.tzinfo is not None:
            rule = rule.replace(until=until.astimezone(tz).replace(tzinfo=None))
        out.rrule(_fast_forward(rule, lo) if lo is not None else rule)
    for rule in parsed._exrule:
        out.exrule(_fast_forward(rule, lo) if lo is not None else rule)
    for value in parsed._rdate:
        out.rdate(_local_naive(value, tz))
    utc_exdates: set[datetime] = set()
    for value in parsed._exdate:
        if value.tzinfo is None:
            out.exdate(value)
        else:
            utc_exdates.add(value.astimezone(UTC))
    return out, frozenset(utc_exdates)


def _local_until(line: str, tz: tzinfo | None) -> str:
    """UNTIL=…Z (UTC, as RFC 5545 requires with a zoned DTSTART) → naive local wall-clock time,
    because dateutil refuses an aware UNTIL with the naive local dtstart used here."""
    if line[:5].upper() not in ("RRULE", "EXRUL") or "UNTIL=" not in line.upper():
        return line
    head, _, rule = line.partition(":")
    parts = []
    for part in rule.split(";"):
        key, _, value = part.partition("=")
        if key.upper() == "UNTIL" and value.upper().endswith("Z") and len(value) == 16:
            try:
                utc = datetime.strptime(value[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
                part = "UNTIL=" + utc.astimezone(tz).strftime("%Y%m%dT%H%M%S")
            except ValueError:
                pass
        parts.append(part)
    return f"{head}:{';'.join(parts)}"


def _local_naive(value: datetime, tz: tzinfo | None) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(tz).replace(tzinfo=None)


def expand(
    start: datetime,
    end: datetime,
    lines: list[str],
    tz: ZoneInfo,
    window_start: datetime,
    window_end: datetime,
    all_day: bool = False,
) -> list[tuple[datetime, datetime]]:
    """(start, end) UTC pairs of occurrences overlapping [window_start, window_end)."""
    local_start = start.astimezone(tz)
    duration_local = end.astimezone(tz).replace(tzinfo=None) - local_start.replace(tzinfo=None)
    if all_day:
        duration_local = timedelta(days=max(1, round(duration_local.total_seconds() / 86400)))
    # search from a little before the window so an occurrence that started earlier but still
    # runs into the window is found; the local/UTC offset is never more than a day
    lo = (window_start - (end - start) - timedelta(days=1)).astimezone(tz).replace(tzinfo=None)
    hi = (window_end + timedelta(days=1)).astimezone(tz).replace(tzinfo=None)
    rules, utc_exdates = _rule_set(lines, local_start, lo)
    out: list[tuple[datetime, datetime]] = []
    # iterate lazily (rruleset.between builds the whole list first) with a step budget
    for steps, occ in enumerate(rules):
        if occ > hi or steps >= MAX_STEPS:
            break
        if occ < lo:
            continue
        occ_start, occ_end = occurrence_span(occ, tz, duration_local, end - start)
        if occ_start in utc_exdates:
            continue
        if occ_start < window_end and occ_end > window_start:
            out.append((occ_start, occ_end))
            if len(out) >= MAX_OCCURRENCES:
                break
    return out


def occurrence_span(occ: datetime, tz: ZoneInfo, duration_local: timedelta, exact: timedelta) -> tuple[datetime, datetime]:
    """UTC (start, end) of one naive local occurrence: wall-clock duration, as DTSTART/DTEND say.

    A start in the spring-forward gap (02:30 that never happens) resolves to the offset before the
    gap (RFC 5545 3.3.5) and can land after the wall-clock end: it keeps the series' exact duration
    rather than end before it starts.
    """
    start = occ.replace(tzinfo=tz).astimezone(UTC)
    end = (occ + duration_local).replace(tzinfo=tz).astimezone(UTC)
    return (start, end) if end > start else (start, start + exact)


def occurrence_key(original_start: datetime) -> str:
    """The suffix that names one occurrence: its original start in UTC, e.g. 20260105T090000Z."""
    return original_start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def parse_occurrence_key(key: str) -> datetime | None:
    try:
        return datetime.strptime(key, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
