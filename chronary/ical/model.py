"""The neutral shape of one event as calendars exchange it, shared by the VEVENT codec
(`ical/decode.py`, `ical/encode.py`) and every provider (`chronary.providers`).

Times are UTC unix seconds. All-day events are local midnights in the Chronary calendar's zone
(the convention of the events service), so their dates come back unchanged. `recurrence` holds
the stored line format, one format for every source (see `ical/decode.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Status = Literal["confirmed", "tentative", "cancelled", "hold"]  # hold: outgoing only (sent as tentative)
Transparency = Literal["opaque", "transparent"]


class CodecError(Exception):
    """A VEVENT (or a whole feed) cannot be read; the message names the UID and is safe to show."""


@dataclass
class EventData:
    """The part of one VEVENT (or provider event) that Chronary models.

    `remote_id`/`etag` are the provider's own for this piece where it has them (a Google or Graph
    exception is its own resource); for CalDAV every piece shares its resource's href and etag.
    """

    title: str
    description: str | None
    location: str | None
    start_ts: int
    end_ts: int
    all_day: bool
    status: str
    recurrence: list[str] | None = None
    attendees: list[dict[str, Any]] = field(default_factory=list)
    reminders: list[int] | None = None
    transparency: str = "opaque"
    sequence: int = 0
    last_modified: datetime | None = None
    recurrence_id_ts: int | None = None  # None for a single event or a series master
    tzid: str | None = None  # IANA zone a timed event was written in (None: UTC or floating)
    remote_id: str | None = None
    etag: str | None = None

    def modeled(self) -> dict[str, Any]:
        """The fields compared to decide whether a piece changed (the encoder rewrites only those)."""
        return {
            "title": self.title,
            "description": self.description,
            "location": self.location,
            "times": (self.start_ts, self.end_ts, self.all_day),
            "status": self.status,
            "recurrence": self.recurrence or None,
            "attendees": [{"email": a.get("email"), "name": a.get("name"), "agent_id": None} for a in self.attendees],
            "reminders": sorted(set(self.reminders or []))[:5] or None,
            "transparency": self.transparency or "opaque",
        }


@dataclass
class Resource:
    """One UID: its master (a single event or a series) and the RECURRENCE-ID overrides."""

    uid: str
    master: EventData
    overrides: list[EventData] = field(default_factory=list)


@dataclass
class Outgoing:
    """A Chronary series (or single event) on its way to a provider: what `put_event` sends."""

    uid: str
    event_id: str  # Chronary's id of the master: providers that let clients pick ids derive theirs from it
    master: EventData
    overrides: list[EventData]
    zone: str  # the zone the series repeats in: the calendar's, or the imported series' own
    calendar_zone: str  # the zone all-day dates are local midnights in
    internal: bool  # born in Chronary (not first pulled from this provider)
    remote_id: str | None = None  # None: create it
    etag: str | None = None  # the version we last saw; a provider refuses the write if it moved
    base: str | None = None  # the last raw body both sides agreed on: unknown properties survive
