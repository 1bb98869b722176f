"""Event shapes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from chronary import limits
from chronary.schemas.common import Date, DateOrTimestamp, Input, Metadata, Reminders, Timestamp

EventStatus = Literal["confirmed", "tentative", "hold", "cancelled"]
Transparency = Annotated[
    Literal["opaque", "transparent"],
    Meta(
        description=(
            "RFC 5545 TRANSP. opaque (default) events make the agent busy; transparent ones (holidays, "
            "'working from home' markers) are listed but never block availability, find-meeting-time or "
            "hold placement. Occurrences inherit their series' value; holds are always opaque."
        )
    ),
]
Title = Annotated[str, Meta(min_length=1, max_length=limits.TITLE_MAX)]
Text = Annotated[str, Meta(max_length=limits.DESCRIPTION_MAX)]
Priority = Annotated[int, Meta(ge=0, le=10)]
Recurrence = Annotated[
    list[Annotated[str, Meta(max_length=limits.RECURRENCE_LINE_MAX)]],
    Meta(
        max_length=limits.RECURRENCE_LINES_MAX, description="RRULE / EXDATE / RDATE lines, e.g. RRULE:FREQ=WEEKLY;BYDAY=MO"
    ),
]


class Attendee(Input):
    email: Annotated[str, Meta(min_length=3, max_length=254)]
    name: Annotated[str, Meta(max_length=255)] | None = None
    agent_id: str | None = None


class EventCreate(Input):
    title: Title
    start_time: DateOrTimestamp
    end_time: DateOrTimestamp
    description: Text | None = None
    location: Annotated[str, Meta(max_length=limits.LOCATION_MAX)] | None = None
    all_day: bool = False
    status: EventStatus = "confirmed"
    hold_expires_at: Timestamp | None = None
    priority: Priority | None = None
    reminders: Reminders | None = None
    recurrence: Recurrence | None = None
    attendees: Annotated[list[Attendee], Meta(max_length=200)] | None = None
    metadata: Metadata | None = None
    transparency: Transparency = "opaque"
    allow_overlap: bool = False
    if_free: Annotated[
        bool,
        Meta(
            description=(
                "true: create it only if the agent is free then. Inside the write transaction, the event's "
                "time (a series: its occurrences in the first 62 days) is checked against the agent's whole "
                "busy time as availability answers it — every calendar, synced and subscribed ones included, "
                "unexpired holds, widened by the agent's buffers; a clash answers 409 conflict with "
                "`error.conflicts` and nothing is written. Concurrent requests for one slot: exactly one wins. "
                "Working hours and minimum notice are not checked."
            )
        ),
    ] = False


class EventUpdate(Input):
    title: Title | UnsetType = UNSET
    start_time: DateOrTimestamp | UnsetType = UNSET
    end_time: DateOrTimestamp | UnsetType = UNSET
    description: Text | None | UnsetType = UNSET
    location: Annotated[str, Meta(max_length=limits.LOCATION_MAX)] | None | UnsetType = UNSET
    all_day: bool | UnsetType = UNSET
    status: EventStatus | UnsetType = UNSET
    hold_expires_at: Timestamp | None | UnsetType = UNSET
    priority: Priority | None | UnsetType = UNSET
    reminders: Reminders | None | UnsetType = UNSET
    recurrence: Recurrence | None | UnsetType = UNSET
    attendees: Annotated[list[Attendee], Meta(max_length=200)] | None | UnsetType = UNSET
    metadata: Metadata | None | UnsetType = UNSET
    transparency: Transparency | UnsetType = UNSET
    allow_overlap: bool | UnsetType = UNSET


class EventAttendee(msgspec.Struct):
    email: str
    name: str | None = None
    agent_id: str | None = None


class Event(msgspec.Struct):
    id: str
    calendar_id: str
    agent_id: str | None
    ical_uid: str
    title: str
    description: str | None
    location: str | None
    start_time: Timestamp
    end_time: Timestamp
    all_day: bool
    start_date: Date | None
    end_date: Date | None
    status: str
    hold_expires_at: Timestamp | None
    priority: int | None
    reminders: list[int] | None
    recurrence: list[str] | None
    attendees: list[EventAttendee]
    metadata: dict[str, Any]
    source: str
    read_only: bool
    recurring_event_id: str | None
    sequence: int
    remote: dict[str, Any] | None
    created_at: Timestamp
    updated_at: Timestamp
    transparency: Transparency = "opaque"


class EventList(msgspec.Struct):
    data: list[Event]
    total: int
    limit: int
    offset: int
