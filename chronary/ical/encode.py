"""EventData → iCalendar resource text, losslessly where Chronary has no field.

A resource is one UID: a master VEVENT (maybe with RRULE/RDATE/EXDATE) plus RECURRENCE-ID
overrides. Writing back starts from the last body both sides agreed on (`Outgoing.base`) and
replaces only the properties whose value changed (compared through `ical/decode.py`, the same
reader that imported it): alarms, organizer, categories, X- properties, the original TZID and
VTIMEZONEs all survive a round trip.

Timed instants go out as local time with a TZID, in the zone the series repeats in
(`Outgoing.zone`), plus a VTIMEZONE for it from chronary.ical.render.vtimezone, so the phone
expands RRULEs on the same wall-clock time as the API across DST. A remote event keeps the TZID
it came with (and a remote event written in UTC stays in UTC). In the hour a DST end repeats a
local time names two instants, and readers differ on which (RFC 5545 and dateutil: the first;
ical.js: the second), so each value is written by its role, as chronary.ical.render writes feeds:
- "instant" (DTSTART/DTEND of single events and overrides, RDATE): UTC when its local time is
  repeated, so every reader gets the same instant.
- "occurrence" (RECURRENCE-ID, EXDATE): it must match an occurrence the reader generates from the
  wall-clock RRULE, which the reader resolves as it resolves this value, so only an instant
  whose local time read back with fold=0 is another one (the second pass, which no wall-clock
  rule generates) goes out in UTC.
- "series" (a master's DTSTART/DTEND): always local time with TZID, since a UTC DTSTART would
  make the RRULE repeat in UTC. A series starting in the second pass is thus read as starting in
  the first, which is where Chronary's own expansion (fold=0) puts that occurrence too.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import icalendar

from chronary.ical import render
from chronary.ical.decode import Zones, read_vevent
from chronary.ical.model import EventData, Outgoing
from chronary.timeutil import from_ts, to_ts, valid_timezone

PRODID = "-//Chronary//Sync//EN"
MODELED = ("title", "description", "location", "times", "status", "recurrence", "attendees", "reminders", "transparency")
_STATUS_OUT = {"confirmed": "CONFIRMED", "tentative": "TENTATIVE", "hold": "TENTATIVE", "cancelled": "CANCELLED"}
_RECURRENCE_PROPS = ("RRULE", "EXRULE", "RDATE", "EXDATE")
Role = Literal["instant", "occurrence", "series"]  # how a zoned value may be written: see the module doc


def _instant(value: date | datetime, tz: ZoneInfo) -> int:
    if isinstance(value, datetime):
        return to_ts(value if value.tzinfo else value.replace(tzinfo=tz))
    return to_ts(datetime.combine(value, time(0), tz))


def _base_tz(comp: Any) -> ZoneInfo | None:
    prop = comp.get("DTSTART")
    tzid = prop.params.get("TZID") if prop is not None else None
    if tzid and valid_timezone(str(tzid)):
        return ZoneInfo(str(tzid))
    return None


def _as_list(value: Any) -> list[Any]:
    return [] if value is None else value if isinstance(value, list) else [value]


def _utc_start(comp: Any) -> bool:
    """DTSTART written in UTC (`Z`), as Chronary pushed timed events before they carried a TZID."""
    prop = comp.get("DTSTART")
    if prop is None or prop.params.get("TZID"):
        return False
    value = prop.dt
    return isinstance(value, datetime) and value.tzinfo is not None and value.utcoffset() == timedelta(0)


def _resource_zone(out: Outgoing, old: Any | None) -> ZoneInfo | None:
    """The zone this resource's timed instants are written in; None means UTC (`Z`)."""
    if old is not None:
        kept = _base_tz(old)
        if kept is not None:
            return kept  # a remote event keeps its own TZID
        if not out.internal and _utc_start(old):
            return None  # and a remote event written in UTC stays in UTC
    return None if out.zone in ("UTC", "Etc/UTC", "GMT") else ZoneInfo(out.zone)


def _written(instant: datetime, zone: ZoneInfo | None, role: Role = "instant") -> datetime:
    """The value one instant is written as, by its role (module doc): local time in `zone`
    (TZID), or UTC when there is no zone or the local time would not name it to every reader."""
    if zone is None:
        return instant.astimezone(UTC)
    local = instant.astimezone(zone)
    first = to_ts(local.replace(fold=0))
    if role == "series":
        keep = True
    elif role == "occurrence":
        keep = first == to_ts(instant)
    else:
        keep = first == to_ts(local.replace(fold=1))  # a local time that names one instant only
    return local if keep else instant.astimezone(UTC)


def _set_times(comp: Any, data: EventData, tz: ZoneInfo, zone: ZoneInfo | None, series: bool) -> None:
    for name in ("DTSTART", "DTEND", "DURATION"):
        comp.pop(name, None)
    start, end = from_ts(data.start_ts), from_ts(data.end_ts)
    if data.all_day:
        comp.add("DTSTART", start.astimezone(tz).date())
        comp.add("DTEND", end.astimezone(tz).date())
    else:
        role: Role = "series" if series else "instant"
        comp.add("DTSTART", _written(start, zone, role))
        comp.add("DTEND", _written(end, zone, role))


def _until_utc(rule: Any, local: ZoneInfo) -> Any:
    """UNTIL of a timed series in UTC, as RFC 5545 requires with a zoned or UTC DTSTART; a date
    or floating UNTIL is local time in the zone Chronary expands the series in."""
    until = rule.get("UNTIL")
    if not until:
        return rule
    value = until[0]
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0), local)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=local)
    rule["UNTIL"] = [value.astimezone(UTC)]
    return rule


def _set_recurrence(
    comp: Any, lines: list[str] | None, zone: ZoneInfo | None, local: ZoneInfo, tz: ZoneInfo, all_day: bool
) -> None:
    """RRULE/EXRULE/RDATE/EXDATE from stored lines, written like DTSTART: dates for all-day
    series, otherwise local time with DTSTART's TZID (UTC where the role says so)."""
    for name in _RECURRENCE_PROPS:
        comp.pop(name, None)
    if not lines:
        return
    mini = icalendar.Event.from_ical("BEGIN:VEVENT\r\n" + "\r\n".join(lines) + "\r\nEND:VEVENT\r\n")
    for name in ("RRULE", "EXRULE"):
        for rule in _as_list(mini.get(name)):
            comp.add(name, rule if all_day else _until_utc(rule, local), encode=False)
    for name in ("RDATE", "EXDATE"):
        days: set[date] = set()
        zoned: set[datetime] = set()
        utc: set[datetime] = set()
        for prop in _as_list(mini.get(name)):
            if any(isinstance(d.dt, tuple) for d in prop.dts):
                comp.add(name, prop, encode=False)  # RDATE periods pass through untouched
                continue
            for d in prop.dts:
                value = d.dt
                if not isinstance(value, datetime):
                    days.add(value)
                    continue
                instant = value if value.tzinfo is not None else value.replace(tzinfo=local)
                if all_day:
                    days.add(instant.astimezone(tz).date())
                    continue
                out = _written(instant, zone, "occurrence" if name == "EXDATE" else "instant")
                (utc if out.tzinfo is UTC else zoned).add(out)
        for values in (days, zoned, utc):
            if values:
                comp.add(name, sorted(values))


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


def _apply(
    comp: Any,
    data: EventData,
    tz: ZoneInfo,
    now: datetime,
    fresh: bool,
    zone: ZoneInfo | None,
    local: ZoneInfo,
    rewrite_times: bool = False,
) -> None:
    """Write the modeled fields that changed; `rewrite_times` forces times and recurrence out
    again (a body Chronary once pushed in UTC moves to the calendar's TZID)."""
    old = None if fresh else read_vevent(comp, Zones(tz, tz))[1]
    new = data.modeled()
    before = old.modeled() if old else {}
    forced = ("times", "recurrence") if rewrite_times else ()
    changed = [k for k in MODELED if fresh or k in forced or before.get(k) != new[k]]
    comp_zone = (None if fresh else _base_tz(comp)) or zone  # before DTSTART is replaced
    is_override = data.recurrence_id_ts is not None
    series = bool(data.recurrence) and not is_override
    for key in changed:
        if key in ("title", "description", "location"):
            name = {"title": "SUMMARY", "description": "DESCRIPTION", "location": "LOCATION"}[key]
            comp.pop(name, None)
            if new[key] is not None:
                comp.add(name, new[key])
        elif key == "times":
            _set_times(comp, data, tz, comp_zone, series)
        elif key == "status":
            comp.pop("STATUS", None)
            comp.add("STATUS", _STATUS_OUT.get(data.status, "CONFIRMED"))
        elif key == "recurrence":
            _set_recurrence(comp, None if is_override else data.recurrence, comp_zone, local, tz, data.all_day)
        elif key == "attendees":
            _set_attendees(comp, new["attendees"])
        elif key == "reminders":
            _set_reminders(comp, new["reminders"], data.title)
        elif key == "transparency":
            comp.pop("TRANSP", None)
            comp.add("TRANSP", "TRANSPARENT" if new["transparency"] == "transparent" else "OPAQUE")
    if changed or fresh:
        for name in ("DTSTAMP", "LAST-MODIFIED", "SEQUENCE"):
            comp.pop(name, None)
        comp.add("DTSTAMP", now)
        comp.add("LAST-MODIFIED", now)
        comp.add("SEQUENCE", max(old.sequence + 1 if old else 0, data.sequence))


def _add_timezones(cal: Any, first_year: int) -> None:
    """A VTIMEZONE for every TZID the events use that the resource does not define yet (a
    remote body keeps its own), built by chronary.ical.render.vtimezone like the feeds'."""
    have = {str(c.get("TZID")) for c in cal.subcomponents if c.name == "VTIMEZONE"}
    used: set[str] = set()
    for comp in cal.subcomponents:
        if comp.name == "VEVENT":
            for name in ("DTSTART", "DTEND", "RECURRENCE-ID", "RDATE", "EXDATE"):
                for prop in _as_list(comp.get(name)):
                    tzid = getattr(prop, "params", {}).get("TZID")
                    if tzid:
                        used.add(str(tzid))
    added = []
    for tzid in sorted(used - have):
        if not valid_timezone(tzid):
            continue  # a zone only the remote side knows: its own VTIMEZONE (or none) stays
        try:
            vtz = icalendar.Timezone.from_ical(render.vtimezone(tzid, first_year))
        except Exception:  # noqa: BLE001 - a missing VTIMEZONE only costs clients a lookup
            continue
        _one_rdate_per_line(vtz)
        added.append(vtz)
    if added:
        zones = [c for c in cal.subcomponents if c.name == "VTIMEZONE"]
        rest = [c for c in cal.subcomponents if c.name != "VTIMEZONE"]
        cal.subcomponents = [*zones, *added, *rest]


def _one_rdate_per_line(vtz: Any) -> None:
    """ical.js reads only the first date of a comma-separated RDATE in an observance: write
    each one on its own line (the same observances; a no-op for RRULE-based VTIMEZONEs)."""
    for observance in vtz.subcomponents:
        props = _as_list(observance.get("RDATE"))
        if not any(len(p.dts) > 1 for p in props):
            continue
        observance.pop("RDATE")
        for value in sorted({d.dt for p in props for d in p.dts}):
            observance.add("RDATE", value)


def encode(out: Outgoing, now: datetime) -> str:
    """The resource text for a Chronary series (or single event) and its stored exceptions."""
    tz = ZoneInfo(out.calendar_zone)
    if out.base:
        cal = icalendar.Calendar.from_ical(out.base)
        old_events = list(cal.walk("VEVENT"))
        cal.subcomponents = [c for c in cal.subcomponents if c.name != "VEVENT"]
    else:
        cal = icalendar.Calendar()
        cal.add("PRODID", PRODID)
        cal.add("VERSION", "2.0")
        old_events = []
    by_rid: dict[int | None, Any] = {}
    for old in old_events:
        rid = old.get("RECURRENCE-ID")
        by_rid[_instant(rid.dt, tz) if rid is not None else None] = old
    old_master = by_rid.get(None)
    zone = _resource_zone(out, old_master)
    local = ZoneInfo(out.zone)  # floating values mean this zone
    # pushed in UTC by an older Chronary: move the whole resource to the calendar's TZID
    upgrade = old_master is not None and out.internal and zone is not None and _utc_start(old_master)
    rid_zone = zone
    pieces = [(None, out.master), *((e.recurrence_id_ts, e) for e in out.overrides)]
    for rid_ts, data in pieces:
        found = by_rid.get(rid_ts)
        fresh = found is None
        comp: Any = icalendar.Event() if found is None else found
        if fresh:
            comp.add("UID", out.uid)
        if rid_ts is not None and (fresh or (upgrade and not out.master.all_day)):
            comp.pop("RECURRENCE-ID", None)
            rid = from_ts(rid_ts)
            if out.master.all_day:
                comp.add("RECURRENCE-ID", rid.astimezone(tz).date())
            else:
                comp.add("RECURRENCE-ID", _written(rid, rid_zone, "occurrence"))
        _apply(comp, data, tz, now, fresh, zone, local, rewrite_times=upgrade)
        if rid_ts is None:
            rid_zone = _base_tz(comp)  # overrides name the master's times in its zone (None: UTC)
        cal.add_component(comp)
    first = min([out.master.start_ts, *(e.start_ts for e in out.overrides)])
    _add_timezones(cal, render.first_year(first))
    return cal.to_ical().decode()
