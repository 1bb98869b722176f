"""Cron schedules for schedule triggers: five fields read in an IANA timezone, ticks answered in UTC.

Syntax: ``minute hour day-of-month month day-of-week`` (croniter's reading: ``*``, lists, ranges,
steps, month and weekday names, ``7`` for Sunday, ``?`` for "any" in the day fields, ``L`` (last
day of the month), ``15W`` (nearest weekday), ``mon#2`` (second Monday), ``L5`` (last Friday), and
the aliases ``@hourly @daily @midnight @weekly @monthly @yearly @annually``). When both day fields
are restricted a day matching either fires, as in every cron. Refused: six or seven fields —
croniter would read the sixth as seconds and the seventh as a year; schedules have minute
resolution — and croniter's ``H``/``R`` (hashed and random) fields, which need a seed or change
between computations. An expression that can never fire (``0 0 30 2 *``) is refused too.

Daylight saving time, as Vixie cron, cronie and Debian's cron decide it:

- A *fixed-time* schedule (no ``*`` in its minute or hour field, e.g. ``30 2 * * *``) fires once a
  day at that wall time. A time the clock skips (02:30 on 2026-03-29 in Europe/Berlin) fires at the
  moment of the jump (01:00Z, when the clock goes 02:00 → 03:00): late, but not lost, and once even
  if several skipped times match. A time the clock passes twice (02:30 on 2026-10-25) fires at its
  first pass only (00:30Z), never again at the second (01:30Z).
- A *wildcard* schedule (``*`` in the minute or hour field: ``*/15 * * * *``, ``0 * * * *``,
  ``@hourly``) keeps its rhythm in real time: skipped wall times do not fire (there was no such
  moment), repeated ones fire at both passes, so ``*/30 * * * *`` fires every 30 minutes through
  both changes.

Catch-up (`due`): after downtime only the latest missed tick fires, and only if it is at most
``grace`` old; older ones are skipped, so a restart never floods a flow with runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from chronary.timeutil import valid_timezone

MAX_LENGTH = 200
ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_HASHED = re.compile(r"[hr](\(\d+-\d+\))?(/\d+)?", re.IGNORECASE)
_SECOND = timedelta(seconds=1)
# croniter iterates naive wall-clock times: a datetime of this year starts every search in validate
_PROBE = datetime(2000, 1, 1)


class _Schedule:
    """A checked expression in its zone; maps matching wall times to the instants that fire."""

    def __init__(self, fields: str, zone: ZoneInfo, fixed: bool) -> None:
        self.fields = fields
        self.zone = zone
        self.fixed = fixed

    def walls(self, start: datetime) -> Iterator[datetime]:
        """Matching naive wall times strictly after `start` (naive), in order."""
        from croniter import CroniterBadDateError, croniter  # imported when a schedule is first read

        it = croniter(self.fields, start)
        while True:
            try:
                yield it.get_next(datetime)
            except CroniterBadDateError:  # nothing in croniter's search window (decades)
                return

    def _local(self, instant: datetime) -> datetime:
        return instant.astimezone(self.zone).replace(tzinfo=None)

    def instants(self, wall: datetime) -> list[datetime]:
        """The UTC instants at which a matching wall time fires (none, one, or two)."""
        first = wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        second = wall.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        if first == second:
            return [first]
        if self._local(first) == wall:  # the clock passes this time twice
            both = sorted((first, second))
            return both[:1] if self.fixed else both
        # the clock skips this time: fixed-time schedules fire when it jumps, wildcard ones do not
        return [self._jump(wall, min(first, second), max(first, second))] if self.fixed else []

    def _jump(self, wall: datetime, before: datetime, after: datetime) -> datetime:
        """The instant the clock jumps over the skipped `wall` (the first whose wall time is later)."""
        lo, hi = math.floor(before.timestamp()), math.ceil(after.timestamp())
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._local(datetime.fromtimestamp(mid, UTC)) > wall:
                hi = mid
            else:
                lo = mid
        return datetime.fromtimestamp(hi, UTC)

    def next_after(self, after: datetime) -> datetime | None:
        local = after.astimezone(self.zone)
        wall = local.replace(tzinfo=None)
        best: datetime | None = None
        for candidate in self.walls(wall):
            later = [i for i in self.instants(candidate) if i > after]
            if later:
                best = later[0]
                break
        if not self.fixed and local.fold == 0:
            # `after` is in the first pass of a repeated hour: the second pass replays wall times
            # up to `wall`, which the search above (strictly after `wall`) never looks at
            replay = wall.replace(tzinfo=self.zone, fold=1)
            offset, replay_offset = local.utcoffset(), replay.utcoffset()
            if offset is not None and replay_offset is not None and replay_offset < offset:
                for candidate in self.walls(wall - (offset - replay_offset) - _SECOND):
                    if candidate > wall:
                        break
                    repeated = [i for i in self.instants(candidate)[1:] if i > after]
                    if repeated:
                        best = repeated[0] if best is None else min(best, repeated[0])
                        break
        return best


def _zone(name: str) -> ZoneInfo:
    if not valid_timezone(name):
        raise ValueError(f"unknown timezone {name!r}: use an IANA name such as Europe/Berlin or UTC")
    return ZoneInfo(name)


def _fields(expr: str) -> str:
    text = expr.strip()
    if not text:
        raise ValueError("the cron expression is empty")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"the cron expression is longer than {MAX_LENGTH} characters")
    if not text.isascii() or not text.isprintable():
        raise ValueError("the cron expression has characters other than printable ASCII")
    if text.startswith("@"):
        alias = ALIASES.get(text.lower())
        if alias is None:
            raise ValueError(f"unknown cron alias {text!r} (known: {', '.join(ALIASES)})")
        return alias
    fields = text.split()
    if len(fields) == 6:
        raise ValueError(
            "6 fields: the sixth would be read as seconds; schedules have minute resolution, "
            "give 5 fields (minute hour day-of-month month day-of-week)"
        )
    if len(fields) != 5:
        raise ValueError(f"{len(fields)} fields: give 5 (minute hour day-of-month month day-of-week)")
    for field in fields:
        for item in field.split(","):
            if _HASHED.fullmatch(item):
                raise ValueError(f"{field!r}: hashed and random (H, R) fields are not supported")
    return " ".join(fields)


def _schedule(expr: str, timezone: str) -> _Schedule:
    if not isinstance(expr, str):
        raise ValueError("a cron expression must be a string")
    if not isinstance(timezone, str):
        raise ValueError("the timezone must be a string (an IANA name such as Europe/Berlin)")
    return _checked(expr, timezone)


@lru_cache(maxsize=512)
def _checked(expr: str, timezone: str) -> _Schedule:
    from croniter import CroniterBadDateError, CroniterError, croniter  # not at start: only schedules need it

    fields = _fields(expr)
    zone = _zone(timezone)
    try:
        croniter(fields, _PROBE).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(f"{expr.strip()!r} never fires (no such date)") from None
    except (CroniterError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValueError(f"not a valid cron expression: {exc}") from None
    minute, hour = fields.split()[:2]
    return _Schedule(fields, zone, fixed="*" not in minute and "*" not in hour)


def _utc(moment: datetime, name: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")
    return moment.astimezone(UTC)


def validate(expr: str, timezone: str) -> None:
    """Raise ValueError naming what is wrong with the expression or the timezone."""
    _schedule(expr, timezone)


def next_after(expr: str, timezone: str, after: datetime) -> datetime:
    """The first tick strictly after `after` (aware), in UTC. ValueError if none is in sight."""
    moment = _utc(after, "after")
    tick = _schedule(expr, timezone).next_after(moment)
    if tick is None:
        raise ValueError(f"{expr.strip()!r} does not fire again after {moment.isoformat()}")
    return tick


def due(
    expr: str, timezone: str, last_fired: datetime | None, now: datetime, grace: timedelta
) -> tuple[list[datetime], datetime | None]:
    """The ticks to fire at `now` and the next tick to wait for.

    A tick is due when it lies after `last_fired` and at most `grace` before `now`; of several
    (a scheduler that slept through some) only the latest fires — at most one run per call, older
    missed ticks are skipped. `last_fired` None (never fired) makes the window just the grace.
    The next tick is the first after `now` (and after `last_fired`, should the clock have gone
    back), or None when the expression fires no more.
    """
    schedule = _schedule(expr, timezone)
    current = _utc(now, "now")
    floor = current - grace
    start = floor - timedelta(microseconds=1)
    if last_fired is not None:
        start = max(start, _utc(last_fired, "last_fired"))
    latest: datetime | None = None
    tick = schedule.next_after(start) if start < current else None
    while tick is not None and tick <= current:
        latest = tick
        tick = schedule.next_after(tick)
    after = current if last_fired is None else max(current, _utc(last_fired, "last_fired"))
    if tick is None or tick <= after:
        tick = schedule.next_after(after)
    return ([latest] if latest is not None else []), tick
