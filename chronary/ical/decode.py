"""VEVENT → EventData: the one reader for subscribed feeds, CalDAV resources and the write-back base.

One set of rules for every source, so one `recurrence` column holds one format:
- Times become UTC seconds. Floating times are read in the feed's X-WR-TIMEZONE, else the Chronary
  calendar's zone; all-day dates become local midnights in the calendar's zone. Windows zone
  names ("W. Europe Standard Time") map to IANA names.
- A master (single event or series) has `recurrence_id_ts` None; an override carries its
  original start. A UID with overrides but no master (invited to one occurrence) makes its first
  override the single event. A missing UID is synthesized from DTSTART and SUMMARY, stably.
- `recurrence` lines: `RRULE:`/`EXRULE:` with FREQ first and the other parts sorted; RDATE and
  EXDATE of a timed series as UTC (`NAME:20260105T090000Z,…`), of an all-day series as dates
  (`NAME;VALUE=DATE:20260105,…`), one line per property as the source wrote them. EXDATE
  without a rule or RDATE means nothing and is dropped.
  `tzid` keeps the IANA zone a timed event was written in; a series repeats there.
- STATUS CONFIRMED/TENTATIVE/CANCELLED → confirmed/tentative/cancelled (anything else:
  confirmed); a cancelled event is kept, marked cancelled. TRANSP → "opaque"/"transparent".
- Reminders: VALARMs whose TRIGGER is a duration before the start (RELATED=START, the default),
  1–40320 minutes, distinct, sorted, at most five. Attendees: `mailto:` addresses with their CN.
- Text is cut to the field limits of `chronary.limits`; an empty SUMMARY reads "(no title)".

Strict (subscriptions: a feed is imported whole or not at all) and lenient (CalDAV: one odd
resource must not stop a calendar) differ only where the data is wrong: strict raises
CodecError for DTEND before DTSTART, a date-time DTEND on an all-day event and RDATE periods;
lenient clamps the end to the start, takes the DTEND's date and drops the periods. Both raise
for what cannot be read at all (no DTSTART, invalid values, years outside 1900–2200, a
recurrence that does not expand); a lenient caller skips that resource.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
from icalendar.timezone import tzid_from_dt
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from chronary import limits
from chronary.ical import fastparse
from chronary.ical.model import CodecError, EventData, Resource
from chronary.ical.recurrence import expand
from chronary.ical.text import utc_stamp

_STATUS = {"CONFIRMED": "confirmed", "TENTATIVE": "tentative", "CANCELLED": "cancelled"}
_ZONE_NAMES: dict[ZoneInfo, tuple[str | None, str | None]] = {}  # zone -> (its TZID, its IANA name)
_DECODE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError)


@dataclass(frozen=True)
class Zones:
    """How zone-less values are read: floating times in `floating`, dates in `days`."""

    floating: ZoneInfo
    days: ZoneInfo


def iana(name: str | None) -> str | None:
    """The IANA name for a TZID (Windows names mapped), or None when there is none."""
    if not name:
        return None
    name = WINDOWS_TO_OLSON.get(name, name)
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return None
    return name


def canonical_rule(rule: str) -> str:
    """FREQ first, the other parts sorted: the same rule always reads the same."""
    parts = [p for p in rule.strip().split(";") if p]
    freq = [p for p in parts if p.upper().startswith("FREQ=")]
    return ";".join(freq + sorted(p for p in parts if not p.upper().startswith("FREQ=")))


def _values(comp: Any, name: str) -> list[tuple[Any, dict[str, str]]]:
    """Every value of a property with its parameters, from icalendar or the fast reader."""
    if isinstance(comp, fastparse.Component):
        return comp.values(name)
    raw = comp.get(name)
    items = [] if raw is None else raw if isinstance(raw, list) else [raw]
    return [(v, {k.upper(): str(x) for k, x in getattr(v, "params", {}).items()}) for v in items]


class _Reader:
    """One VEVENT being read; errors name the UID so a user can find it in the source."""

    def __init__(self, comp: Any, zones: Zones, strict: bool) -> None:
        self.comp, self.zones, self.strict = comp, zones, strict
        self.uid = str(comp.get("UID") or "").strip()

    def fail(self, what: str) -> CodecError:
        return CodecError(f"event {self.uid or '(no UID)'}: {what}")

    def decoded(self, name: str) -> Any:
        if name not in self.comp:
            return None
        try:
            return self.comp.decoded(name)
        except _DECODE_ERRORS as exc:
            raise self.fail(f"invalid {name} ({exc})") from None

    def instant(self, value: Any, name: str) -> datetime:
        if isinstance(value, datetime):
            out = value.replace(tzinfo=self.zones.floating) if value.tzinfo is None else value
        elif isinstance(value, date):
            out = datetime.combine(value, time(0), self.zones.days)
        else:
            raise self.fail(f"invalid {name} (not a valid date or date-time)")
        if not limits.YEAR_MIN <= out.year <= limits.YEAR_MAX:
            raise self.fail(f"{name} year {out.year} is outside {limits.YEAR_MIN}–{limits.YEAR_MAX}")
        return out

    def zone_of(self, value: Any) -> str | None:
        if not isinstance(value, datetime) or value.tzinfo is None:
            return None
        tz = value.tzinfo
        known = _ZONE_NAMES.get(tz) if isinstance(tz, ZoneInfo) else None
        if known is None:
            name = tzid_from_dt(value)
            known = (name, iana(name) or iana(str(tz)))
            if isinstance(tz, ZoneInfo):  # its name does not depend on the date (others' may)
                if len(_ZONE_NAMES) >= 256:
                    _ZONE_NAMES.clear()
                _ZONE_NAMES[tz] = known
        name, resolved = known
        if value.utcoffset() == timedelta(0) and name in (None, "UTC", "Z", "Etc/UTC"):
            return None
        return resolved

    def text(self, name: str, limit: int) -> str | None:
        value = self.comp.get(name)
        return (str(value)[:limit] or None) if value is not None else None

    # -- the parts ---------------------------------------------------------------------------
    def times(self) -> tuple[datetime, datetime, bool, Any]:
        start_raw = self.decoded("DTSTART")
        if start_raw is None:
            raise self.fail("missing DTSTART")
        all_day = not isinstance(start_raw, datetime)
        start = self.instant(start_raw, "DTSTART")
        end_raw, duration = self.decoded("DTEND"), self.decoded("DURATION")
        if all_day and isinstance(end_raw, datetime):
            if self.strict:
                raise self.fail("DTEND is a date-time but DTSTART is a date")
            end_raw = end_raw.date()
        if end_raw is not None:
            end = self.instant(end_raw, "DTEND")
        elif isinstance(duration, timedelta):
            end = start + duration
        else:
            end = start + (timedelta(days=1) if all_day else timedelta(0))
        if end < start:
            if self.strict:
                raise self.fail("DTEND is before DTSTART")
            end = start
        return start, end, all_day, start_raw

    def dates(self, name: str, all_day: bool, start_local: datetime) -> list[str]:
        """RDATE/EXDATE lines in the stored format (module doc), one per property as written."""
        lines: list[str] = []
        for prop, _params in _values(self.comp, name):
            values: list[str] = []
            for item in getattr(prop, "dts", []):
                value = item.dt
                if isinstance(value, tuple):
                    if self.strict:
                        raise self.fail(f"{name} periods are not supported")
                    continue
                if isinstance(value, datetime):
                    instant = self.instant(value, name)
                    values.append(instant.astimezone(self.zones.days).strftime("%Y%m%d") if all_day else utc_stamp(instant))
                elif isinstance(value, date):
                    if all_day:
                        values.append(value.strftime("%Y%m%d"))
                    else:  # a date on a timed series: that day at the series' own wall-clock time
                        local = datetime.combine(value, start_local.timetz().replace(tzinfo=None))
                        values.append(utc_stamp(local.replace(tzinfo=start_local.tzinfo)))
                else:
                    raise self.fail(f"invalid {name} value")
            if values:
                lines.append(f"{name};VALUE=DATE:{','.join(values)}" if all_day else f"{name}:{','.join(values)}")
        return lines

    def recurrence(self, all_day: bool, start_local: datetime) -> list[str]:
        lines: list[str] = []
        for name in ("RRULE", "EXRULE"):
            for rule, _params in _values(self.comp, name):
                text = rule.to_ical().decode() if hasattr(rule, "to_ical") else str(rule)
                lines.append(f"{name}:{canonical_rule(text)}")
        lines += self.dates("RDATE", all_day, start_local)
        if lines:
            lines += self.dates("EXDATE", all_day, start_local)
        return lines

    def reminders(self) -> list[int] | None:
        minutes: set[int] = set()
        for alarm in self.comp.walk("VALARM"):
            triggers = _values(alarm, "TRIGGER")
            if not triggers or triggers[0][1].get("RELATED", "START").upper() != "START":
                continue
            try:
                value = alarm.decoded("TRIGGER")
            except _DECODE_ERRORS:
                continue
            if isinstance(value, timedelta) and value < timedelta(0):
                mins = int(-value.total_seconds() // 60)
                if limits.REMINDER_MINUTES_MIN <= mins <= limits.REMINDER_MINUTES_MAX:
                    minutes.add(mins)
        return sorted(minutes)[: limits.REMINDERS_MAX] or None

    def attendees(self) -> list[dict[str, Any]]:
        out = []
        for value, params in _values(self.comp, "ATTENDEE"):
            address = str(value)
            if address.lower().startswith("mailto:"):
                out.append({"email": address[7:], "name": params.get("CN") or None, "agent_id": None})
        return out

    def last_modified(self) -> datetime | None:
        for name in ("LAST-MODIFIED", "DTSTAMP"):
            if name in self.comp:
                try:
                    value = self.comp.decoded(name)
                except _DECODE_ERRORS:
                    return None
                return value.astimezone(UTC) if isinstance(value, datetime) and value.tzinfo else None
        return None

    def read(self) -> EventData:
        start, end, all_day, start_raw = self.times()
        if not self.uid:
            seed = f"{start_raw}|{self.comp.get('SUMMARY', '')}".encode()
            self.uid = "chronary-import-" + hashlib.sha256(seed).hexdigest()[:24]
        rid_raw = self.decoded("RECURRENCE-ID")
        rid_ts = int(self.instant(rid_raw, "RECURRENCE-ID").timestamp()) if rid_raw is not None else None
        tzid = None if all_day else self.zone_of(start_raw)
        zone = ZoneInfo(tzid) if tzid else (self.zones.days if all_day else self.zones.floating)
        recurrence = self.recurrence(all_day, start.astimezone(zone)) if rid_ts is None else []
        if recurrence:
            try:  # prove the rule expands (and does not explode) before anything is stored
                expand(start, end, recurrence, zone, start, start + timedelta(days=400), all_day)
            except _DECODE_ERRORS as exc:
                raise self.fail(f"invalid recurrence ({exc})") from None
        try:
            sequence = int(str(self.comp.get("SEQUENCE", 0) or 0))
        except ValueError:
            sequence = 0
        return EventData(
            title=(str(self.comp.get("SUMMARY") or "").strip() or limits.UNTITLED)[: limits.TITLE_MAX],
            description=self.text("DESCRIPTION", limits.DESCRIPTION_MAX),
            location=self.text("LOCATION", limits.LOCATION_MAX),
            start_ts=int(start.timestamp()),
            end_ts=int(end.timestamp()),
            all_day=all_day,
            status=_STATUS.get(str(self.comp.get("STATUS") or "CONFIRMED").upper(), "confirmed"),
            recurrence=recurrence or None,
            attendees=self.attendees(),
            reminders=self.reminders(),
            transparency="transparent" if str(self.comp.get("TRANSP") or "").upper() == "TRANSPARENT" else "opaque",
            sequence=sequence,
            last_modified=self.last_modified(),
            recurrence_id_ts=rid_ts,
            tzid=tzid,
        )


def read_vevent(comp: Any, zones: Zones, *, strict: bool = False) -> tuple[str, EventData]:
    """(UID, fields) of one VEVENT (icalendar's or the fast reader's component)."""
    reader = _Reader(comp, zones, strict)
    data = reader.read()
    return reader.uid, data


def _group(calendar: Any, zones: Zones, strict: bool, limit: int | None) -> list[Resource]:
    masters: dict[str, EventData] = {}
    overrides: dict[str, dict[int, EventData]] = {}
    order: list[str] = []
    for count, comp in enumerate(calendar.walk("VEVENT"), 1):
        if limit is not None and count > limit:
            raise CodecError(f"the feed has more than {limit} events")
        uid, data = read_vevent(comp, zones, strict=strict)
        if uid not in masters and uid not in overrides:
            order.append(uid)
        if data.recurrence_id_ts is None:
            masters.setdefault(uid, data)  # duplicates: the first one wins, as most clients do
        else:
            overrides.setdefault(uid, {}).setdefault(data.recurrence_id_ts, data)
    out = []
    for uid in order:
        pieces = list(overrides.get(uid, {}).values())
        master = masters.get(uid)
        if master is None:  # only overrides: the first one is the event
            master, pieces = pieces[0], pieces[1:]
            master.recurrence_id_ts = None
        out.append(Resource(uid=uid, master=master, overrides=pieces))
    return out


def _zones(calendar: Any, calendar_tz: ZoneInfo) -> Zones:
    named = iana(str(calendar.get("X-WR-TIMEZONE") or "")) if calendar.get("X-WR-TIMEZONE") else None
    return Zones(floating=ZoneInfo(named) if named else calendar_tz, days=calendar_tz)


def decode_resource(text: str, calendar_tz: ZoneInfo, *, strict: bool = False) -> Resource | None:
    """One provider resource (one UID); None for resources without events (tasks, journals).

    The fast reader first (a CalDAV initial sync decodes thousands), icalendar for the rest and
    for the last word on errors, as in `decode_feed`.
    """
    zones = Zones(calendar_tz, calendar_tz)
    try:
        resources = _group(fastparse.parse(text), zones, strict, None)
        return resources[0] if resources else None
    except (fastparse.Unsupported, CodecError, *_DECODE_ERRORS):
        pass
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except _DECODE_ERRORS as exc:
        raise CodecError(f"the iCalendar data cannot be parsed ({exc})") from None
    resources = _group(calendar, zones, strict, None)
    return resources[0] if resources else None


def sniff(body: bytes) -> str:
    """The text of an iCalendar body, or CodecError saying what it is instead."""
    head = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.upper().startswith(b"BEGIN:VCALENDAR"):
        preview = head[:40].decode("utf-8", "replace").replace("\n", " ").replace("\r", "")
        kind = "an HTML page" if head[:1] == b"<" else "not iCalendar data"
        raise CodecError(f"the response is {kind}, not an iCalendar file (it starts with {preview!r})")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("latin-1")


def decode_feed(body: bytes, calendar_tz: ZoneInfo, *, strict: bool = True) -> list[Resource]:
    """Every resource of a whole VCALENDAR body (a subscribed feed), grouped by UID.

    The fast reader handles the common shape of feeds; icalendar reads the rest and has the
    last word on errors, so both give the same answer (tests/ical/test_parse.py).
    """
    text = sniff(body)
    try:
        root = fastparse.parse(text)
        return _group(root, _zones(root, calendar_tz), strict, limits.FEED_EVENTS_MAX)
    except (fastparse.Unsupported, CodecError, *_DECODE_ERRORS):
        pass
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except _DECODE_ERRORS as exc:
        raise CodecError(f"the iCalendar data cannot be parsed ({exc})") from None
    if isinstance(calendar, list):
        calendar = calendar[0]
    return _group(calendar, _zones(calendar, calendar_tz), strict, limits.FEED_EVENTS_MAX)


def canonical_lines(lines: list[str], all_day: bool) -> list[str]:
    """Stored recurrence lines of an imported event in the codec's format (module doc): the
    migration that gave every source one format runs stored rows through this."""
    out = []
    for line in lines:
        head, sep, value = line.partition(":")
        name, _, params = head.partition(";")
        name = name.upper()
        if not sep:
            out.append(line)
        elif name in ("RRULE", "EXRULE"):
            out.append(f"{name}:{canonical_rule(value)}")
        elif name in ("RDATE", "EXDATE") and all_day and "PERIOD" not in params.upper():
            days = [v.strip()[:8] for v in value.split(",") if v.strip() and not v.strip().endswith("Z")]
            stamps = [v.strip() for v in value.split(",") if v.strip().endswith("Z")]
            if stamps:  # not a stored all-day shape: leave it as it is
                out.append(line)
            elif days:
                out.append(f"{name};VALUE=DATE:{','.join(days)}")
        else:
            out.append(line)
    return out
