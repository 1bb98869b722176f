"""Parse a subscribed .ics body into plain event records, or fail with a message users can read.

The whole body is parsed and checked before anything is written, so a broken feed changes
nothing already imported. Series stay series (RRULE/EXDATE/RDATE lines, expanded later in the
zone they were written in); RECURRENCE-ID overrides become exceptions keyed by the original
start in UTC. Outlook's Windows zone names ("W. Europe Standard Time") map to IANA names.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
from icalendar.timezone import tzid_from_dt
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from chronary.ical import fastparse
from chronary.ical.recurrence import expand
from chronary.ical.text import utc_stamp

MAX_EVENTS = 50_000
MIN_YEAR, MAX_YEAR = 1900, 2200


class FeedError(Exception):
    """The feed cannot be imported; the message is shown as the subscription's last_error."""


@dataclass
class ImportedEvent:
    uid: str
    recurrence_id_ts: int  # 0 for a single event or a series master
    title: str
    description: str | None
    location: str | None
    start_ts: int
    end_ts: int
    all_day: bool
    status: str  # confirmed | tentative | cancelled
    recurrence: list[str] | None
    tzid: str | None  # IANA zone a timed series repeats in
    reminders: list[int] | None
    transparent: bool

    def digest(self) -> str:
        values = [getattr(self, f) for f in _FIELDS]  # dataclasses.asdict deep-copies: slow for 10k
        return hashlib.sha256(json.dumps(values, ensure_ascii=False).encode()).hexdigest()[:32]


_FIELDS = tuple(f.name for f in fields(ImportedEvent))


def _iana(name: str | None) -> str | None:
    if not name:
        return None
    name = WINDOWS_TO_OLSON.get(name, name)
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return None
    return name


def _sniff(body: bytes) -> str:
    head = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.upper().startswith(b"BEGIN:VCALENDAR"):
        preview = head[:40].decode("utf-8", "replace").replace("\n", " ").replace("\r", "")
        kind = "an HTML page" if head[:1] == b"<" else "not iCalendar data"
        raise FeedError(f"the response is {kind}, not an iCalendar file (it starts with {preview!r})")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("latin-1")


class _Event:
    """One VEVENT being read; errors name the UID so a user can find it in the source."""

    def __init__(self, comp: Any, default_tz: ZoneInfo, day_tz: ZoneInfo) -> None:
        self.comp = comp
        self.default_tz = default_tz  # floating times
        self.day_tz = day_tz  # all-day dates: local midnight in the importing calendar's zone
        self.uid = str(comp.get("UID") or "").strip()

    def fail(self, what: str) -> FeedError:
        return FeedError(f"event {self.uid or '(no UID)'}: {what}")

    def decoded(self, name: str) -> Any:
        if name not in self.comp:
            return None
        try:
            return self.comp.decoded(name)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise self.fail(f"invalid {name} ({exc})") from None

    def aware(self, value: datetime) -> datetime:
        return value.replace(tzinfo=self.default_tz) if value.tzinfo is None else value

    def instant(self, value: date | datetime, name: str) -> datetime:
        if isinstance(value, datetime):
            out = self.aware(value)
        elif isinstance(value, date):
            out = datetime.combine(value, time(0), self.day_tz)
        else:
            raw = str(self.comp.get(name, ""))[:40] if hasattr(self.comp.get(name), "to_ical") else ""
            raise self.fail(f"invalid {name} (not a valid date or date-time{': ' + repr(raw) if raw else ''})")
        if not MIN_YEAR <= out.year <= MAX_YEAR:
            raise self.fail(f"{name} year {out.year} is outside {MIN_YEAR}–{MAX_YEAR}")
        return out

    def zone_of(self, value: datetime) -> str | None:
        if value.tzinfo is None:
            return None
        if value.utcoffset() == timedelta(0) and tzid_from_dt(value) in (None, "UTC", "Z", "Etc/UTC"):
            return "UTC"
        return _iana(tzid_from_dt(value)) or _iana(str(value.tzinfo))


def _value_lines(name: str, prop: Any, ev: _Event, all_day: bool) -> list[str]:
    props = prop if isinstance(prop, list) else [prop]
    values: list[str] = []
    for p in props:
        for item in getattr(p, "dts", []):
            dt = item.dt
            if isinstance(dt, tuple):
                raise ev.fail(f"{name} periods are not supported")
            if isinstance(dt, datetime):
                values.append(utc_stamp(ev.aware(dt)))
            elif isinstance(dt, date):
                # all-day series expand on local dates: a floating local midnight
                values.append(dt.strftime("%Y%m%dT000000"))
            else:
                raise ev.fail(f"invalid {name} value")
    return [f"{name}:{','.join(values)}"] if values else []


def _canonical_rule(rule: str) -> str:
    """FREQ first, the other parts sorted: the same rule always reads (and digests) the same."""
    parts = [p for p in rule.strip().split(";") if p]
    freq = [p for p in parts if p.upper().startswith("FREQ=")]
    return ";".join(freq + sorted(p for p in parts if not p.upper().startswith("FREQ=")))


def _reminders(comp: Any) -> list[int] | None:
    out: list[int] = []
    for alarm in comp.walk("VALARM"):
        try:
            trigger = alarm.decoded("TRIGGER")
        except (ValueError, TypeError, KeyError):
            continue
        if isinstance(trigger, timedelta) and trigger <= timedelta(0):
            minutes = int(-trigger.total_seconds() // 60)
            if 1 <= minutes <= 40320 and minutes not in out:
                out.append(minutes)
    return out[:5] or None


def _read(comp: Any, default_tz: ZoneInfo, day_tz: ZoneInfo) -> ImportedEvent | None:
    ev = _Event(comp, default_tz, day_tz)
    start_raw = ev.decoded("DTSTART")
    if start_raw is None:
        raise ev.fail("missing DTSTART")
    all_day = not isinstance(start_raw, datetime)
    start = ev.instant(start_raw, "DTSTART")
    end_raw = ev.decoded("DTEND")
    duration = ev.decoded("DURATION")
    if end_raw is not None:
        end = ev.instant(end_raw, "DTEND")
    elif isinstance(duration, timedelta):
        end = start + duration
    else:
        end = start + (timedelta(days=1) if all_day else timedelta(0))
    if end < start:
        raise ev.fail("DTEND is before DTSTART")
    if all_day and isinstance(end_raw, datetime):
        raise ev.fail("DTEND is a date-time but DTSTART is a date")
    if not ev.uid:
        seed = f"{start_raw}|{comp.get('SUMMARY', '')}".encode()
        ev.uid = "chronary-import-" + hashlib.sha256(seed).hexdigest()[:24]
    tzid = None if all_day else ev.zone_of(start_raw)
    recurrence: list[str] = []
    rid_ts = 0
    rid_raw = ev.decoded("RECURRENCE-ID")
    if rid_raw is not None:
        rid_ts = int(ev.instant(rid_raw, "RECURRENCE-ID").timestamp())
    else:
        rules = comp.get("RRULE")
        for rule in rules if isinstance(rules, list) else ([rules] if rules is not None else []):
            recurrence.append("RRULE:" + _canonical_rule(rule.to_ical().decode()))
        if "RDATE" in comp:
            recurrence += _value_lines("RDATE", comp["RDATE"], ev, all_day)
        if recurrence and "EXDATE" in comp:
            recurrence += _value_lines("EXDATE", comp["EXDATE"], ev, all_day)
    zone = ZoneInfo(tzid) if tzid else (day_tz if all_day else default_tz)
    if recurrence:
        try:  # prove the rule expands (and does not explode) before anything is stored
            expand(start, end, recurrence, zone, start, start + timedelta(days=400), all_day)
        except (ValueError, TypeError, OverflowError, KeyError, IndexError) as exc:
            raise ev.fail(f"invalid recurrence ({exc})") from None
    status = str(comp.get("STATUS") or "CONFIRMED").upper()
    if status == "CANCELLED" and rid_ts == 0:
        return None  # a cancelled event or series: nothing to show
    return ImportedEvent(
        uid=ev.uid,
        recurrence_id_ts=rid_ts,
        title=(str(comp.get("SUMMARY") or "").strip() or "(no title)")[:500],
        description=(str(comp["DESCRIPTION"])[:8192] if comp.get("DESCRIPTION") else None),
        location=(str(comp["LOCATION"])[:1000] if comp.get("LOCATION") else None),
        start_ts=int(start.astimezone(UTC).timestamp()),
        end_ts=int(end.astimezone(UTC).timestamp()),
        all_day=all_day,
        status={"CANCELLED": "cancelled", "TENTATIVE": "tentative"}.get(status, "confirmed"),
        recurrence=recurrence or None,
        tzid=tzid if tzid not in (None, "UTC") and recurrence else None,
        reminders=_reminders(comp),
        transparent=str(comp.get("TRANSP") or "").upper() == "TRANSPARENT",
    )


def parse_feed(body: bytes, calendar_tz: ZoneInfo) -> list[ImportedEvent]:
    """Every event of a VCALENDAR body; raises FeedError for anything not importable.

    Floating times are read in the feed's X-WR-TIMEZONE (else `calendar_tz`); all-day dates
    become local midnights in `calendar_tz`, as native all-day events are stored. The fast
    reader handles common feeds; icalendar reads the rest and has the last word on errors.
    """
    text = _sniff(body)
    try:
        return _events(fastparse.parse(text), calendar_tz)
    except (fastparse.Unsupported, FeedError, ValueError, TypeError, KeyError, IndexError):
        pass
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise FeedError(f"the iCalendar data cannot be parsed ({exc})") from None
    if isinstance(calendar, list):
        calendar = calendar[0]
    return _events(calendar, calendar_tz)


def _events(calendar: Any, calendar_tz: ZoneInfo) -> list[ImportedEvent]:
    zone = _iana(str(calendar.get("X-WR-TIMEZONE") or "")) if calendar.get("X-WR-TIMEZONE") else None
    tz = ZoneInfo(zone) if zone else calendar_tz
    out: list[ImportedEvent] = []
    seen: set[tuple[str, int]] = set()
    for comp in calendar.walk("VEVENT"):
        if len(out) >= MAX_EVENTS:
            raise FeedError(f"the feed has more than {MAX_EVENTS} events")
        item = _read(comp, tz, calendar_tz)
        if item is None or (item.uid, item.recurrence_id_ts) in seen:
            continue  # duplicates: the first one wins, as most clients do
        seen.add((item.uid, item.recurrence_id_ts))
        out.append(item)
    return out
