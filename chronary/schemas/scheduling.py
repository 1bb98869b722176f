"""Shapes for availability rules, free/busy, find-meeting-time and the calendar context."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from chronary.schemas.common import Input, Timestamp
from chronary.schemas.events import Event

Minutes = Annotated[int, Meta(ge=0, le=7 * 24 * 60, description="Minutes, 0–10080")]
HHMM = Annotated[str, Meta(description='Local wall-clock time "HH:MM" (24 h); an end may be "24:00"')]


class TimeRange(Input):
    start: HHMM
    end: HHMM


DayHours = Annotated[list[TimeRange], Meta(max_length=24)]


class WorkingHours(Input):
    mon: DayHours = []
    tue: DayHours = []
    wed: DayHours = []
    thu: DayHours = []
    fri: DayHours = []
    sat: DayHours = []
    sun: DayHours = []


class DateOverride(Input):
    date: Annotated[str, Meta(description="Local date YYYY-MM-DD")]
    hours: Annotated[list[TimeRange], Meta(max_length=24, description="[] = a day off")]


class RulesInput(Input):
    """An agent's working hours in its timezone; replaces any rules it had."""

    working_hours: WorkingHours
    timezone: str | None = None
    buffer_before_minutes: Minutes = 0
    buffer_after_minutes: Minutes = 0
    minimum_notice_minutes: Annotated[int, Meta(ge=0, le=62 * 24 * 60)] = 0
    overrides: Annotated[list[DateOverride], Meta(max_length=366)] = []


class Range(msgspec.Struct):
    start: str
    end: str


class Rules(msgspec.Struct):
    id: str
    agent_id: str
    timezone: str
    timezone_from_agent: bool
    working_hours: dict[str, list[Range]]
    buffer_before_minutes: int
    buffer_after_minutes: int
    minimum_notice_minutes: int
    overrides: list[dict[str, Any]]
    created_at: Timestamp
    updated_at: Timestamp


class BusyInterval(msgspec.Struct):
    start: Timestamp
    end: Timestamp
    event_id: str | None = None


class Interval(msgspec.Struct):
    start: Timestamp
    end: Timestamp


class Availability(msgspec.Struct):
    agent_id: str
    timezone: str
    start: Timestamp
    end: Timestamp
    busy: list[BusyInterval]
    free: list[Interval]


class FindMeetingTime(Input):
    agent_ids: Annotated[list[str], Meta(min_length=2, max_length=50)]
    start: Timestamp
    end: Timestamp
    duration_minutes: Annotated[int, Meta(ge=1, le=24 * 60)]
    limit: Annotated[int, Meta(ge=1, le=100)] = 10
    slot_step_minutes: Annotated[int, Meta(ge=1, le=24 * 60)] = 15


class MeetingSlots(msgspec.Struct):
    slots: list[Interval]


class ContextAgent(msgspec.Struct):
    id: str
    name: str
    status: str
    timezone: str


class Context(msgspec.Struct):
    now: Timestamp
    agent: ContextAgent
    current_event: Event | None
    upcoming: list[Event]
    recent: list[Event]
    agent_status: str
    agent_status_calendar_id: str | None
