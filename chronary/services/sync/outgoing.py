"""Stored event rows → `Outgoing`, the neutral shape providers write (chronary.ical.model)."""

from __future__ import annotations

from typing import Any

from chronary.ical.model import EventData, Outgoing
from chronary.services.occurrences import series_zone


def event_data(row: dict[str, Any]) -> EventData:
    """One stored row (series, single event or exception) as the fields a provider models."""
    return EventData(
        title=row["title"],
        description=row["description"],
        location=row["location"],
        start_ts=row["start_ts"],
        end_ts=row["end_ts"],
        all_day=bool(row["all_day"]),
        status=row["status"],
        recurrence=(row["recurrence"] or None) if row.get("recurring_event_id") is None else None,
        attendees=[{"email": a.get("email"), "name": a.get("name"), "agent_id": None} for a in (row["attendees"] or [])],
        reminders=sorted(set(row.get("reminders") or []))[:5] or None,
        transparency=row.get("transparency") or "opaque",
        sequence=int(row.get("sequence") or 0),
        recurrence_id_ts=row.get("recurrence_id_ts"),
    )


def outgoing(
    master: dict[str, Any], exceptions: list[dict[str, Any]], calendar: dict[str, Any], link: dict[str, Any] | None
) -> Outgoing:
    """A series (or single event) and its stored exceptions, ready for `Provider.put_event`."""
    return Outgoing(
        uid=master["ical_uid"],
        event_id=master["id"],
        master=event_data(master),
        overrides=[event_data(e) for e in exceptions],
        zone=series_zone(master, calendar).key or "UTC",
        calendar_zone=calendar["timezone"],
        internal=master.get("source") == "internal",
        remote_id=(link or {}).get("href"),
        etag=(link or {}).get("etag"),
        base=(link or {}).get("ical"),
    )
