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


class Source(msgspec.Struct, omit_defaults=True):
    """Where a blocking event's data comes from, and how fresh that copy is: `last_synced_at` is
    when the connection's or subscription's last successful sync finished (absent: never)."""

    kind: Annotated[
        str,
        Meta(
            description=(
                "local (made in Chronary: always current), connection (synced from a provider account) or "
                "subscription (imported from an iCal feed)"
            )
        ),
    ]
    provider: Annotated[
        str,
        Meta(description="The event source: internal, google, microsoft, caldav, icloud or external_ical"),
    ]
    id: Annotated[str | None, Meta(description="The connection (con_…) or iCal subscription (isub_…) id")] = None
    agent_id: str | None = None
    label: Annotated[str | None, Meta(description="A subscription's label")] = None
    status: Annotated[str | None, Meta(description="The connection's or subscription's status (active, error…)")] = None
    last_synced_at: Timestamp | None = None  # when the last successful sync finished (absent: never)
    error: Annotated[str | None, Meta(description="Why the last sync failed, when it did")] = None
    calendar_ids: Annotated[list[str] | None, Meta(description="The agent's calendars this source fills")] = None


BlockerKind = Annotated[
    str,
    Meta(
        description=(
            "event (a blocking event or occurrence), rule (the agent's availability rules), past (before now), "
            "too_short (free, but shorter than slot_minutes)"
        )
    ),
]
RuleName = Annotated[
    str,
    Meta(description="working_hours, date_override, buffer or minimum_notice (for kind rule)"),
]


class Blocker(msgspec.Struct, omit_defaults=True):
    """One reason a time is not free: an event (with its source; `start_time`/`end_time` are the
    event's own times, before buffers) or a rule."""

    kind: BlockerKind
    agent_id: str | None = None
    event_id: Annotated[
        str | None, Meta(description="The event (or occurrence id `<series>_<start>`); for a buffer, the event padded")
    ] = None
    calendar_id: str | None = None
    title: Annotated[str | None, Meta(description="Only for events the key may read")] = None
    status: Annotated[str | None, Meta(description="The event's status: confirmed, tentative or hold")] = None
    start_time: Timestamp | None = None  # the event's own times, before buffers
    end_time: Timestamp | None = None
    private: Annotated[
        bool, Meta(description="true: another agent's event an agent key may not see; only its times are given")
    ] = False
    source: Source | None = None
    rule: RuleName | None = None
    rule_id: Annotated[str | None, Meta(description="The availability rule set (rul_…)")] = None
    date: Annotated[str | None, Meta(description="The local date a working-hours or override reason is about")] = None
    detail: Annotated[str | None, Meta(description="The reason in words")] = None


class ExplainedInterval(msgspec.Struct):
    start: Timestamp
    end: Timestamp
    blocked_by: list[Blocker]


class AvailabilityExplanation(msgspec.Struct):
    busy: Annotated[
        list[ExplainedInterval],
        Meta(description="One entry per `busy` interval, same order: the events (and buffers) that make it"),
    ]
    closed: Annotated[
        list[ExplainedInterval],
        Meta(
            description=(
                "The rest of the window that is not free for other reasons: before now, minimum notice, "
                "outside working hours, a date override, or free but shorter than slot_minutes "
                "(whether or not events also fall there)"
            )
        ),
    ]
    sources: Annotated[
        list[Source], Meta(description="Every connection and iCal subscription filling the agent's calendars")
    ]


class Availability(msgspec.Struct, omit_defaults=True):
    agent_id: str
    timezone: str
    start: Timestamp
    end: Timestamp
    busy: list[BusyInterval]
    free: list[Interval]
    explanation: Annotated[AvailabilityExplanation | None, Meta(description="Only with explain=true")] = None


class FindMeetingTime(Input):
    agent_ids: Annotated[list[str], Meta(min_length=2, max_length=50)]
    start: Timestamp
    end: Timestamp
    duration_minutes: Annotated[int, Meta(ge=1, le=24 * 60)]
    limit: Annotated[int, Meta(ge=1, le=100)] = 10
    slot_step_minutes: Annotated[int, Meta(ge=1, le=24 * 60)] = 15


class RejectedCandidates(msgspec.Struct):
    start: Annotated[Timestamp, Meta(description="Start of the first candidate slot of this run")]
    end: Annotated[Timestamp, Meta(description="End of the last candidate slot of this run")]
    candidates: Annotated[int, Meta(description="Consecutive grid candidates rejected for the same reasons")]
    reasons: list[Blocker]


class MeetingExplanation(msgspec.Struct):
    rejected: Annotated[
        list[RejectedCandidates],
        Meta(
            description=(
                "Candidates on the slot_step_minutes grid that were considered (up to the last slot returned, or "
                "the whole window when fewer than limit were found) and rejected, in order, consecutive ones with "
                "the same reasons as one entry; at most 100 entries"
            )
        ),
    ]
    rejected_total: Annotated[int, Meta(description="How many candidates were rejected in all")]
    truncated: Annotated[bool, Meta(description="true: more rejected candidates than the entries listed")]
    sources: Annotated[
        list[Source], Meta(description="Every connection and iCal subscription filling the agents' calendars")
    ]


class MeetingSlots(msgspec.Struct, omit_defaults=True):
    slots: list[Interval]
    explanation: Annotated[MeetingExplanation | None, Meta(description="Only with explain=true")] = None


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
