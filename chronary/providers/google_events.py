"""Google Calendar v3 event JSON ↔ the neutral shapes (`EventData`, `RemoteEvent`, `Outgoing`).

Reading builds an iCalendar VEVENT from each Google event and decodes it with the one VEVENT
codec (`chronary.ical.decode.read_vevent`, lenient), so Google data gets exactly the codec's
rules: canonical RRULEs, EXDATEs in UTC (dates for all-day series), all-day dates as local
midnights in the Chronary calendar's zone, reminders, attendees, text limits.

A `Series` is what Google stores for one Chronary event: the master (a single event or a
recurring one) and its exceptions (instances with `recurringEventId`). A cancelled exception
is how Google deletes one occurrence: it becomes an EXDATE of the master (not an override).
A modified exception is an override. The series' etag is the master's etag when it has no
exceptions, else a digest of every piece's id and etag (`series_etag`), so an edit to one
instance changes it; `raw` is the JSON of all pieces, the base of the next write.

Writing turns `EventData` into Google's fields: the whole body for an insert, and for an
update only the fields whose modeled value differs from the last agreed body (compared through
the same reader), so what Chronary does not model (conference data, colors, attachments,
attendee responses) is never sent back and never lost.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

from chronary.ical.decode import Zones, iana, read_vevent
from chronary.ical.model import CodecError, EventData
from chronary.ical.text import utc_stamp
from chronary.providers.base import RemoteEvent
from chronary.timeutil import from_ts

SERIES_ETAG_PREFIX = "series:"
RECURRENCE_NAMES = ("RRULE", "EXRULE", "RDATE", "EXDATE")
_STATUS_OUT = {"hold": "tentative", "tentative": "tentative", "cancelled": "cancelled"}
READ_ERRORS = (CodecError, ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError)


# -- ids --------------------------------------------------------------------------------------


def derived_id(event_id: str) -> str:
    """The Google event id Chronary picks for an insert: base32hex (a-v, 0-9) of its own event
    id, so a retried insert of the same event hits the same id (409) instead of duplicating."""
    out = base64.b32hexencode(event_id.encode()).decode().lower().rstrip("=")
    return out if len(out) >= 5 else out + "0" * (5 - len(out))


def instance_suffix(recurrence_id_ts: int, all_day: bool, calendar_zone: str) -> str:
    """Google's instance-id suffix: the original start in UTC (`20240305T080000Z`), or the
    original date for an all-day series (`20240305`, in the zone its dates are local to)."""
    start = from_ts(recurrence_id_ts)
    if all_day:
        return start.astimezone(_zone(calendar_zone)).strftime("%Y%m%d")
    return start.strftime("%Y%m%dT%H%M%SZ")


def instance_id(master_id: str, recurrence_id_ts: int, all_day: bool, calendar_zone: str) -> str:
    return f"{master_id}_{instance_suffix(recurrence_id_ts, all_day, calendar_zone)}"


# -- series -----------------------------------------------------------------------------------


@dataclass
class Series:
    """The Google items of one series: the master (None when only instances are visible, e.g.
    an invitation to one occurrence) and its exceptions."""

    key: str  # the master's event id
    master: dict[str, Any] | None = None
    exceptions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def items(self) -> list[dict[str, Any]]:
        return ([self.master] if self.master is not None else []) + self.exceptions

    @property
    def uid(self) -> str | None:
        for item in self.items:
            if item.get("iCalUID"):
                return str(item["iCalUID"])
        return None

    @property
    def cancelled(self) -> bool:
        """The series (or single event) is deleted: its master is cancelled, or (no master)
        every visible instance is."""
        if self.master is not None:
            return is_cancelled(self.master)
        return all(is_cancelled(e) for e in self.exceptions)


def is_cancelled(item: dict[str, Any]) -> bool:
    return item.get("status") == "cancelled"


def series_key(item: dict[str, Any]) -> str:
    return str(item.get("recurringEventId") or item["id"])


def group(items: Iterable[dict[str, Any]]) -> dict[str, Series]:
    """Items of a listing grouped per series, in listing order; a later copy of a piece wins."""
    out: dict[str, Series] = {}
    for item in items:
        if not item.get("id"):
            continue
        key = series_key(item)
        series = out.setdefault(key, Series(key))
        if item["id"] == key and not item.get("recurringEventId"):
            series.master = item
        else:
            series.exceptions = [e for e in series.exceptions if e["id"] != item["id"]] + [item]
    return out


def series_etag(series: Series) -> str | None:
    """The master's etag when there are no exceptions, else a stable digest of all pieces."""
    if not series.exceptions:
        return series.master.get("etag") if series.master is not None else None
    pieces = sorted((str(i["id"]), str(i.get("etag") or "")) for i in series.items)
    digest = hashlib.sha256("\n".join(f"{k}\t{v}" for k, v in pieces).encode()).hexdigest()[:40]
    return SERIES_ETAG_PREFIX + digest


def is_series_etag(etag: str | None) -> bool:
    return bool(etag) and str(etag).startswith(SERIES_ETAG_PREFIX)


def raw_of(series: Series) -> str:
    """The JSON kept as the base of the next write: every piece as Google gave it."""
    return json.dumps({"key": series.key, "items": series.items}, sort_keys=True, separators=(",", ":"))


def parse_raw(raw: str | None) -> Series | None:
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        return None
    groups = group(i for i in data["items"] if isinstance(i, dict))
    key = data.get("key")
    if isinstance(key, str) and key in groups:
        return groups[key]
    return next(iter(groups.values()), None)


# -- reading ----------------------------------------------------------------------------------


def _zone(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    return ZoneInfo(iana(name) or iana(fallback) or "UTC")


def _moment(obj: dict[str, Any], zone: ZoneInfo) -> date | datetime:
    """A Google start/end/originalStartTime: a date, or an aware datetime in its zone."""
    if obj.get("date"):
        return date.fromisoformat(str(obj["date"]))
    value = datetime.fromisoformat(str(obj["dateTime"]))
    tz = _zone(obj["timeZone"]) if obj.get("timeZone") and iana(obj["timeZone"]) else zone
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(tz)


def _rfc3339(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else value if isinstance(value, list) else [value]


def _recurrence_props(lines: list[str]) -> list[tuple[str, Any]]:
    wanted = [str(x).strip() for x in lines if str(x).split(":", 1)[0].split(";", 1)[0].strip().upper() in RECURRENCE_NAMES]
    if not wanted:
        return []
    mini = icalendar.Event.from_ical("BEGIN:VEVENT\r\n" + "\r\n".join(wanted) + "\r\nEND:VEVENT\r\n")
    return [(name, value) for name in RECURRENCE_NAMES for value in _as_list(mini.get(name))]


def series_zone_name(master: dict[str, Any] | None, calendar_zone: str | None, local_zone: str) -> str:
    """The zone a series' times are read in: its start.timeZone, else the Google calendar's."""
    start = (master or {}).get("start") or {}
    return iana(start.get("timeZone")) or iana(calendar_zone) or iana(local_zone) or "UTC"


def vevent(item: dict[str, Any], zone: ZoneInfo, uid: str | None, *, with_recurrence: bool) -> icalendar.Event:
    """One Google event as an iCalendar VEVENT (module doc): what the codec then reads."""
    comp = icalendar.Event()
    comp.add("UID", item.get("iCalUID") or uid or item.get("id"))
    comp.add("DTSTART", _moment(item["start"], zone))
    if item.get("end"):
        comp.add("DTEND", _moment(item["end"], zone))
    for name, key in (("SUMMARY", "summary"), ("DESCRIPTION", "description"), ("LOCATION", "location")):
        if item.get(key):
            comp.add(name, str(item[key]))
    comp.add("STATUS", str(item.get("status") or "confirmed").upper())
    comp.add("TRANSP", "TRANSPARENT" if item.get("transparency") == "transparent" else "OPAQUE")
    if with_recurrence:
        for name, value in _recurrence_props(list(item.get("recurrence") or [])):
            comp.add(name, value, encode=False)
    if item.get("originalStartTime"):
        comp.add("RECURRENCE-ID", _moment(item["originalStartTime"], zone))
    with contextlib.suppress(TypeError, ValueError):
        comp.add("SEQUENCE", int(item.get("sequence") or 0))
    updated = _rfc3339(str(item["updated"])) if item.get("updated") else None
    if updated is not None:
        comp.add("LAST-MODIFIED", updated)
    for attendee in item.get("attendees") or []:
        email = (attendee or {}).get("email")
        if not email:
            continue
        address = icalendar.vCalAddress(f"mailto:{email}")
        if attendee.get("displayName"):
            address.params["CN"] = str(attendee["displayName"])
        comp.add("ATTENDEE", address)
    reminders = item.get("reminders") or {}
    if not reminders.get("useDefault"):
        for override in reminders.get("overrides") or []:
            minutes = (override or {}).get("minutes")
            if isinstance(minutes, int):
                alarm = icalendar.Alarm()
                alarm.add("ACTION", "DISPLAY")
                alarm.add("TRIGGER", timedelta(minutes=-minutes))
                comp.add_component(alarm)
    return comp


def original_ts(item: dict[str, Any], zone: ZoneInfo, days: ZoneInfo) -> int:
    """The original start of an instance as Chronary keys it (recurrence_id_ts)."""
    moment = _moment(item["originalStartTime"], zone)
    if isinstance(moment, datetime):
        return int(moment.timestamp())
    return int(datetime.combine(moment, time(0), days).timestamp())


def _exdate_value(item: dict[str, Any], zone: ZoneInfo) -> tuple[str, bool]:
    """(stored EXDATE value, all-day) for a cancelled instance."""
    moment = _moment(item["originalStartTime"], zone)
    if isinstance(moment, datetime):
        return utc_stamp(moment), False
    return moment.strftime("%Y%m%d"), True


def _with_exdates(lines: list[str], values: list[str], all_day: bool) -> list[str]:
    """`lines` plus one EXDATE line (the codec's format) of the values not already excluded."""
    have: set[str] = set()
    for line in lines:
        head, _, rest = line.partition(":")
        if head.split(";", 1)[0].upper() == "EXDATE":
            have |= {v.strip() for v in rest.split(",") if v.strip()}
    new = sorted({v for v in values if v not in have})
    if not new:
        return lines
    return [*lines, ("EXDATE;VALUE=DATE:" if all_day else "EXDATE:") + ",".join(new)]


def decode_piece(item: dict[str, Any], zone: ZoneInfo, days: ZoneInfo, uid: str | None, *, master: bool) -> EventData:
    comp = vevent(item, zone, uid, with_recurrence=master)
    if not master and "RECURRENCE-ID" not in comp:
        raise CodecError(f"event {item.get('id')}: an instance without originalStartTime")
    _, data = read_vevent(comp, Zones(floating=zone, days=days), strict=False)
    data.remote_id = str(item.get("id")) if item.get("id") else None
    data.etag = item.get("etag")
    return data


def decode_master(series: Series, calendar_zone: str | None, local_zone: str) -> EventData | None:
    """The master as Chronary stores it: its cancelled instances folded in as EXDATEs (also for
    a cancelled master, the base a revival is compared with). None without a readable master."""
    if series.master is None or not series.master.get("start"):
        return None
    days = _zone(local_zone)
    zone = _zone(series_zone_name(series.master, calendar_zone, local_zone))
    master = decode_piece(series.master, zone, days, series.uid, master=True)
    master.remote_id = series.key
    cancelled = [e for e in series.exceptions if is_cancelled(e) and e.get("originalStartTime")]
    if cancelled and master.recurrence:
        values = [_exdate_value(e, zone) for e in cancelled]
        master.recurrence = _with_exdates(master.recurrence, [v for v, _ in values], master.all_day)
    return master


def decode_series(series: Series, calendar_zone: str | None, local_zone: str) -> RemoteEvent | None:
    """One series as a RemoteEvent (None when nothing of it is visible any more). Raises one of
    READ_ERRORS for data the codec cannot read (the caller skips and counts it)."""
    if series.cancelled:
        return None
    days = _zone(local_zone)
    zone = _zone(series_zone_name(series.master, calendar_zone, local_zone))
    uid = series.uid
    live = [e for e in series.exceptions if not is_cancelled(e) and e.get("originalStartTime")]
    decoded = decode_master(series, calendar_zone, local_zone)
    if decoded is not None:
        master = decoded
        overrides = [decode_piece(e, zone, days, uid, master=False) for e in live]
        if master.recurrence:
            overrides = [o for o in overrides if not plain(o, master, days)]
    else:  # only instances are visible: the first one is the event (the codec's rule for feeds)
        pieces = [decode_piece(e, zone, days, uid, master=False) for e in live]
        if not pieces:
            return None
        master, overrides = pieces[0], pieces[1:]
        master.recurrence_id_ts = None
    return RemoteEvent(
        remote_id=series.key,
        etag=series_etag(series),
        uid=uid or master.remote_id or series.key,
        master=master,
        overrides=overrides,
        raw=raw_of(series),
    )


# -- writing ----------------------------------------------------------------------------------


def google_status(status: str | None) -> str:
    return _STATUS_OUT.get(status or "confirmed", "confirmed")


def _times(data: EventData, zone: str, calendar_zone: str) -> tuple[dict[str, Any], dict[str, Any]]:
    start, end = from_ts(data.start_ts), from_ts(data.end_ts)
    if data.all_day:
        days = _zone(calendar_zone)
        end_day = end.astimezone(days).date()
        start_day = start.astimezone(days).date()
        if end_day <= start_day:
            end_day = start_day + timedelta(days=1)
        return {"date": start_day.isoformat()}, {"date": end_day.isoformat()}
    name = iana(zone) or "UTC"
    tz = ZoneInfo(name)
    if end <= start:  # Google refuses an empty range; a zero-length event gets its minute
        end = start + timedelta(minutes=1)
    return (
        {"dateTime": start.astimezone(tz).isoformat(timespec="seconds"), "timeZone": name},
        {"dateTime": end.astimezone(tz).isoformat(timespec="seconds"), "timeZone": name},
    )


def _until_utc(line: str, tz: ZoneInfo) -> str:
    """UNTIL of a timed series in UTC (RFC 5545 with a zoned DTSTART), as the CalDAV encoder
    writes it: a floating UNTIL is local time, a date UNTIL that day's local midnight."""
    head, _, rule = line.partition(":")
    parts = []
    for part in rule.split(";"):
        key, _, value = part.partition("=")
        if key.upper() == "UNTIL" and value and not value.upper().endswith("Z"):
            try:
                if len(value) == 8:
                    local = datetime.combine(datetime.strptime(value, "%Y%m%d").date(), time(0), tz)
                else:
                    local = datetime.strptime(value, "%Y%m%dT%H%M%S").replace(tzinfo=tz)
                part = "UNTIL=" + utc_stamp(local)
            except ValueError:
                pass
        parts.append(part)
    return f"{head}:{';'.join(parts)}"


def recurrence_lines(data: EventData, zone: str) -> list[str]:
    """The stored lines Google takes in `recurrence` (RRULE/EXRULE/RDATE/EXDATE, no DTSTART)."""
    out = []
    tz = _zone(zone)
    for line in data.recurrence or []:
        name = line.split(":", 1)[0].split(";", 1)[0].strip().upper()
        if name not in RECURRENCE_NAMES:
            continue
        out.append(_until_utc(line, tz) if name in ("RRULE", "EXRULE") and not data.all_day else line)
    return out


def _attendees(data: EventData, old: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Chronary's attendees in Google's shape; one already there keeps its object (response
    status, optional, organizer flags)."""
    known = {str(a.get("email", "")).lower(): a for a in old or [] if a.get("email")}
    out = []
    for a in data.attendees:
        email = a.get("email")
        if not email:
            continue
        item = dict(known.get(str(email).lower()) or {"email": email})
        if a.get("name"):
            item["displayName"] = a["name"]
        out.append(item)
    return out


def _reminders(data: EventData, old: dict[str, Any] | None) -> dict[str, Any]:
    """Explicit reminders (never the calendar's defaults); a minute count already there keeps
    its method (email stays email), new ones are popups."""
    methods: dict[int, str] = {}
    for o in (old or {}).get("overrides") or []:
        if isinstance(o, dict) and isinstance(o.get("minutes"), int):
            methods.setdefault(o["minutes"], o.get("method") or "popup")
    minutes = sorted(set(data.reminders or []))
    return {"useDefault": False, "overrides": [{"method": methods.get(m, "popup"), "minutes": m} for m in minutes]}


def full_body(data: EventData, zone: str, calendar_zone: str, *, master: bool) -> dict[str, Any]:
    """Every modeled field, as an insert (or a revived instance) sends them."""
    start, end = _times(data, zone, calendar_zone)
    body: dict[str, Any] = {
        "summary": data.title,
        "start": start,
        "end": end,
        "status": google_status(data.status),
        "transparency": "transparent" if data.transparency == "transparent" else "opaque",
        "reminders": _reminders(data, None),
    }
    if data.description is not None:
        body["description"] = data.description
    if data.location is not None:
        body["location"] = data.location
    if data.attendees:
        body["attendees"] = _attendees(data, None)
    if master and data.recurrence:
        body["recurrence"] = recurrence_lines(data, zone)
    return body


def patch_body(
    new: EventData, old: EventData | None, old_json: dict[str, Any] | None, zone: str, calendar_zone: str, *, master: bool
) -> dict[str, Any]:
    """The fields of `new` whose modeled value differs from `old` (everything when `old` is
    None), in PATCH form: null clears a field, `start`/`end` clear the other date kind."""
    if old is None:
        return full_body(new, zone, calendar_zone, master=master)
    now, before = new.modeled(), old.modeled()
    body: dict[str, Any] = {}
    if now["title"] != before["title"]:
        body["summary"] = new.title
    for key in ("description", "location"):
        if now[key] != before[key]:
            body[key] = now[key]
    if now["times"] != before["times"]:
        start, end = _times(new, zone, calendar_zone)
        for obj in (start, end):
            obj.setdefault("date", None)
            obj.setdefault("dateTime", None)
        body["start"], body["end"] = start, end
    if google_status(new.status) != google_status(old.status):
        body["status"] = google_status(new.status)
    if now["transparency"] != before["transparency"]:
        body["transparency"] = now["transparency"]
    if now["reminders"] != before["reminders"]:
        body["reminders"] = _reminders(new, (old_json or {}).get("reminders"))
    if now["attendees"] != before["attendees"]:
        body["attendees"] = _attendees(new, (old_json or {}).get("attendees"))
    if master and now["recurrence"] != before["recurrence"]:
        body["recurrence"] = recurrence_lines(new, zone)
    return body


def insert_body(data: EventData, *, event_id: str, uid: str, zone: str, calendar_zone: str) -> dict[str, Any]:
    body = full_body(data, zone, calendar_zone, master=True)
    body.update(id=event_id, iCalUID=uid, sequence=max(0, int(data.sequence or 0)))
    return body


def at_occurrence(master: EventData, recurrence_id_ts: int, days: ZoneInfo | None = None) -> EventData:
    """The occurrence of a series at `recurrence_id_ts` as the series itself says it is; an
    all-day one spans as many local days (in `days`) as the master, whatever DST does."""
    end_ts = recurrence_id_ts + (master.end_ts - master.start_ts)
    if master.all_day and days is not None:
        first = from_ts(master.start_ts).astimezone(days).date()
        span = from_ts(master.end_ts).astimezone(days).date() - first
        start_day = from_ts(recurrence_id_ts).astimezone(days).date()
        end_ts = int(datetime.combine(start_day + span, time(0), days).timestamp())
    return EventData(
        title=master.title,
        description=master.description,
        location=master.location,
        start_ts=recurrence_id_ts,
        end_ts=end_ts,
        all_day=master.all_day,
        status=master.status,
        attendees=master.attendees,
        reminders=master.reminders,
        transparency=master.transparency,
        recurrence_id_ts=recurrence_id_ts,
    )


def plain(override: EventData, master: EventData, days: ZoneInfo | None = None) -> bool:
    """An exception that differs from its occurrence in nothing Chronary models (a colour, one
    guest's answer, or an exception put back): not an override for Chronary."""
    assert override.recurrence_id_ts is not None
    return override.modeled() == at_occurrence(master, override.recurrence_id_ts, days).modeled()


def occurrence_body(master: EventData, recurrence_id_ts: int, zone: str, calendar_zone: str) -> dict[str, Any]:
    """An instance put back to what the series says (a reverted exception), in PATCH form."""
    body = full_body(at_occurrence(master, recurrence_id_ts, _zone(calendar_zone)), zone, calendar_zone, master=False)
    body.setdefault("description", None)
    body.setdefault("location", None)
    body.setdefault("attendees", [])
    for key in ("start", "end"):
        body[key] = {"date": None, "dateTime": None, **body[key]}
    return body


def excluded(lines: list[str] | None, all_day: bool, zone: str, calendar_zone: str) -> set[int]:
    """Original starts (unix seconds) the EXDATE lines of a series exclude: UTC stamps, dates
    (local midnights in `calendar_zone` for an all-day series, else the series' wall-clock time
    is not known here, so dates of a timed series are skipped), floating times in `zone`."""
    out: set[int] = set()
    days, tz = _zone(calendar_zone), _zone(zone)
    for line in lines or []:
        head, _, rest = line.partition(":")
        name, *params = head.split(";")
        if name.strip().upper() != "EXDATE":
            continue
        named = next((p.split("=", 1)[1] for p in params if p.upper().startswith("TZID=")), None)
        line_tz = _zone(named, zone) if named else tz
        for value in (v.strip() for v in rest.split(",")):
            try:
                if len(value) == 8:
                    if all_day:
                        out.add(int(datetime.combine(datetime.strptime(value, "%Y%m%d").date(), time(0), days).timestamp()))
                elif value.upper().endswith("Z"):
                    out.add(int(datetime.strptime(value[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC).timestamp()))
                elif value:
                    out.add(int(datetime.strptime(value, "%Y%m%dT%H%M%S").replace(tzinfo=line_tz).timestamp()))
            except ValueError:
                continue
    return out


def rules_of(lines: list[str] | None) -> list[str]:
    """The recurrence lines that generate occurrences (everything but EXDATE)."""
    return sorted(line for line in lines or [] if line.split(":", 1)[0].split(";", 1)[0].strip().upper() != "EXDATE")
