"""VTIMEZONE text built from tzdata (through zoneinfo), written the way Google and Apple write it.

Why not icalendar's `Timezone.from_tzid`: it writes each observance as one DTSTART plus one
comma-separated RDATE list, and Mozilla ical.js reads only the first value of an RDATE, so every
Europe/Berlin summer time from 2027 on came out an hour late there (issue 11). Here the zone's
real transitions over the span are found with zoneinfo (so they agree with every instant the
server computes), runs of transitions that follow a yearly rule (last or nth weekday of a month,
a weekday in a fixed 7-day window, a fixed date) become one observance with an RRULE (with
UNTIL when the run ends inside the span), and one-off transitions each get an observance of
their own with just a DTSTART, so no reader has to understand RDATE at all.

Each observance's DTSTART is the onset in the local time in force *before* the transition (RFC
5545 3.6.5): Berlin's summer time starts at 02:00, its winter time at 03:00. The output depends
only on the arguments, so a feed's bytes (and ETag) are stable between builds.
"""

from __future__ import annotations

import calendar
import functools
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from chronary.ical.text import escape_text, fold

_NAIVE_EPOCH = datetime(1970, 1, 1)
_DAY = 86400  # probe step: tzdata has no pair of transitions that cancel out within one day
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")

State = tuple[int, bool, str]  # (UTC offset in seconds, is daylight time, abbreviation)


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of offset, daylight flag or abbreviation, at unix second `at` (UTC)."""

    at: int
    offset_from: int
    offset_to: int
    dst: bool
    name: str

    @property
    def onset(self) -> datetime:
        """Naive local wall time just before the change: what DTSTART holds."""
        return _NAIVE_EPOCH + timedelta(seconds=self.at + self.offset_from)


def _state(tz: tzinfo, ts: int) -> State:
    local = datetime.fromtimestamp(ts, tz)
    offset = local.utcoffset()
    dst = local.dst()
    return (
        0 if offset is None else int(offset.total_seconds()),
        bool(dst),
        local.tzname() or "",
    )


def transitions(tz: tzinfo, start_ts: int, end_ts: int) -> list[Transition]:
    """Every change in (start_ts, end_ts), found by probing once a day and bisecting to the second.

    zoneinfo has no public list of transitions; probing it means the result always matches
    what `datetime.astimezone` says, wherever zoneinfo found its data (system or tzdata).
    """
    out: list[Transition] = []
    t = start_ts
    current = _state(tz, t)
    while t < end_ts:
        probe = min(t + _DAY, end_ts)
        if _state(tz, probe) == current:
            t = probe
            continue
        lo, hi = t, probe  # state(lo) == current != state(hi): find the first second that differs
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _state(tz, mid) == current:
                lo = mid
            else:
                hi = mid
        new = _state(tz, hi)
        out.append(Transition(hi, current[0], new[0], new[1], new[2]))
        current, t = new, hi
    return out


REPEATED_CHUNK_BITS = 25  # repeated_spans() works on 2**25 s (≈ 388 days) of time at once


@functools.lru_cache(maxsize=4096)
def repeated_spans(tzid: str, chunk: int) -> tuple[tuple[int, int, int], ...]:
    """Where local time repeats, near chunk `chunk` (unix seconds >> REPEATED_CHUNK_BITS).

    Each span is (first, second, end) in unix seconds: a change back by d seconds at T makes the
    instants of [T - d, T) (first pass) and [T, T + d) (second pass) show the same local times.
    A table per zone and chunk makes the feed's per-value check a few integer comparisons.
    """
    tz = ZoneInfo(tzid)
    lo = (chunk << REPEATED_CHUNK_BITS) - _DAY  # a span reaches at most a day (d) past its change
    hi = ((chunk + 1) << REPEATED_CHUNK_BITS) + _DAY
    spans = []
    for t in transitions(tz, lo, hi):
        back = t.offset_from - t.offset_to
        if back > 0:
            spans.append((t.at - back, t.at, t.at + back))
    return tuple(spans)


def _offset(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    h, rest = divmod(abs(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h:02d}{m:02d}{s:02d}" if s else f"{sign}{h:02d}{m:02d}"


def _local(dt: datetime) -> str:
    return "%04d%02d%02dT%02d%02d%02d" % (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second)  # noqa: UP031


def _utc(ts: int) -> str:
    return _local(_NAIVE_EPOCH + timedelta(seconds=ts)) + "Z"


def _days_in_month(dt: datetime) -> int:
    return calendar.monthrange(dt.year, dt.month)[1]


def _weekday_run(run: list[Transition], i: int) -> int:
    """End (exclusive) of the longest run from i on the same weekday inside one 7-day window
    (fixed, or counted back from the month's end), one per consecutive year."""
    first = run[i].onset
    days = [first.day]
    from_end = [_days_in_month(first) - first.day]
    j = i + 1
    while j < len(run):
        prev, cur = run[j - 1].onset, run[j].onset
        if cur.year != prev.year + 1 or cur.weekday() != first.weekday():
            break
        days.append(cur.day)
        from_end.append(_days_in_month(cur) - cur.day)
        if max(from_end) > 6 and max(days) - min(days) > 6:
            days.pop()
            from_end.pop()
            break
        j += 1
    return j


def _date_run(run: list[Transition], i: int) -> int:
    """End (exclusive) of the longest run from i on the same day of the month, one per consecutive year."""
    j = i + 1
    while j < len(run):
        prev, cur = run[j - 1].onset, run[j].onset
        if cur.year != prev.year + 1 or cur.day != run[i].onset.day:
            break
        j += 1
    return j


def _rule(run: list[Transition], weekday: bool) -> str:
    first = run[0].onset
    if not weekday:
        return f"BYMONTH={first.month};BYMONTHDAY={first.day}"
    wd = _WEEKDAYS[first.weekday()]
    onsets = [t.onset for t in run]
    days = [d.day for d in onsets]
    if all(_days_in_month(d) - d.day <= 6 for d in onsets):
        return f"BYMONTH={first.month};BYDAY=-1{wd}"
    if (min(days) - 1) // 7 == (max(days) - 1) // 7:
        return f"BYMONTH={first.month};BYDAY={(min(days) - 1) // 7 + 1}{wd}"
    # e.g. Israel's "Friday before the last Sunday of March" is the Friday of the 23rd..29th
    window = ",".join(str(d) for d in range(min(days), min(days) + 7) if d <= 31)
    return f"BYMONTH={first.month};BYDAY={wd};BYMONTHDAY={window}"


def _until(last: Transition) -> str:
    """UNTIL (inclusive, UTC as RFC 5545 requires in VTIMEZONE) at or after the last onset.

    dateutil's tzical (used by icalendar and khal) drops the Z and compares UNTIL with the
    local onset, which would lose the last onset east of UTC; taking the later of the UTC and
    the local reading is still before next year's occurrence, so every reader gets the same set.
    """
    return _utc(last.at + max(0, last.offset_from))


def _observance(kind: str, dtstart: datetime, offset_from: int, offset_to: int, name: str, rrule: str | None) -> list[str]:
    lines = [f"BEGIN:{kind}", f"TZOFFSETFROM:{_offset(offset_from)}", f"TZOFFSETTO:{_offset(offset_to)}"]
    if name:
        lines.append(f"TZNAME:{escape_text(name)}")
    lines.append(f"DTSTART:{_local(dtstart)}")
    if rrule:
        lines.append(f"RRULE:{rrule}")
    lines.append(f"END:{kind}")
    return lines


def _observances(changes: list[Transition], end_year: int) -> list[tuple[int, list[str]]]:
    """(first onset, lines) per observance: yearly runs as RRULEs, the rest one by one."""
    groups: dict[tuple[bool, int, int, str, int, time], list[Transition]] = {}
    for t in changes:
        onset = t.onset
        groups.setdefault((t.dst, t.offset_from, t.offset_to, t.name, onset.month, onset.time()), []).append(t)
    out: list[tuple[int, list[str]]] = []
    for (dst, offset_from, offset_to, name, _month, _time), run in groups.items():
        kind = "DAYLIGHT" if dst else "STANDARD"
        i = 0
        while i < len(run):
            by_weekday, by_date = _weekday_run(run, i), _date_run(run, i)
            j = max(by_weekday, by_date)
            rrule = None
            if j - i >= 2:
                part = run[i:j]
                parts = ["FREQ=YEARLY"]
                if part[-1].onset.year < end_year - 1:  # the rule ended inside the span
                    parts.append(f"UNTIL={_until(part[-1])}")
                parts.append(_rule(part, by_weekday >= by_date))
                rrule = ";".join(parts)
            out.append((run[i].at, _observance(kind, run[i].onset, offset_from, offset_to, name, rrule)))
            i = j
    out.sort(key=lambda item: (item[0], item[1]))
    return out


@functools.lru_cache(maxsize=512)
def build(tzid: str, first_year: int, end_year: int) -> str:
    """The VTIMEZONE (folded CRLF lines) for `tzid` from 1 January `first_year` until 1 January `end_year`.

    The first observance states the offset in force at the start of the span, so readers never
    have to guess what applies before the first transition; rules still running at the end of
    the span are left open (no UNTIL), as tzdata continues them. Raises KeyError/ValueError for
    an unknown zone.
    """
    tz = ZoneInfo(tzid)
    end_year = max(end_year, first_year + 1)
    start = datetime(first_year, 1, 1)
    start_ts = int(start.replace(tzinfo=tz).timestamp())
    end_ts = int(datetime(end_year, 1, 1, tzinfo=tz).timestamp())
    offset, dst, name = _state(tz, start_ts)
    changes = transitions(tz, start_ts, end_ts)
    kind = "DAYLIGHT" if dst and changes else "STANDARD"
    lines = ["BEGIN:VTIMEZONE", f"TZID:{escape_text(tzid)}"]
    lines += _observance(kind, start, offset, offset, name, None)
    for _, observance in _observances(changes, end_year):
        lines += observance
    lines.append("END:VTIMEZONE")
    return "".join(fold(line) for line in lines)  # a BYMONTHDAY list with UNTIL can pass 75 octets
