"""Provider iCalendar resources ↔ Chronary event rows, losslessly where Chronary has no field.

A resource is one UID: a master VEVENT (maybe with RRULE/RDATE/EXDATE) plus RECURRENCE-ID
overrides, which become Chronary's series row plus stored exception rows. Times become UTC
unix seconds; all-day dates become local midnights in the Chronary calendar's timezone (the
convention of services/event_times), so they come back as the same dates.

Writing back starts from the last body both sides agreed on (kept in sync_links.ical) and
replaces only the properties whose Chronary value changed: alarms, organizer, categories,
X- properties, the original TZID and VTIMEZONEs all survive a round trip.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

from chronary.services.event_times import local_midnight
from chronary.timeutil import from_ts, to_ts, valid_timezone

PRODID = "-//Chronary//Sync//EN"
MODELED = ("title", "description", "location", "times", "status", "recurrence", "attendees", "reminders", "transparency")
_STATUS_IN = {"CONFIRMED": "confirmed", "TENTATIVE": "tentative", "CANCELLED": "cancelled"}
_STATUS_OUT = {"confirmed": "CONFIRMED", "tentative": "TENTATIVE", "hold": "TENTATIVE", "cancelled": "CANCELLED"}
_RECURRENCE_PROPS = ("RRULE", "EXRULE", "RDATE", "EXDATE")


@dataclass
class Fields:
    """The Chronary-modeled part of one VEVENT."""

    title: str
    description: str | None
    location: str | None
    start_ts: int
    end_ts: int
    all_day: bool
    status: str
    recurrence: list[str] | None
    attendees: list[dict[str, Any]]
    sequence: int = 0
    last_modified: datetime | None = None
    recurrence_id_ts: int | None = None
    reminders: list[int] | None = None
    transparency: str = "opaque"  # TRANSP; absent means OPAQUE (RFC 5545 3.8.2.7)

    def modeled(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "description": self.description,
            "location": self.location,
            "times": (self.start_ts, self.end_ts, self.all_day),
            "status": self.status,
            "recurrence": self.recurrence or None,
            "attendees": self.attendees,
            "reminders": self.reminders,
            "transparency": self.transparency,
        }


@dataclass
class Resource:
    uid: str
    master: Fields | None
    overrides: list[Fields] = field(default_factory=list)


def _instant(value: date | datetime, tz: ZoneInfo) -> int:
    if isinstance(value, datetime):
        return to_ts(value if value.tzinfo else value.replace(tzinfo=tz))
    return to_ts(local_midnight(value, tz))


def _text(comp: Any, name: str, limit: int) -> str | None:
    value = comp.get(name)
    if value is None:
        return None
    text = str(value)
    return text[:limit] if text else None


def _recurrence_lines(comp: Any, tz: ZoneInfo) -> list[str] | None:
    lines: list[str] = []
    for name in _RECURRENCE_PROPS:
        values = comp.get(name)
        if values is None:
            continue
        for value in values if isinstance(values, list) else [values]:
            if name in ("RRULE", "EXRULE"):
                lines.append(f"{name}:{value.to_ical().decode()}")
                continue
            dts = [d.dt for d in value.dts]
            if dts and all(isinstance(d, date) and not isinstance(d, datetime) for d in dts):
                lines.append(f"{name};VALUE=DATE:" + ",".join(d.strftime("%Y%m%d") for d in dts))
            else:
                utc = [from_ts(_instant(d, tz)) for d in dts if isinstance(d, date)]
                lines.append(f"{name}:" + ",".join(d.strftime("%Y%m%dT%H%M%SZ") for d in utc))
    return lines or None


def _attendees(comp: Any) -> list[dict[str, Any]]:
    values = comp.get("ATTENDEE")
    out = []
    for value in values if isinstance(values, list) else ([values] if values is not None else []):
        address = str(value)
        if address.lower().startswith("mailto:"):
            cn = value.params.get("CN") if hasattr(value, "params") else None
            out.append({"email": address[7:], "name": str(cn) if cn else None, "agent_id": None})
    return out


def _reminders(comp: Any) -> list[int] | None:
    """Minutes-before-start of the VEVENT's relative alarms (Chronary's 1–40320, at most 5)."""
    minutes = set()
    for alarm in comp.subcomponents:
        if alarm.name != "VALARM" or "TRIGGER" not in alarm:
            continue
        trigger = alarm["TRIGGER"]
        if str(trigger.params.get("RELATED", "START")).upper() != "START":
            continue
        value = alarm.decoded("TRIGGER")
        if isinstance(value, timedelta) and value < timedelta(0):
            mins = int(-value.total_seconds() // 60)
            if 1 <= mins <= 40320:
                minutes.add(mins)
    return sorted(minutes)[:5] or None


def fields_of(comp: Any, tz: ZoneInfo) -> Fields:
    start = comp.decoded("DTSTART")
    all_day = isinstance(start, date) and not isinstance(start, datetime)
    if "DTEND" in comp:
        end = comp.decoded("DTEND")
    elif "DURATION" in comp:
        end = start + comp.decoded("DURATION")
    else:
        end = start + timedelta(days=1) if all_day else start
    start_ts, end_ts = _instant(start, tz), _instant(end, tz)
    modified = comp.get("LAST-MODIFIED") or comp.get("DTSTAMP")
    rid = comp.get("RECURRENCE-ID")
    return Fields(
        title=(_text(comp, "SUMMARY", 500) or "(no title)"),
        description=_text(comp, "DESCRIPTION", 8192),
        location=_text(comp, "LOCATION", 1000),
        start_ts=start_ts,
        end_ts=max(end_ts, start_ts),
        all_day=all_day,
        status=_STATUS_IN.get(str(comp.get("STATUS", "CONFIRMED")).upper(), "confirmed"),
        recurrence=_recurrence_lines(comp, tz),
        attendees=_attendees(comp),
        sequence=int(comp.get("SEQUENCE", 0) or 0),
        last_modified=modified.dt.astimezone(UTC) if modified is not None and isinstance(modified.dt, datetime) else None,
        recurrence_id_ts=_instant(rid.dt, tz) if rid is not None else None,
        reminders=_reminders(comp),
        transparency="transparent" if str(comp.get("TRANSP") or "").upper() == "TRANSPARENT" else "opaque",
    )


def parse(text: str, tz: ZoneInfo) -> Resource | None:
    """The VEVENTs of one resource; None for resources without events (tasks, journals)."""
    cal = icalendar.Calendar.from_ical(text)
    events = [c for c in cal.walk("VEVENT") if "DTSTART" in c]
    if not events:
        return None
    uid = str(events[0].get("UID") or "")
    master = next((fields_of(e, tz) for e in events if "RECURRENCE-ID" not in e), None)
    overrides = [fields_of(e, tz) for e in events if "RECURRENCE-ID" in e]
    if master is None:  # only overrides (e.g. invited to one occurrence): treat the first as a single event
        master, overrides = overrides[0], overrides[1:]
        master.recurrence_id_ts = None
    return Resource(uid=uid, master=master, overrides=overrides)


def row_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The modeled part of a stored Chronary event row, comparable with Fields.modeled()."""
    return {
        "title": row["title"],
        "description": row["description"],
        "location": row["location"],
        "times": (row["start_ts"], row["end_ts"], bool(row["all_day"])),
        "status": row["status"],
        "recurrence": row["recurrence"] or None,
        "attendees": [{"email": a.get("email"), "name": a.get("name"), "agent_id": None} for a in (row["attendees"] or [])],
        "reminders": sorted(set(row.get("reminders") or []))[:5] or None,
        "transparency": row.get("transparency") or "opaque",
    }


def _base_tz(comp: Any) -> ZoneInfo | None:
    prop = comp.get("DTSTART")
    tzid = prop.params.get("TZID") if prop is not None else None
    if tzid and valid_timezone(str(tzid)):
        return ZoneInfo(str(tzid))
    return None


def _set_times(comp: Any, row: dict[str, Any], tz: ZoneInfo) -> None:
    keep_tz = _base_tz(comp)
    for name in ("DTSTART", "DTEND", "DURATION"):
        comp.pop(name, None)
    start, end = from_ts(row["start_ts"]), from_ts(row["end_ts"])
    if row["all_day"]:
        comp.add("DTSTART", start.astimezone(tz).date())
        comp.add("DTEND", end.astimezone(tz).date())
    else:
        zone = keep_tz or UTC
        comp.add("DTSTART", start.astimezone(zone))
        comp.add("DTEND", end.astimezone(zone))


def _set_recurrence(comp: Any, lines: list[str] | None) -> None:
    for name in _RECURRENCE_PROPS:
        comp.pop(name, None)
    if not lines:
        return
    mini = icalendar.Event.from_ical("BEGIN:VEVENT\r\n" + "\r\n".join(lines) + "\r\nEND:VEVENT\r\n")
    for name, value in mini.items():
        for item in value if isinstance(value, list) else [value]:
            comp.add(name, item, encode=False)


def _set_attendees(comp: Any, attendees: list[dict[str, Any]]) -> None:
    comp.pop("ATTENDEE", None)
    for a in attendees:
        params = {"CN": a["name"]} if a.get("name") else {}
        comp.add("ATTENDEE", icalendar.vCalAddress(f"mailto:{a['email']}", params=params))


def _set_reminders(comp: Any, minutes: list[int] | None, title: str) -> None:
    comp.subcomponents = [c for c in comp.subcomponents if c.name != "VALARM"]
    for mins in minutes or []:
        alarm = icalendar.Alarm()
        alarm.add("ACTION", "DISPLAY")
        alarm.add("DESCRIPTION", title)
        alarm.add("TRIGGER", timedelta(minutes=-mins))
        comp.add_component(alarm)


def _apply(comp: Any, row: dict[str, Any], tz: ZoneInfo, now: datetime, fresh: bool) -> None:
    old = None if fresh else fields_of(comp, tz)
    new = row_fields(row)
    before = old.modeled() if old else {}
    changed = [k for k in MODELED if fresh or before.get(k) != new[k]]
    for key in changed:
        if key in ("title", "description", "location"):
            name = {"title": "SUMMARY", "description": "DESCRIPTION", "location": "LOCATION"}[key]
            comp.pop(name, None)
            if new[key] is not None:
                comp.add(name, new[key])
        elif key == "times":
            _set_times(comp, row, tz)
        elif key == "status":
            comp.pop("STATUS", None)
            comp.add("STATUS", _STATUS_OUT.get(row["status"], "CONFIRMED"))
        elif key == "recurrence":
            _set_recurrence(comp, row["recurrence"] if row.get("recurring_event_id") is None else None)
        elif key == "attendees":
            _set_attendees(comp, new["attendees"])
        elif key == "reminders":
            _set_reminders(comp, new["reminders"], row["title"])
        elif key == "transparency":
            comp.pop("TRANSP", None)
            comp.add("TRANSP", "TRANSPARENT" if new["transparency"] == "transparent" else "OPAQUE")
    if changed or fresh:
        for name in ("DTSTAMP", "LAST-MODIFIED", "SEQUENCE"):
            comp.pop(name, None)
        comp.add("DTSTAMP", now)
        comp.add("LAST-MODIFIED", now)
        comp.add("SEQUENCE", max(old.sequence + 1 if old else 0, int(row.get("sequence") or 0)))


def build(master: dict[str, Any], exceptions: list[dict[str, Any]], tz: ZoneInfo, base: str | None, now: datetime) -> str:
    """The resource text for a Chronary series (or single event) and its stored exceptions."""
    uid = master["ical_uid"]
    if base:
        cal = icalendar.Calendar.from_ical(base)
        old_events = [c for c in cal.walk("VEVENT")]
        cal.subcomponents = [c for c in cal.subcomponents if c.name != "VEVENT"]
    else:
        cal = icalendar.Calendar()
        cal.add("PRODID", PRODID)
        cal.add("VERSION", "2.0")
        old_events = []
    by_rid: dict[int | None, Any] = {}
    for comp in old_events:
        rid = comp.get("RECURRENCE-ID")
        by_rid[_instant(rid.dt, tz) if rid is not None else None] = comp
    rows = [(None, master), *((e["recurrence_id_ts"], e) for e in exceptions)]
    for rid_ts, row in rows:
        comp = by_rid.get(rid_ts)
        fresh = comp is None
        if fresh:
            comp = icalendar.Event()
            comp.add("UID", uid)
            if rid_ts is not None:
                rid = from_ts(rid_ts)
                if master["all_day"]:
                    comp.add("RECURRENCE-ID", rid.astimezone(tz).date())
                else:
                    comp.add("RECURRENCE-ID", rid.astimezone(_base_tz(by_rid.get(None) or comp) or UTC))
        _apply(comp, row, tz, now, fresh)
        cal.add_component(comp)
    if not any(c.name == "VTIMEZONE" for c in cal.subcomponents):
        with contextlib.suppress(Exception):  # a missing VTIMEZONE only costs clients a lookup
            cal.add_missing_timezones()
    return cal.to_ical().decode()
