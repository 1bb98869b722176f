"""A fast reader for the common shape of .ics feeds, with icalendar as the authority.

icalendar parses ≈ 1k events/s here (STACK-NOTES), which makes a 10k-event subscription
take seconds of CPU. Most feeds only use content lines, TEXT, DATE/DATE-TIME with IANA or
Windows TZIDs, RRULE/EXDATE/RDATE and VALARM TRIGGERs; this module reads exactly that and
hands `chronary.ical.decode` objects that answer like icalendar components. Anything else (a
TZID defined only by its VTIMEZONE, PERIOD values, odd syntax) raises `Unsupported`, and the
caller parses the feed with icalendar instead.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from icalendar.prop import vDuration
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

_UNESCAPE = re.compile(r"\\([\\;,nN])")
_ZONES: dict[str, ZoneInfo | None] = {}
_DURATIONS: dict[str, timedelta] = {}  # "-PT15M" -> its timedelta (alarms repeat the same few)


class Unsupported(Exception):
    """Not for the fast path; use icalendar."""


def _zone(tzid: str) -> ZoneInfo:
    tzid = tzid.strip('"')
    if tzid not in _ZONES:
        name = WINDOWS_TO_OLSON.get(tzid, tzid)
        try:
            _ZONES[tzid] = ZoneInfo(name) if name and not name.startswith("/") else None
        except (ValueError, KeyError, OSError):
            _ZONES[tzid] = None
    zone = _ZONES[tzid]
    if zone is None:
        raise Unsupported(f"TZID {tzid!r}")
    return zone


def unescape(value: str) -> str:
    if "\\" not in value:
        return value
    return _UNESCAPE.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def date_value(raw: str, params: dict[str, str]) -> date | datetime:
    raw = raw.strip()
    if params.get("VALUE", "").upper() == "DATE" or len(raw) == 8:
        return date(int(raw[0:4]), int(raw[4:6]), int(raw[6:8]))
    if len(raw) not in (15, 16) or raw[8] not in "Tt":
        raise ValueError(f"not a date-time: {raw[:40]!r}")
    naive = datetime(int(raw[0:4]), int(raw[4:6]), int(raw[6:8]), int(raw[9:11]), int(raw[11:13]), int(raw[13:15]))
    if len(raw) == 16:
        if raw[15] not in "Zz":
            raise ValueError(f"not a date-time: {raw[:40]!r}")
        return naive.replace(tzinfo=UTC)
    tzid = params.get("TZID")
    return naive.replace(tzinfo=_zone(tzid)) if tzid else naive


class _Dt:
    __slots__ = ("dt",)

    def __init__(self, dt: date | datetime) -> None:
        self.dt = dt


class _DateList:
    __slots__ = ("dts",)

    def __init__(self, raw: str, params: dict[str, str]) -> None:
        if params.get("VALUE", "").upper() == "PERIOD" or "/" in raw:
            raise Unsupported("PERIOD values")
        self.dts = [_Dt(date_value(v, params)) for v in raw.split(",") if v.strip()]


class _Rule:
    __slots__ = ("raw",)

    def __init__(self, raw: str) -> None:
        self.raw = raw

    def to_ical(self) -> bytes:
        return self.raw.encode()


class Component:
    """The subset of icalendar.Component that chronary.ical.decode uses."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.props: dict[str, list[tuple[dict[str, str], str]]] = {}
        self.children: list[Component] = []

    def add(self, name: str, params: dict[str, str], value: str) -> None:
        self.props.setdefault(name, []).append((params, value))

    def __contains__(self, name: str) -> bool:
        return name in self.props

    def _wrap(self, name: str, params: dict[str, str], value: str) -> Any:
        if name == "RRULE":
            return _Rule(value)
        if name in ("EXDATE", "RDATE"):
            return _DateList(value, params)
        return unescape(value)

    def get(self, name: str, default: Any = None) -> Any:
        items = self.props.get(name)
        if not items:
            return default
        if name not in ("RRULE", "EXDATE", "RDATE"):
            return self._wrap(name, *items[0])  # icalendar also keeps the first of a duplicate
        wrapped = [self._wrap(name, p, v) for p, v in items]
        return wrapped[0] if len(wrapped) == 1 else wrapped

    def values(self, name: str) -> list[tuple[Any, dict[str, str]]]:
        """Every value of a property (wrapped as `get` wraps it) with its parameters."""
        return [(self._wrap(name, p, v), p) for p, v in self.props.get(name, [])]

    def __getitem__(self, name: str) -> Any:
        if name not in self.props:
            raise KeyError(name)
        return self.get(name)

    def decoded(self, name: str) -> Any:
        params, value = self.props[name][0]
        if name in ("DURATION", "TRIGGER"):
            if params.get("VALUE", "").upper() == "DATE-TIME":
                return date_value(value, params)
            text = value.strip()
            duration = _DURATIONS.get(text)
            if duration is None:
                if len(_DURATIONS) >= 1024:
                    _DURATIONS.clear()
                duration = _DURATIONS[text] = vDuration.from_ical(text)
            return duration
        return date_value(value, params)

    def walk(self, name: str) -> list[Component]:
        found = [self] if self.name == name else []
        for child in self.children:
            found.extend(child.walk(name))
        return found


_HEADS: dict[str, tuple[str, dict[str, str]]] = {}  # a line's text before its value -> its name, parameters
_HEADS_MAX = 4096
_QUOTED_HEAD = re.compile(r'((?:[^:"]|"[^"]*")*):')
_PARTS = re.compile(r'(?:[^;"]|"[^"]*")+')


def _params(head: str) -> tuple[str, dict[str, str]]:
    if ";" not in head:
        return head.upper(), {}
    parts = _PARTS.findall(head)
    params: dict[str, str] = {}
    for part in parts[1:]:
        key, _, value = part.partition("=")
        params[key.strip().upper()] = value.strip('"')
    return parts[0].upper(), params


def parse(text: str) -> Component:
    """The VCALENDAR component of `text`; raises Unsupported or ValueError when unsure.

    A CalDAV first import reads thousands of resources: a line's name and parameters are read
    once per distinct text (`_HEADS`: DTSTART;TZID=… repeats), and a VTIMEZONE keeps only its
    TZID (its rules are never read here; a TZID we cannot name in IANA terms sends the whole
    text to icalendar), its shape still checked.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n ", "").replace("\n\t", "")
    stack: list[Component] = []
    names: list[str] = []  # the open components' names, VTIMEZONE rules included
    root: Component | None = None
    top: Component | None = None  # where properties go; None inside a VTIMEZONE's rules
    zone_depth = 0  # open components from a VTIMEZONE down
    if len(_HEADS) >= _HEADS_MAX:
        _HEADS.clear()  # a bound, not a policy: feeds rarely have thousands of distinct heads
    heads = _HEADS
    for line in text.split("\n"):
        if not line:
            continue
        colon = line.find(":")
        if colon <= 0:
            raise ValueError(f"content line without a colon: {line[:40]!r}")
        head = line[:colon]
        if '"' in head:  # a quoted parameter may hold a colon: find the first unquoted one
            match = _QUOTED_HEAD.match(line)
            if match is None:
                raise ValueError(f"bad quoting: {line[:40]!r}")
            head = match.group(1)
            colon = len(head)
        value = line[colon + 1 :]
        known = heads.get(head)
        if known is None:
            known = heads[head] = _params(head)
        name, shared = known
        params = dict(shared) if shared else {}  # each line its own dict, as before
        if name == "BEGIN":
            kind = value.strip().upper()
            names.append(kind)
            if zone_depth:
                zone_depth += 1
                top = None
                continue
            comp = Component(kind)
            if stack:
                stack[-1].children.append(comp)
            elif root is None:
                root = comp
            else:
                raise Unsupported("more than one top-level component")
            stack.append(comp)
            top = comp
            if kind == "VTIMEZONE":
                zone_depth = 1
        elif name == "END":
            if not names or names[-1] != value.strip().upper():
                raise ValueError(f"unbalanced END:{value.strip()}")
            names.pop()
            if zone_depth > 1:
                zone_depth -= 1
                top = stack[-1] if zone_depth == 1 else None
                continue
            zone_depth = 0
            stack.pop()
            top = stack[-1] if stack else None
        elif top is not None:
            if zone_depth and name != "TZID":
                continue  # the zone's own properties (LAST-MODIFIED, X-…): never read
            top.props.setdefault(name, []).append((params, value))
        elif not names:
            raise ValueError("content outside BEGIN:VCALENDAR")
    if root is None or root.name != "VCALENDAR" or names:
        raise ValueError("not a complete VCALENDAR")
    for tz in root.walk("VTIMEZONE"):
        tzid = tz.get("TZID")
        if isinstance(tzid, str):
            _zone(tzid)  # a zone we cannot name in IANA terms: icalendar must read its VTIMEZONE
    return root
