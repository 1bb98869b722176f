"""The dict form of an event: what webhook payloads and the change log carry, in the key order
they always had. A leaf module, so calendars, the sync merge and events all use it without
importing each other (the API answers with `schemas.events.Event`, built by events.to_struct).
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from chronary.services import event_times
from chronary.timeutil import from_ts, iso, ts_iso


def present(row: dict[str, Any], calendar: dict[str, Any]) -> dict[str, Any]:
    """The dict form (webhook payloads, the change log, callers outside the API)."""
    start, end = from_ts(row["start_ts"]), from_ts(row["end_ts"])
    start_date = end_date = None
    if row["all_day"]:
        start_date, end_date = event_times.all_day_dates(start, end, ZoneInfo(calendar["timezone"]))
    return {
        "id": row["id"],
        "calendar_id": row["calendar_id"],
        "agent_id": calendar["agent_id"],
        "ical_uid": row["ical_uid"],
        "title": row["title"],
        "description": row["description"],
        "location": row["location"],
        "start_time": iso(start),
        "end_time": iso(end),
        "all_day": bool(row["all_day"]),
        "start_date": start_date,
        "end_date": end_date,
        "status": row["status"],
        "hold_expires_at": ts_iso(row["hold_expires_at"]),
        "priority": row["priority"],
        "reminders": row["reminders"],
        "recurrence": row["recurrence"],
        "attendees": row["attendees"] or [],
        "metadata": row["metadata"] or {},
        "source": row["source"],
        "read_only": bool(row["read_only"]),
        "recurring_event_id": row["recurring_event_id"],
        "sequence": row["sequence"],
        "remote": row["remote"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "transparency": row.get("transparency") or "opaque",
    }
