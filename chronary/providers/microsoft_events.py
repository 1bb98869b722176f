"""Microsoft Graph event JSON ↔ the neutral shapes (`EventData`, `RemoteEvent`, `Outgoing`).

Reading builds an iCalendar VEVENT from each Graph event and decodes it with the one VEVENT
codec (`chronary.ical.decode.read_vevent`, lenient), as `google_events` does, so Graph data gets
the codec's rules (canonical RRULEs, EXDATEs in UTC or as dates, all-day dates as local midnights
in the Chronary calendar's zone, reminders, attendees, text limits). What is Graph's own:

- Zones: Windows names ("Pacific Standard Time") ↔ IANA, both ways (icalendar's
  WINDOWS_TO_OLSON and its reverse). Times arrive in UTC (`Prefer: outlook.timezone="UTC"`) and
  are read in the event's own zone (`originalStartTimeZone`), so a series repeats there.
- All-day (`isAllDay`): midnight to midnight in the event's zone ↔ dates.
- `showAs`: free ↔ transparent; tentative ↔ tentative (and Chronary's holds); busy, oof,
  workingElsewhere ↔ opaque (an existing oof/workingElsewhere is kept on write).
- One reminder: `isReminderOn` + `reminderMinutesBeforeStart` ↔ reminders (the nearest one is
  written). `isCancelled` ↔ cancelled. Attendees are read only (writing them would send
  invitations: Graph has no "do not notify").
- Recurrence: Graph's pattern/range ↔ one RRULE (daily; weekly with daysOfWeek and
  firstDayOfWeek as WKST; absolute/relative monthly and yearly; range endDate as UNTIL at the
  series' start time, numbered as COUNT, noEnd). A rule Graph cannot express is `Unsupported`.

A `Series` is the master (GET /me/events/{id}) and its instances inside the sync window
(calendarView delta items, or /instances). Graph never lists a cancelled occurrence: the
occurrences the rule makes inside the window (one day in from each edge) that no instance
stands for are the cancelled ones, and become EXDATEs; exceptions become overrides. The series
etag digests the master's etag, every exception's id and etag and the cancelled starts, so it
is the same whether the instances came from a delta listing or from /instances, and an edit or
cancellation of one occurrence changes it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from chronary.ical.decode import Zones, iana, read_vevent
from chronary.ical.model import CodecError, EventData
from chronary.ical.recurrence import expand
from chronary.ical.text import utc_stamp
from chronary.providers.base import RemoteEvent, Window
from chronary.providers.google_events import at_occurrence, plain
from chronary.timeutil import from_ts

SERIES_ETAG_PREFIX = "series:"
TRANSACTION_PREFIX = "chronary:"
READ_ERRORS = (CodecError, ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError)
EDGE = timedelta(days=1)  # occurrences this close to the window's edges are never taken as cancelled

_UTC_NAMES = frozenset({"utc", "etc/utc", "tzone://microsoft/utc", "z", "gmt"})
OLSON_TO_WINDOWS: dict[str, str] = {}
for _win, _olson in WINDOWS_TO_OLSON.items():
    OLSON_TO_WINDOWS.setdefault(_olson, _win)
DAYS = {
    "monday": "MO",
    "tuesday": "TU",
    "wednesday": "WE",
    "thursday": "TH",
    "friday": "FR",
    "saturday": "SA",
    "sunday": "SU",
}
DAY_NAMES = {v: k for k, v in DAYS.items()}
WEEK = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
INDEX_NAMES = {v: k for k, v in INDEX.items()}
_RULE_PARTS = frozenset({"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS", "WKST"})
_BYDAY = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")


class Unsupported(CodecError):
    """Chronary data Graph cannot hold (a repeat rule without a Graph pattern)."""


# -- zones ------------------------------------------------------------------------------------


def zone_name(name: str | None) -> str | None:
    """The IANA name for a Graph zone (Windows, IANA or tzone://Microsoft/Utc); None if unknown."""
    if not name:
        return None
    if name.strip().lower() in _UTC_NAMES:
        return "UTC"
    return iana(name)


def windows_name(name: str | None) -> str:
    """The Windows name Graph knows for an IANA zone; the IANA name itself when there is none
    (Graph accepts those too); UTC for nothing."""
    found = zone_name(name) or "UTC"
    if found in ("UTC", "Etc/UTC", "Etc/GMT"):
        return "UTC"
    return OLSON_TO_WINDOWS.get(found, found)


def _zone(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    return ZoneInfo(zone_name(name) or zone_name(fallback) or "UTC")


def event_zone_name(item: dict[str, Any] | None, fallback: str) -> str:
    """The zone an event was written in: its originalStartTimeZone, else its recurrence's, else
    the zone its start is given in (UTC under `Prefer: outlook.timezone="UTC"`)."""
    item = item or {}
    rng = (item.get("recurrence") or {}).get("range") or {}
    for candidate in (
        item.get("originalStartTimeZone"),
        rng.get("recurrenceTimeZone"),
        (item.get("start") or {}).get("timeZone"),
    ):
        found = zone_name(candidate)
        if found:
            return found
    return zone_name(fallback) or "UTC"


# -- ids and etags ----------------------------------------------------------------------------


def transaction_id(event_id: str, uid: str) -> str:
    """The transactionId of a create: derived from Chronary's event id (a retried POST answers
    the event the first one made), carrying the UID when it is not the event's own (Graph's
    iCalUId cannot be set, so this is how a Chronary UID survives)."""
    if uid == f"{event_id}@chronary":
        return TRANSACTION_PREFIX + event_id
    return TRANSACTION_PREFIX + event_id + ":" + base64.urlsafe_b64encode(uid.encode()).decode().rstrip("=")


def uid_of(item: dict[str, Any]) -> str:
    """The UID Chronary knows an event by: the one its transactionId carries, else iCalUId."""
    tid = str(item.get("transactionId") or "")
    if tid.startswith(TRANSACTION_PREFIX):
        rest = tid[len(TRANSACTION_PREFIX) :]
        event_id, sep, encoded = rest.partition(":")
        if not sep and event_id:
            return f"{event_id}@chronary"
        if encoded:
            try:
                return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            except (ValueError, UnicodeDecodeError):
                pass
    return str(item.get("iCalUId") or item.get("id") or "")


def is_removed(item: dict[str, Any]) -> bool:
    return "@removed" in item


def series_key(item: dict[str, Any]) -> str:
    return str(item.get("seriesMasterId") or item["id"])


def is_instance(item: dict[str, Any]) -> bool:
    return bool(item.get("seriesMasterId")) or item.get("type") in ("occurrence", "exception")


def etag_of(item: dict[str, Any] | None) -> str | None:
    if not item:
        return None
    value = item.get("@odata.etag") or (f'W/"{item["changeKey"]}"' if item.get("changeKey") else None)
    return str(value) if value else None


def is_series_etag(etag: str | None) -> bool:
    return bool(etag) and str(etag).startswith(SERIES_ETAG_PREFIX)


def occurrence_hash(item_id: str) -> bytes:
    """Six bytes naming an instance id in the cursor's series index (never the id itself)."""
    return hashlib.sha256(item_id.encode()).digest()[:6]


# -- series -----------------------------------------------------------------------------------


@dataclass
class Series:
    """One series as Graph holds it: the master and its instances inside the sync window."""

    key: str
    master: dict[str, Any] | None = None
    instances: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exceptions(self) -> list[dict[str, Any]]:
        return [i for i in self.instances if i.get("type") == "exception" or i.get("isCancelled")]


def raw_of(key: str, master: dict[str, Any], exceptions: list[dict[str, Any]]) -> str:
    """The JSON kept as the base of the next write: the master and the exceptions as Graph gave them."""
    return json.dumps({"key": key, "master": master, "exceptions": exceptions}, sort_keys=True, separators=(",", ":"))


def parse_raw(raw: str | None) -> tuple[str, dict[str, Any], list[dict[str, Any]]] | None:
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("master"), dict) or not isinstance(data.get("key"), str):
        return None
    exceptions = [e for e in data.get("exceptions") or [] if isinstance(e, dict)]
    return data["key"], data["master"], exceptions


# -- reading ----------------------------------------------------------------------------------


def _parse_dt(value: str) -> datetime:
    """Graph's dateTime (seven fraction digits, maybe an offset or Z)."""
    text = value.strip().replace("Z", "+00:00")
    m = re.match(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?(.*)$", text)
    if m:
        text = m.group(1) + (("." + (m.group(2) + "000000")[:6]) if m.group(2) else "") + m.group(3)
    return datetime.fromisoformat(text)


def when(obj: dict[str, Any], zone: ZoneInfo, all_day: bool) -> date | datetime:
    """A Graph dateTimeTimeZone: a date for an all-day event (its midnight, read in the event's
    own zone when Graph shifted it), else an aware datetime in `zone`."""
    value = _parse_dt(str(obj["dateTime"]))
    if value.tzinfo is None:
        value = value.replace(tzinfo=_zone(obj.get("timeZone")))
    if all_day:
        if value.time() == time(0):
            return value.date()
        return value.astimezone(zone).date()
    return value.astimezone(zone)


def instant(value: str) -> datetime:
    moment = _parse_dt(value)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def body_text(item: dict[str, Any]) -> str | None:
    body = item.get("body") or {}
    content = str(body.get("content") or "")
    if str(body.get("contentType") or "text").lower() == "html":
        content = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", "", content)
        content = re.sub(r"(?i)<br\s*/?>|</p\s*>|</div\s*>", "\n", content)
        content = html.unescape(re.sub(r"<[^>]*>", "", content))
        content = "\n".join(line.rstrip() for line in content.replace("\r\n", "\n").split("\n")).strip()
    return content or None


def _location(item: dict[str, Any]) -> str | None:
    loc = item.get("location") or {}
    return str(loc.get("displayName") or "").strip() or None


def _byday(days: list[str], index: str | None) -> list[str]:
    n = INDEX.get(str(index or "first"), 1)
    if len(days) == 1:
        return [f"BYDAY={n}{days[0]}"]
    return [f"BYDAY={','.join(days)}", f"BYSETPOS={n}"]


def pattern_rule(recurrence: dict[str, Any] | None, start: date | datetime, zone: ZoneInfo) -> str | None:
    """Graph's recurrence as one stored RRULE line (module doc); None for none."""
    if not recurrence:
        return None
    pat, rng = recurrence.get("pattern") or {}, recurrence.get("range") or {}
    kind = pat.get("type")
    interval = int(pat.get("interval") or 1)
    days = [DAYS[str(d).lower()] for d in pat.get("daysOfWeek") or [] if str(d).lower() in DAYS]
    start_day = start if not isinstance(start, datetime) else start.date()
    month = int(pat.get("month") or 0) or start_day.month
    dom = int(pat.get("dayOfMonth") or 0) or start_day.day
    if kind == "daily":
        parts = ["FREQ=DAILY"]
    elif kind == "weekly":
        parts = ["FREQ=WEEKLY", "BYDAY=" + ",".join(days or [WEEK[start_day.weekday()]])]
        wkst = DAYS.get(str(pat.get("firstDayOfWeek") or "").lower())
        if interval > 1 and wkst and wkst != "MO":
            parts.append(f"WKST={wkst}")
    elif kind == "absoluteMonthly":
        parts = ["FREQ=MONTHLY", f"BYMONTHDAY={dom}"]
    elif kind == "relativeMonthly":
        parts = ["FREQ=MONTHLY", *_byday(days or [WEEK[start_day.weekday()]], pat.get("index"))]
    elif kind == "absoluteYearly":
        parts = ["FREQ=YEARLY", f"BYMONTH={month}", f"BYMONTHDAY={dom}"]
    elif kind == "relativeYearly":
        parts = ["FREQ=YEARLY", f"BYMONTH={month}", *_byday(days or [WEEK[start_day.weekday()]], pat.get("index"))]
    else:
        raise CodecError(f"unknown Graph recurrence pattern {kind!r}")
    if interval > 1:
        parts.append(f"INTERVAL={interval}")
    kind_range = rng.get("type")
    if kind_range == "numbered" and int(rng.get("numberOfOccurrences") or 0) > 0:
        parts.append(f"COUNT={int(rng['numberOfOccurrences'])}")
    elif kind_range == "endDate" and rng.get("endDate") and not str(rng["endDate"]).startswith("0001"):
        end = date.fromisoformat(str(rng["endDate"])[:10])
        if isinstance(start, datetime):
            last = datetime.combine(end, start.astimezone(zone).time()).replace(tzinfo=zone)
            parts.append("UNTIL=" + utc_stamp(last))
        else:
            parts.append("UNTIL=" + end.strftime("%Y%m%d"))
    return "RRULE:" + ";".join(parts)


def vevent(
    item: dict[str, Any], zone: ZoneInfo, uid: str, *, rule: str | None = None, rid: date | datetime | None = None
) -> icalendar.Event:
    """One Graph event as an iCalendar VEVENT (module doc): what the codec then reads."""
    all_day = bool(item.get("isAllDay"))
    comp = icalendar.Event()
    comp.add("UID", uid)
    comp.add("DTSTART", when(item["start"], zone, all_day))
    if item.get("end"):
        comp.add("DTEND", when(item["end"], zone, all_day))
    if item.get("subject"):
        comp.add("SUMMARY", str(item["subject"]))
    description = body_text(item)
    if description:
        comp.add("DESCRIPTION", description)
    location = _location(item)
    if location:
        comp.add("LOCATION", location)
    show_as = str(item.get("showAs") or "busy")
    status = "CANCELLED" if item.get("isCancelled") else "TENTATIVE" if show_as == "tentative" else "CONFIRMED"
    comp.add("STATUS", status)
    comp.add("TRANSP", "TRANSPARENT" if show_as == "free" else "OPAQUE")
    if rule:
        mini = icalendar.Event.from_ical(f"BEGIN:VEVENT\r\n{rule}\r\nEND:VEVENT\r\n")
        comp.add("RRULE", mini.get("RRULE"))
    if rid is not None:
        comp.add("RECURRENCE-ID", rid)
    if item.get("lastModifiedDateTime"):
        with contextlib.suppress(ValueError):
            comp.add("LAST-MODIFIED", instant(str(item["lastModifiedDateTime"])))
    for attendee in item.get("attendees") or []:
        email = ((attendee or {}).get("emailAddress") or {}).get("address")
        if not email:
            continue
        address = icalendar.vCalAddress(f"mailto:{email}")
        name = ((attendee or {}).get("emailAddress") or {}).get("name")
        if name:
            address.params["CN"] = str(name)
        comp.add("ATTENDEE", address)
    minutes = item.get("reminderMinutesBeforeStart")
    if item.get("isReminderOn") and isinstance(minutes, int) and minutes > 0:
        alarm = icalendar.Alarm()
        alarm.add("ACTION", "DISPLAY")
        alarm.add("TRIGGER", timedelta(minutes=-minutes))
        comp.add_component(alarm)
    return comp


def original_start(item: dict[str, Any], zone: ZoneInfo, all_day: bool) -> date | datetime:
    """An instance's original start: a date for an all-day series (in the series' zone)."""
    if item.get("originalStart"):
        moment = instant(str(item["originalStart"]))
        return moment.astimezone(zone).date() if all_day else moment.astimezone(zone)
    if item.get("type") == "occurrence" and item.get("start"):  # an occurrence starts where it always did
        return when(item["start"], zone, all_day)
    raise CodecError(f"instance {item.get('id')}: no originalStart")


def original_ts(item: dict[str, Any], zone: ZoneInfo, days: ZoneInfo, all_day: bool) -> int:
    """The original start as Chronary keys an occurrence (recurrence_id_ts)."""
    moment = original_start(item, zone, all_day)
    if isinstance(moment, datetime):
        return int(moment.timestamp())
    return int(datetime.combine(moment, time(0), days).timestamp())


def decode_piece(
    item: dict[str, Any],
    zone: ZoneInfo,
    days: ZoneInfo,
    uid: str,
    *,
    rule: str | None = None,
    rid: date | datetime | None = None,
) -> EventData:
    _, data = read_vevent(vevent(item, zone, uid, rule=rule, rid=rid), Zones(floating=zone, days=days), strict=False)
    data.remote_id = str(item.get("id")) if item.get("id") else None
    data.etag = etag_of(item)
    return data


def decode_single(item: dict[str, Any], local_zone: str) -> RemoteEvent:
    """A single event (no recurrence) as a RemoteEvent. Raises one of READ_ERRORS."""
    zone = ZoneInfo(event_zone_name(item, local_zone))
    uid = uid_of(item)
    master = decode_piece(item, zone, _zone(local_zone), uid)
    return RemoteEvent(str(item["id"]), etag_of(item), uid, master, [], raw_of(str(item["id"]), item, []))


def _exdate_line(values: list[int], all_day: bool, days: ZoneInfo) -> str:
    if all_day:
        return "EXDATE;VALUE=DATE:" + ",".join(sorted({from_ts(v).astimezone(days).strftime("%Y%m%d") for v in values}))
    return "EXDATE:" + ",".join(sorted({utc_stamp(from_ts(v)) for v in values}))


def expected_starts(master: EventData, window: Window, days: ZoneInfo) -> set[int]:
    """Original starts (Chronary keys) of the occurrences the series' rule makes well inside the
    window: those an instance must stand for unless the occurrence was cancelled."""
    if not master.recurrence:
        return set()
    lo, hi = from_ts(window.start_ts) + EDGE, from_ts(window.end_ts) - EDGE
    if hi <= lo:
        return set()
    tz = days if master.all_day else ZoneInfo(master.tzid) if master.tzid else ZoneInfo("UTC")
    rules = [line for line in master.recurrence if not line.upper().startswith("EXDATE")]
    spans = expand(from_ts(master.start_ts), from_ts(master.end_ts), rules, tz, lo, hi, master.all_day)
    return {int(s.timestamp()) for s, e in spans if s >= lo and e <= hi}


def series_etag(master: dict[str, Any], exceptions: list[dict[str, Any]], cancelled: set[int]) -> str:
    pieces = [f"master\t{etag_of(master) or ''}"]
    pieces += sorted(f"exception\t{e.get('id')}\t{etag_of(e) or ''}" for e in exceptions)
    pieces += [f"cancelled\t{ts}" for ts in sorted(cancelled)]
    return SERIES_ETAG_PREFIX + hashlib.sha256("\n".join(pieces).encode()).hexdigest()[:40]


@dataclass
class Decoded:
    """A series read: the RemoteEvent, and the instance ids by original start (for writes)."""

    event: RemoteEvent
    cancelled: set[int]
    by_original: dict[int, dict[str, Any]]


def decode_series(series: Series, window: Window, local_zone: str) -> Decoded:
    """The whole series (module doc). Raises one of READ_ERRORS for data the codec cannot read."""
    master_json = series.master
    if master_json is None or not master_json.get("start"):
        raise CodecError(f"series {series.key}: no readable master")
    days = _zone(local_zone)
    zone = ZoneInfo(event_zone_name(master_json, local_zone))
    all_day = bool(master_json.get("isAllDay"))
    uid = uid_of(master_json)
    rule = pattern_rule(master_json.get("recurrence"), when(master_json["start"], zone, all_day), zone)
    master = decode_piece(master_json, zone, days, uid, rule=rule)
    master.remote_id = series.key
    by_original: dict[int, dict[str, Any]] = {}
    flagged: set[int] = set()
    for item in series.instances:
        try:
            key = original_ts(item, zone, days, all_day)
        except READ_ERRORS:
            continue
        if item.get("isCancelled"):
            flagged.add(key)
        else:
            by_original[key] = item
    cancelled = flagged | (expected_starts(master, window, days) - set(by_original)) if master.recurrence else set()
    if cancelled:
        master.recurrence = [*(master.recurrence or []), _exdate_line(sorted(cancelled), master.all_day, days)]
    overrides = []
    for _, item in sorted(by_original.items()):
        if item.get("type") != "exception":
            continue
        piece = decode_piece(item, zone, days, uid, rid=original_start(item, zone, all_day))
        if master.recurrence and plain(piece, master, days):
            continue
        overrides.append(piece)
    exceptions = series.exceptions
    event = RemoteEvent(
        remote_id=series.key,
        etag=series_etag(master_json, exceptions, cancelled),
        uid=uid,
        master=master,
        overrides=overrides,
        raw=raw_of(series.key, master_json, exceptions),
    )
    return Decoded(event, cancelled, by_original)


# -- writing ----------------------------------------------------------------------------------


def show_as(data: EventData, old: str | None = None) -> str:
    if data.status in ("tentative", "hold"):
        return "tentative"
    if data.transparency == "transparent":
        return "free"
    return old if old in ("busy", "oof", "workingElsewhere") else "busy"


def _local(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(timespec="seconds")


def times(data: EventData, zone: str, calendar_zone: str) -> dict[str, Any]:
    """start, end and isAllDay: an all-day event midnight to midnight in the calendar's zone, a
    timed one as wall time in the zone the series repeats in (Windows names)."""
    start, end = from_ts(data.start_ts), from_ts(data.end_ts)
    if data.all_day:
        days = _zone(calendar_zone)
        start_day = start.astimezone(days).date()
        end_day = max(end.astimezone(days).date(), start_day + timedelta(days=1))
        name = windows_name(calendar_zone)
        return {
            "isAllDay": True,
            "start": {"dateTime": f"{start_day.isoformat()}T00:00:00", "timeZone": name},
            "end": {"dateTime": f"{end_day.isoformat()}T00:00:00", "timeZone": name},
        }
    tz = _zone(zone)
    end = max(end, start)
    name = windows_name(zone)
    return {
        "isAllDay": False,
        "start": {"dateTime": _local(start.astimezone(tz)), "timeZone": name},
        "end": {"dateTime": _local(end.astimezone(tz)), "timeZone": name},
    }


def reminder_fields(data: EventData) -> dict[str, Any]:
    minutes = sorted(set(data.reminders or []))
    if not minutes:
        return {"isReminderOn": False}
    return {"isReminderOn": True, "reminderMinutesBeforeStart": minutes[0]}


def _rule_parts(line: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in line.partition(":")[2].split(";"):
        key, _, value = part.partition("=")
        if key:
            out[key.strip().upper()] = value.strip().upper()
    return out


def _end_date(until: str, start_local: datetime | date, tz: ZoneInfo) -> date:
    """Graph's inclusive endDate for an UNTIL: the last day an occurrence can start on."""
    if len(until) == 8:
        day = datetime.strptime(until, "%Y%m%d").date()
        if isinstance(start_local, datetime) and start_local.time() > time(0):
            return day - timedelta(days=1)  # a date UNTIL is that day's local midnight (RFC 5545)
        return day
    if until.endswith("Z"):
        moment = datetime.strptime(until[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC).astimezone(tz)
    else:
        moment = datetime.strptime(until[:15], "%Y%m%dT%H%M%S").replace(tzinfo=tz)
    if not isinstance(start_local, datetime):
        return moment.date()
    return moment.date() if moment.time() >= start_local.time() else moment.date() - timedelta(days=1)


def recurrence_body(data: EventData, zone: str, calendar_zone: str) -> dict[str, Any] | None:
    """Graph's pattern and range for the series' RRULE (EXDATEs are deleted occurrences, written
    separately); None for a single event. Raises Unsupported for a rule Graph cannot express."""
    lines = [line for line in data.recurrence or [] if line.split(":", 1)[0].split(";", 1)[0].upper() != "EXDATE"]
    if not lines:
        return None
    names = [line.split(":", 1)[0].split(";", 1)[0].upper() for line in lines]
    if names != ["RRULE"]:
        raise Unsupported("Outlook cannot store this repeat rule (only one RRULE, without RDATE or EXRULE)")
    parts = _rule_parts(lines[0])
    unknown = sorted(set(parts) - _RULE_PARTS)
    if unknown:
        raise Unsupported(f"Outlook cannot store a repeat rule with {', '.join(unknown)}")
    tz = _zone(calendar_zone if data.all_day else zone)
    start_local = from_ts(data.start_ts).astimezone(tz)
    start: date | datetime = start_local.date() if data.all_day else start_local
    freq = parts.get("FREQ")
    interval = int(parts.get("INTERVAL") or 1)
    byday = []
    for token in [t for t in (parts.get("BYDAY") or "").split(",") if t]:
        m = _BYDAY.match(token)
        if not m:
            raise Unsupported(f"Outlook cannot store BYDAY={token}")
        byday.append((int(m.group(1)) if m.group(1) else None, m.group(2)))
    monthdays = [v for v in (parts.get("BYMONTHDAY") or "").split(",") if v]
    months = [v for v in (parts.get("BYMONTH") or "").split(",") if v]
    setpos = [v for v in (parts.get("BYSETPOS") or "").split(",") if v]
    own_day = WEEK[start_local.weekday()]

    def relative() -> dict[str, Any] | None:
        """daysOfWeek + index from BYDAY=2TU or BYDAY=MO,TU;BYSETPOS=-1; None without BYDAY."""
        if not byday:
            return None
        ordinals = {o for o, _ in byday}
        if len(byday) == 1 and byday[0][0] is not None and not setpos:
            n = byday[0][0]
        elif ordinals == {None} and len(setpos) == 1:
            n = int(setpos[0])
        else:
            raise Unsupported(f"Outlook cannot store BYDAY={parts.get('BYDAY')} with this rule")
        if n not in INDEX_NAMES:
            raise Unsupported(f"Outlook has no occurrence number {n} in a month")
        return {"daysOfWeek": [DAY_NAMES[d] for _, d in byday], "index": INDEX_NAMES[n]}

    pattern: dict[str, Any] = {"interval": interval}
    if freq == "DAILY":
        if monthdays or months or setpos:
            raise Unsupported("Outlook cannot store a daily rule limited by month or day of month")
        if byday:
            if interval != 1 or any(o is not None for o, _ in byday):
                raise Unsupported("Outlook cannot store this daily rule with BYDAY")
            pattern.update(type="weekly", daysOfWeek=[DAY_NAMES[d] for _, d in byday], firstDayOfWeek="monday")
        else:
            pattern["type"] = "daily"
    elif freq == "WEEKLY":
        if monthdays or months or setpos or any(o is not None for o, _ in byday):
            raise Unsupported("Outlook cannot store this weekly rule")
        days = [d for _, d in byday] or [own_day]
        first = DAY_NAMES.get(parts.get("WKST") or "MO", "monday")
        pattern.update(type="weekly", daysOfWeek=[DAY_NAMES[d] for d in days], firstDayOfWeek=first)
    elif freq in ("MONTHLY", "YEARLY"):
        if len(monthdays) > 1 or len(months) > 1 or (monthdays and byday):
            raise Unsupported(f"Outlook cannot store this {freq.lower()} rule")
        if freq == "YEARLY":
            pattern["month"] = int(months[0]) if months else start_local.month
        elif months:
            raise Unsupported("Outlook cannot store a monthly rule limited to some months")
        rel = relative()
        if rel is not None:
            pattern.update(type="relativeMonthly" if freq == "MONTHLY" else "relativeYearly", **rel)
        else:
            if setpos:
                raise Unsupported("Outlook cannot store BYSETPOS without BYDAY")
            dom = int(monthdays[0]) if monthdays else start_local.day
            if not 1 <= dom <= 31:
                raise Unsupported("Outlook cannot store a day of month counted from the end")
            pattern.update(type="absoluteMonthly" if freq == "MONTHLY" else "absoluteYearly", dayOfMonth=dom)
    else:
        raise Unsupported(f"Outlook cannot store a {str(freq or 'missing').lower()} repeat rule")
    rng: dict[str, Any] = {"startDate": start_local.date().isoformat(), "recurrenceTimeZone": windows_name(tz.key)}
    if parts.get("COUNT"):
        rng.update(type="numbered", numberOfOccurrences=int(parts["COUNT"]))
    elif parts.get("UNTIL"):
        rng.update(type="endDate", endDate=_end_date(parts["UNTIL"], start, tz).isoformat())
    else:
        rng["type"] = "noEnd"
    return {"pattern": pattern, "range": rng}


def full_body(
    data: EventData, zone: str, calendar_zone: str, old: dict[str, Any] | None = None, *, master: bool = True
) -> dict[str, Any]:
    """Every field Chronary models, as a create (or a replace) sends them."""
    body: dict[str, Any] = {
        "subject": data.title,
        "body": {"contentType": "text", "content": data.description or ""},
        "location": {"displayName": data.location or ""},
        "showAs": show_as(data, (old or {}).get("showAs")),
        **times(data, zone, calendar_zone),
        **reminder_fields(data),
    }
    if master:
        rec = recurrence_body(data, zone, calendar_zone)
        if rec is not None or (old or {}).get("recurrence"):
            body["recurrence"] = rec
    return body


def patch_body(
    new: EventData,
    old: EventData | None,
    old_json: dict[str, Any] | None,
    zone: str,
    calendar_zone: str,
    *,
    master: bool,
) -> dict[str, Any]:
    """The fields of `new` whose modeled value differs from `old` (everything when `old` is None)."""
    if old is None:
        return full_body(new, zone, calendar_zone, old_json, master=master)
    now, before = new.modeled(), old.modeled()
    body: dict[str, Any] = {}
    if now["title"] != before["title"]:
        body["subject"] = new.title
    if now["description"] != before["description"]:
        body["body"] = {"contentType": "text", "content": new.description or ""}
    if now["location"] != before["location"]:
        body["location"] = {"displayName": new.location or ""}
    moved = now["times"] != before["times"]
    if moved:
        body.update(times(new, zone, calendar_zone))
    old_show = (old_json or {}).get("showAs")
    if show_as(new, old_show) != show_as(old, old_show):
        body["showAs"] = show_as(new, old_show)
    if now["reminders"] != before["reminders"]:
        body.update(reminder_fields(new))
    if master:
        rules_now = [r for r in new.recurrence or [] if not r.upper().startswith("EXDATE")]
        rules_before = [r for r in old.recurrence or [] if not r.upper().startswith("EXDATE")]
        if rules_now != rules_before or (moved and rules_now):
            body["recurrence"] = recurrence_body(new, zone, calendar_zone)
    return body


def occurrence_body(master: EventData, recurrence_id_ts: int, zone: str, calendar_zone: str) -> dict[str, Any]:
    """An occurrence put back to what the series says (a reverted exception)."""
    return full_body(at_occurrence(master, recurrence_id_ts, _zone(calendar_zone)), zone, calendar_zone, master=False)


def excluded(lines: list[str] | None, calendar_zone: str) -> set[int]:
    """Original starts (Chronary keys) the EXDATE lines of a series exclude: UTC stamps, and dates
    (an all-day series) as local midnights in the calendar's zone."""
    out: set[int] = set()
    days = _zone(calendar_zone)
    for line in lines or []:
        head, _, rest = line.partition(":")
        if head.split(";", 1)[0].strip().upper() != "EXDATE":
            continue
        for value in (v.strip() for v in rest.split(",")):
            try:
                if len(value) == 8:
                    out.add(int(datetime.combine(datetime.strptime(value, "%Y%m%d").date(), time(0), days).timestamp()))
                elif value.upper().endswith("Z"):
                    out.add(int(datetime.strptime(value[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC).timestamp()))
            except ValueError:
                continue
    return out
