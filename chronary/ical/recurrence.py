"""Expand a stored series (start, end, RRULE/EXDATE/RDATE lines) into occurrences in a window.

Rules are evaluated on wall-clock time in the calendar's timezone, so a 09:00 weekly meeting
stays at 09:00 local across DST changes (its UTC instant shifts by an hour). All-day series
expand on dates. Never counts an unbounded rule: expansion is always clipped to the window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rruleset, rrulestr

MAX_OCCURRENCES = 5000  # per series per window: a FREQ=MINUTELY rule cannot flood a response


def _rule_set(lines: list[str], dtstart_local: datetime) -> rruleset:
    """Parse lines with a naive local dtstart; UTC/offset EXDATE/RDATE values become local too."""
    tz = dtstart_local.tzinfo
    naive = dtstart_local.replace(tzinfo=None)
    text = "\n".join(_local_until(line, tz) for line in lines)
    rs = rrulestr(text, dtstart=naive, forceset=True, ignoretz=False, tzinfos=None)
    # dateutil returns aware datetimes for values written with Z/TZID and naive ones otherwise;
    # normalise everything to naive local wall-clock time so comparisons are consistent.
    out = rruleset()
    for rule in rs._rrule:  # noqa: SLF001 - dateutil exposes no public accessor
        until = rule._until  # noqa: SLF001
        if until is not None and until.tzinfo is not None:
            rule = rule.replace(until=until.astimezone(tz).replace(tzinfo=None))
        out.rrule(rule)
    for rule in rs._exrule:  # noqa: SLF001
        out.exrule(rule)
    for value in rs._rdate:  # noqa: SLF001
        out.rdate(_local_naive(value, tz))
    for value in rs._exdate:  # noqa: SLF001
        out.exdate(_local_naive(value, tz))
    return out


def _local_until(line: str, tz: object) -> str:
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
                part = "UNTIL=" + utc.astimezone(tz).strftime("%Y%m%dT%H%M%S")  # type: ignore[arg-type]
            except ValueError:
                pass
        parts.append(part)
    return f"{head}:{';'.join(parts)}"


def _local_naive(value: datetime, tz: object) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(tz).replace(tzinfo=None)  # type: ignore[arg-type]


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
    rules = _rule_set(lines, local_start)
    # search from a little before the window so an occurrence that started earlier but still
    # runs into the window is found; the local/UTC offset is never more than a day
    lo = (window_start - (end - start) - timedelta(days=1)).astimezone(tz).replace(tzinfo=None)
    hi = (window_end + timedelta(days=1)).astimezone(tz).replace(tzinfo=None)
    out: list[tuple[datetime, datetime]] = []
    for occ in rules.between(lo, hi, inc=True):
        occ_start = occ.replace(tzinfo=tz).astimezone(UTC)
        occ_end = (occ + duration_local).replace(tzinfo=tz).astimezone(UTC)
        if occ_start < window_end and occ_end > window_start:
            out.append((occ_start, occ_end))
            if len(out) >= MAX_OCCURRENCES:
                break
    return out


def occurrence_key(original_start: datetime) -> str:
    """The suffix that names one occurrence: its original start in UTC, e.g. 20260105T090000Z."""
    return original_start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def parse_occurrence_key(key: str) -> datetime | None:
    try:
        return datetime.strptime(key, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
