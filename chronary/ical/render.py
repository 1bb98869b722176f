"""Render stored events as VEVENT text and whole VCALENDAR bodies (RFC 5545).

Pure functions over stored rows (times in unix seconds, UTC). Timed events are written with
TZID in their zone (so clients expand RRULEs on the right wall-clock time across DST), UTC
calendars with `Z`, all-day events as VALUE=DATE. Everything here is string building; see
`chronary.ical.text` for why.

A local time in the hour a DST end repeats names two instants. RFC 5545 3.3.5 says the TZID form
means the first; dateutil/icalendar read it so, Mozilla ical.js reads the second (issue 11). So
each value says what it is (`Role`):

- "instant" (DTSTART/DTEND of single events and overrides, RDATE values): written in UTC when
  its local time is repeated, so every reader gets the same instant.
- "occurrence" (RECURRENCE-ID, EXDATE): it must match an occurrence the reader generates from the
  wall-clock RRULE, and a reader resolves a repeated local time the same way for both; so the
  first instant of a repeated hour keeps the TZID form, and only the second (which no wall-clock
  rule generates) is written in UTC, EXDATEs each on a line of their own.
- "series" (a master's DTSTART/DTEND): always TZID, because the RRULE recurs on DTSTART's value
  type; a UTC DTSTART would repeat in UTC and move every occurrence on the other side of a DST
  change by an hour. A master starting in the second pass of a repeated hour is therefore written
  as that local time, which means its first pass; that is also where Chronary's own expansion
  (`recurrence.expand`, wall-clock) puts the first occurrence, so the feed agrees with the API.

Local times skipped by a DST start never come out of a UTC → local conversion; every value
written reads back (local → UTC) as the stored instant, except the series case above.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from chronary.ical import vtimezone as _vtimezone
from chronary.ical.text import CRLF, date_stamp, escape_text, fold, param_value, stored_stamp, utc_stamp
from chronary.timeutil import from_ts, parse_stored

PRODID = "-//Chronary//Chronary Calendar Server//EN"
STATUS = {"confirmed": "CONFIRMED", "tentative": "TENTATIVE", "hold": "TENTATIVE"}
VTIMEZONE_YEARS_AHEAD = 30
Role = Literal["instant", "occurrence", "series"]  # how a zoned value may be written: see the module doc


class TimeFormat:
    """How one event writes its instants: VALUE=DATE, UTC `Z`, or local time with TZID."""

    __slots__ = ("tzid", "all_day", "tz", "utc", "_params")

    def __init__(self, tzid: str, all_day: bool) -> None:
        self.tzid = tzid
        self.all_day = all_day
        self.tz = _zone(tzid)
        self.utc = tzid in ("UTC", "Etc/UTC", "GMT")
        self._params = ";VALUE=DATE" if all_day else ("" if self.utc else f";TZID={param_value(tzid)}")

    def params(self) -> str:
        return self._params

    def value(self, dt: datetime | date) -> str:
        if self.all_day:
            d = dt.astimezone(self.tz) if isinstance(dt, datetime) else dt
            return "%04d%02d%02d" % (d.year, d.month, d.day)  # noqa: UP031
        if not isinstance(dt, datetime):
            dt = datetime(dt.year, dt.month, dt.day, tzinfo=self.tz)
        return self._stamp(dt.astimezone(UTC if self.utc else self.tz))

    def _stamp(self, d: datetime) -> str:
        # %-formatting: measurably faster than strftime or f-string format specs here
        return "%04d%02d%02dT%02d%02d%02d%s" % (  # noqa: UP031
            d.year,
            d.month,
            d.day,
            d.hour,
            d.minute,
            d.second,
            "Z" if self.utc else "",
        )

    def utc_value(self, dt: datetime | date, role: Role = "instant") -> str | None:
        """The UTC form (`…Z`) when `dt` must not be written as local time with TZID, else None."""
        if self.all_day or self.utc or role == "series" or not isinstance(dt, datetime):
            return None
        return utc_stamp(dt) if self._repeated(int(dt.timestamp()), role) else None

    def prop(self, name: str, ts: int, role: Role = "instant") -> str:
        if self.all_day or self.utc:
            return f"{name}{self._params}:{self.value(datetime.fromtimestamp(ts, UTC if self.utc else self.tz))}"
        if role != "series" and self._repeated(ts, role):
            return f"{name}:{utc_stamp(from_ts(ts))}"
        return f"{name}{self._params}:{self._stamp(datetime.fromtimestamp(ts, self.tz))}"

    def _repeated(self, ts: int, role: Role) -> bool:
        """Whether the instant's local time is repeated: in either pass for an "instant", in the
        second pass for an "occurrence" (its first pass is what the TZID form means)."""
        for first, second, end in _vtimezone.repeated_spans(self.tzid, ts >> _vtimezone.REPEATED_CHUNK_BITS):
            if (first if role == "instant" else second) <= ts < end:
                return True
        return False


@functools.lru_cache(maxsize=1024)
def time_format(tzid: str, all_day: bool) -> TimeFormat:
    return TimeFormat(tzid, all_day)


@functools.lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _parse_value(raw: str, params: dict[str, str], fmt: TimeFormat) -> datetime | date:
    raw = raw.strip()
    if len(raw) == 8:
        return date(int(raw[:4]), int(raw[4:6]), int(raw[6:8]))
    naive = datetime.strptime(raw.rstrip("Zz"), "%Y%m%dT%H%M%S")
    if raw.endswith(("Z", "z")):
        return naive.replace(tzinfo=UTC)
    tzid = params.get("TZID")
    try:
        zone = _zone(tzid.strip('"')) if tzid else fmt.tz
    except (ValueError, KeyError, OSError):
        zone = fmt.tz
    return naive.replace(tzinfo=zone)


def _until(rule: str, fmt: TimeFormat) -> str:
    """UNTIL must match DTSTART's type: a DATE for all-day, UTC for zoned date-times."""
    parts = []
    for part in rule.split(";"):
        key, _, value = part.partition("=")
        if key.upper() == "UNTIL" and value:
            try:
                dt = _parse_value(value, {}, fmt)
            except ValueError:
                parts.append(part)
                continue
            if fmt.all_day:
                value = date_stamp(dt.astimezone(fmt.tz).date() if isinstance(dt, datetime) else dt)
            else:
                if not isinstance(dt, datetime):
                    dt = datetime(dt.year, dt.month, dt.day, tzinfo=fmt.tz)
                value = utc_stamp(dt)
            part = f"UNTIL={value}"
        parts.append(part)
    return ";".join(parts)


def recurrence_lines(lines: list[str], fmt: TimeFormat, extra_exdates: list[int]) -> list[str]:
    """Stored RRULE/EXRULE/RDATE/EXDATE lines rewritten to match DTSTART's value type."""
    out: list[str] = []
    for raw in lines:
        head, _, value = raw.partition(":")
        name, *param_parts = head.split(";")
        name = name.upper()
        if name in ("RRULE", "EXRULE"):
            out.append(f"{name}:{_until(value, fmt)}")
            continue
        params = {}
        for p in param_parts:
            k, _, v = p.partition("=")
            params[k.upper()] = v
        if "/" in value or params.get("VALUE", "").upper() == "PERIOD":
            out.append(raw)  # RDATE periods are passed through untouched
            continue
        try:
            parsed = [_parse_value(v, params, fmt) for v in value.split(",") if v.strip()]
        except ValueError:
            continue  # validated on the way in; never let one odd line break a whole feed
        out.extend(_date_lines(name, parsed, fmt, "occurrence" if name == "EXDATE" else "instant"))
    if extra_exdates:
        out.extend(_date_lines("EXDATE", [from_ts(ts) for ts in sorted(extra_exdates)], fmt, "occurrence"))
    return out


def _date_lines(name: str, values: list[datetime | date], fmt: TimeFormat, role: Role) -> list[str]:
    """One line with the TZID values, then one line per value that must be UTC (never a UTC value
    inside a TZID list: a list has one value type)."""
    local: list[str] = []
    utc: list[str] = []
    for v in values:
        u = fmt.utc_value(v, role)
        if u:
            utc.append(f"{name}:{u}")
        else:
            local.append(fmt.value(v))
    return ([f"{name}{fmt.params()}:{','.join(local)}"] if local else []) + utc


def _stamp(value: str | None) -> str | None:
    if not value:
        return None
    if len(value) >= 20 and value.endswith("Z") and value[10] == "T":
        return stored_stamp(value)
    dt = parse_stored(value)
    return None if dt is None else utc_stamp(dt)


def event_tzid(row: dict[str, Any], calendar_tz: str) -> str:
    """Imported series keep their source zone (remote.tzid) so expansion matches the source."""
    remote = row.get("remote")
    if isinstance(remote, dict) and isinstance(remote.get("tzid"), str) and not row["all_day"]:
        return remote["tzid"]
    return calendar_tz


def render_vevent(
    row: dict[str, Any],
    calendar_tz: str,
    default_reminders: list[int] | None,
    *,
    uid: str | None = None,
    exdates: list[int] | None = None,
    master: dict[str, Any] | None = None,
) -> str:
    """One VEVENT, folded, CRLF-terminated. `master` is given for a RECURRENCE-ID override."""
    tzid = event_tzid(master or row, calendar_tz)
    fmt = time_format(tzid, bool(row["all_day"]))
    lines = ["BEGIN:VEVENT", f"UID:{escape_text(uid or row['ical_uid'])}"]
    stamp = _stamp(row["updated_at"])
    if stamp:
        lines.append(f"DTSTAMP:{stamp}")
    created = _stamp(row["created_at"])
    if created:
        lines.append(f"CREATED:{created}")
    if stamp:
        lines.append(f"LAST-MODIFIED:{stamp}")
    lines.append(f"SEQUENCE:{int(row['sequence'] or 0)}")
    role: Role = "series" if master is None and row.get("recurrence") else "instant"
    lines.append(fmt.prop("DTSTART", row["start_ts"], role))
    lines.append(fmt.prop("DTEND", row["end_ts"], role))
    if master is not None and row.get("recurrence_id_ts") is not None:
        master_fmt = time_format(tzid, bool(master["all_day"]))
        lines.append(master_fmt.prop("RECURRENCE-ID", row["recurrence_id_ts"], "occurrence"))
    elif row.get("recurrence"):
        lines.extend(recurrence_lines(row["recurrence"], fmt, exdates or []))
    lines.append(f"SUMMARY:{escape_text(row['title'])}")
    if row.get("description"):
        lines.append(f"DESCRIPTION:{escape_text(row['description'])}")
    if row.get("location"):
        lines.append(f"LOCATION:{escape_text(row['location'])}")
    status = row["status"]
    lines.append(f"STATUS:{STATUS.get(status, 'CANCELLED')}")
    # spec: every shown status is OPAQUE; an event marked transparent (holidays, markers) is not
    lines.append("TRANSP:TRANSPARENT" if row.get("transparency") == "transparent" else "TRANSP:OPAQUE")
    if status == "hold":
        lines.append("X-CHRONARY-HOLD:TRUE")
    for att in row.get("attendees") or []:
        email = str(att.get("email") or "")
        if not email:
            continue
        cn = f";CN={param_value(att['name'])}" if att.get("name") else ""
        lines.append(f"ATTENDEE{cn}:mailto:{email}")
    reminders = row["reminders"] if row.get("reminders") is not None else default_reminders
    for minutes in reminders or []:
        lines += [
            "BEGIN:VALARM",
            "ACTION:DISPLAY",
            f"DESCRIPTION:{escape_text(row['title'])}",
            f"TRIGGER:-PT{int(minutes)}M",
            "END:VALARM",
        ]
    lines.append("END:VEVENT")
    # most lines are short ASCII: skip the call into fold() for them
    return "".join([line + CRLF if len(line) <= 75 and line.isascii() else fold(line) for line in lines])


def vtimezone(tzid: str, first_year: int) -> str:
    """A VTIMEZONE covering first_year to 30 years from now, built from tzdata with yearly RRULEs
    (see chronary.ical.vtimezone for why not icalendar's); cached per zone and span."""
    return _vtimezone.build(tzid, first_year, max(first_year + 1, datetime.now(UTC).year + VTIMEZONE_YEARS_AHEAD))


def calendar_head(name: str, calendar_tz: str, tzids: set[str], first_year: int) -> str:
    """Everything of a VCALENDAR before its VEVENTs (properties and the VTIMEZONEs)."""
    head = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        # X- properties are read raw by icalendar (and most clients): no TEXT escaping, one line
        f"X-WR-CALNAME:{''.join(c if c.isprintable() else ' ' for c in name).strip()}",
        f"X-WR-TIMEZONE:{calendar_tz}",
        "REFRESH-INTERVAL;VALUE=DURATION:PT5M",
        "X-PUBLISHED-TTL:PT5M",
    ]
    parts = ["".join(fold(line) for line in head)]
    for tzid in sorted(tzids | {calendar_tz}):
        try:
            parts.append(vtimezone(tzid, first_year))
        except Exception:  # noqa: BLE001 - a zone tzdata cannot describe: clients fall back to TZID
            continue
    return "".join(parts)


CALENDAR_END = "END:VCALENDAR" + CRLF


def render_calendar(name: str, calendar_tz: str, tzids: set[str], first_year: int, vevents: list[str]) -> str:
    return calendar_head(name, calendar_tz, tzids, first_year) + "".join(vevents) + CALENDAR_END


def first_year(start_ts: int) -> int:
    return max(1970, (from_ts(start_ts) - timedelta(days=366)).year)
