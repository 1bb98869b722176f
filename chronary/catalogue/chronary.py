"""Chronary itself: its events, holds and meeting-time search as Connect actions, its changes as events.

Each action's input mirrors the REST body (`chronary.schemas.events`, `chronary.schemas.scheduling`)
plus the ids the REST path carries (`calendar_id`, `event_id`); each answers what the REST call
answers. The tests compare these properties with the msgspec structs' fields, so a field added to
the REST schema without its catalogue entry fails there.
"""

from __future__ import annotations

from typing import Any

from chronary import limits
from chronary.catalogue import (
    Action,
    EventType,
    Provider,
    Schema,
    any_json,
    array,
    boolean,
    input_schema,
    integer,
    obj,
    output_schema,
    string,
)

_INSTANT = "ISO 8601 timestamp with an offset or Z"
_CAL = "cal_01J9Z3K4Q8X2V6M0N5B7C1D3E4"
_EVT = "evt_01J9Z3M2W7R5T8Y1U4I6O9P0A2"

# --- pieces shared by the event actions -------------------------------------------------------

calendar_id = string("The calendar's id (cal_…)", examples=[_CAL], pattern="^cal_")
event_id = string(
    "The event's id (evt_…), or an occurrence id of a series (<series id>_<YYYYMMDDTHHMMSSZ>)",
    examples=[_EVT, f"{_EVT}_20250310T090000Z"],
    pattern="^evt_",
)


def _event_fields(*, patch: bool) -> dict[str, Schema]:
    """The writable fields of an event (EventCreate; with `patch`, EventUpdate: the same, without defaults)."""
    fields: dict[str, Schema] = {
        "title": string("Title, 1–500 characters", min_length=1, max_length=limits.TITLE_MAX, examples=["Design review"]),
        "start_time": string(
            "Start: ISO 8601 timestamp with offset; for all-day events a date YYYY-MM-DD",
            examples=["2025-03-10T09:00:00Z", "2025-03-10"],
        ),
        "end_time": string(
            "End (after the start): ISO 8601 timestamp with offset; for all-day events the day after the last day",
            examples=["2025-03-10T10:00:00Z", "2025-03-11"],
        ),
        "description": string(
            "Free text; null clears it", max_length=limits.DESCRIPTION_MAX, nullable=True, examples=["Agenda: Q2 roadmap"]
        ),
        "location": string(
            "Where it takes place; null clears it", max_length=limits.LOCATION_MAX, nullable=True, examples=["Room 4.01"]
        ),
        "all_day": boolean(
            "Whole days in the calendar's timezone (start_time and end_time are then dates)",
            default=None if patch else False,
            examples=[False],
        ),
        "status": string(
            "confirmed, tentative, hold (a temporary reservation) or cancelled",
            enum=["confirmed", "tentative", "hold", "cancelled"],
            default=None if patch else "confirmed",
            examples=["confirmed"],
        ),
        "hold_expires_at": string(
            f"Only with status hold: when the hold lapses ({_INSTANT}; default 15 minutes, at most 7 days ahead)",
            format="date-time",
            nullable=True,
            examples=["2025-03-09T17:00:00Z"],
        ),
        "priority": integer(
            "0–10; a hold with a higher priority wins over lower ones", minimum=0, maximum=10, nullable=True, examples=[5]
        ),
        "reminders": array(
            "Minutes before the start (1–40320), at most 5; absent: the calendar's default reminders",
            integer("Minutes before the start", minimum=limits.REMINDER_MINUTES_MIN, maximum=limits.REMINDER_MINUTES_MAX),
            max_items=limits.REMINDERS_MAX,
            nullable=True,
            examples=[[10, 60]],
        ),
        "recurrence": array(
            "RRULE / EXDATE / RDATE lines (RFC 5545)",
            string("One recurrence line", max_length=limits.RECURRENCE_LINE_MAX),
            max_items=limits.RECURRENCE_LINES_MAX,
            nullable=True,
            examples=[["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=10"]],
        ),
        "attendees": array(
            "People and agents invited, at most 200",
            obj(
                "An attendee",
                {
                    "email": string("Email address", min_length=3, max_length=254, format="email"),
                    "name": string("Display name", max_length=255, nullable=True),
                    "agent_id": string("The Chronary agent (agt_…) this attendee is", nullable=True),
                },
                ("email",),
            ),
            max_items=200,
            nullable=True,
            examples=[[{"email": "ada@example.com", "name": "Ada"}]],
        ),
        "metadata": obj(
            "Free-form JSON object, at most 16 KB (replaces the stored one)",
            nullable=True,
            examples=[{"ticket": "OPS-42"}],
        ),
        "transparency": string(
            "opaque (default) makes the agent busy; transparent events never block availability. Holds are opaque",
            enum=["opaque", "transparent"],
            default=None if patch else "opaque",
            examples=["opaque"],
        ),
        "allow_overlap": boolean(
            "Place a hold even where it overlaps a confirmed event of the same agent (else 409 conflict)",
            default=None if patch else False,
            examples=[False],
        ),
    }
    if not patch:  # booking-time only: a change is not re-checked
        fields["if_free"] = boolean(
            "Book only if the agent is free then: its whole busy time (every calendar, synced and subscribed ones, "
            "unexpired holds, its buffers) is checked in the booking's own transaction; a clash is 409 conflict "
            "listing error.conflicts, and nothing is written",
            default=False,
            examples=[True],
        )
    return fields


_instant_out = string(_INSTANT + ", answered in UTC with Z", format="date-time")
_date_out = string("A calendar date YYYY-MM-DD (all-day events), else null", format="date", nullable=True)

EVENT: Schema = output_schema(
    "An event as the REST API answers it",
    {
        "id": string("evt_…; an occurrence of a series: <series id>_<original start YYYYMMDDTHHMMSSZ>"),
        "calendar_id": string("The calendar (cal_…)"),
        "agent_id": string("The agent owning the calendar, null for org-level calendars", nullable=True),
        "ical_uid": string("The iCalendar UID"),
        "title": string("Title"),
        "description": string("Free text", nullable=True),
        "location": string("Location", nullable=True),
        "start_time": _instant_out,
        "end_time": _instant_out,
        "all_day": boolean("Whole days in the calendar's timezone"),
        "start_date": _date_out,
        "end_date": _date_out,
        "status": string("confirmed, tentative, hold or cancelled", enum=["confirmed", "tentative", "hold", "cancelled"]),
        "hold_expires_at": string("When a hold lapses", format="date-time", nullable=True),
        "priority": integer("0–10", nullable=True),
        "reminders": array("Minutes before the start", integer("Minutes"), nullable=True),
        "recurrence": array("RRULE / EXDATE / RDATE lines", string("A line"), nullable=True),
        "attendees": array(
            "Attendees",
            obj(
                "An attendee",
                {
                    "email": string("Email address"),
                    "name": string("Display name", nullable=True),
                    "agent_id": string("The Chronary agent", nullable=True),
                },
                ("email",),
                closed=False,
            ),
        ),
        "metadata": obj("Free-form JSON object"),
        "source": string(
            "Where it comes from", enum=["internal", "external_ical", "google", "microsoft", "icloud", "caldav"]
        ),
        "read_only": boolean("Imported events cannot be changed"),
        "recurring_event_id": string("For an occurrence: its series' id", nullable=True),
        "sequence": integer("iCalendar SEQUENCE, raised by each significant change"),
        "remote": obj("For mirrored events: connection_id, calendar_remote_id, uid, etag", closed=False, nullable=True),
        "created_at": _instant_out,
        "updated_at": _instant_out,
        "transparency": string("opaque or transparent", enum=["opaque", "transparent"]),
    },
    ("id", "calendar_id", "title", "start_time", "end_time", "status", "source"),
)


def _with(*names: str, patch: bool = False) -> dict[str, Schema]:
    fields = _event_fields(patch=patch)
    return {name: fields[name] for name in names}


_CREATE_FIELDS = tuple(_event_fields(patch=False))
_HOLD_FIELDS = tuple(f for f in _CREATE_FIELDS if f not in ("status", "transparency"))
_ids: dict[str, Schema] = {"calendar_id": calendar_id, "event_id": event_id}
_event_ref = input_schema(_ids, ("calendar_id", "event_id"), examples=[{"calendar_id": _CAL, "event_id": _EVT}])

_example_event: dict[str, Any] = {
    "calendar_id": _CAL,
    "title": "Design review",
    "start_time": "2025-03-10T09:00:00Z",
    "end_time": "2025-03-10T10:00:00Z",
    "location": "Room 4.01",
    "reminders": [10],
}

_interval = obj(
    "A time slot",
    {"start": string(_INSTANT, format="date-time"), "end": string(_INSTANT, format="date-time")},
    ("start", "end"),
    closed=False,
)

ACTIONS = (
    Action(
        name="create_event",
        title="Create an event",
        description=(
            "Create an event in a Chronary calendar (POST /v1/calendars/{calendar_id}/events); status hold "
            "makes it a hold. Answers the event."
        ),
        input_schema=input_schema(
            {"calendar_id": calendar_id, **_with(*_CREATE_FIELDS)},
            ("calendar_id", "title", "start_time", "end_time"),
            examples=[_example_event],
        ),
        output_schema=EVENT,
    ),
    Action(
        name="update_event",
        title="Change an event",
        description=(
            "Change the given fields of an event (PATCH /v1/calendars/{calendar_id}/events/{event_id}); at least "
            "one field; null clears description/location; metadata replaces. Read-only (imported) events answer "
            "403. Answers the event."
        ),
        input_schema=input_schema(
            {**_ids, **_event_fields(patch=True)},
            ("calendar_id", "event_id"),
            minProperties=3,
            examples=[
                {
                    "calendar_id": _CAL,
                    "event_id": _EVT,
                    "start_time": "2025-03-10T10:00:00Z",
                    "end_time": "2025-03-10T11:00:00Z",
                }
            ],
        ),
        output_schema=EVENT,
    ),
    Action(
        name="cancel_event",
        title="Cancel an event",
        description=(
            "Set an event's status to cancelled (POST …/events/{event_id}/cancel); it stays listed. Answers the event."
        ),
        input_schema=_event_ref,
        output_schema=EVENT,
    ),
    Action(
        name="create_hold",
        title="Place a hold",
        description=(
            "Reserve time with a temporary event (status hold, always opaque) that lapses at hold_expires_at "
            "(default 15 minutes). A hold over a confirmed event of the same agent is refused (409) unless "
            "allow_overlap. Answers the event."
        ),
        input_schema=input_schema(
            {"calendar_id": calendar_id, **_with(*_HOLD_FIELDS)},
            ("calendar_id", "title", "start_time", "end_time"),
            examples=[
                {**_example_event, "title": "Held for: intro call", "hold_expires_at": "2025-03-09T17:00:00Z", "priority": 5}
            ],
        ),
        output_schema=EVENT,
    ),
    Action(
        name="confirm_hold",
        title="Confirm a hold",
        description="Turn a hold into a confirmed event (POST …/events/{event_id}/confirm); an expired hold answers 409.",
        input_schema=_event_ref,
        output_schema=EVENT,
    ),
    Action(
        name="release_hold",
        title="Release a hold",
        description="Delete a hold (POST …/events/{event_id}/release; REST answers 204, the action answers the id).",
        input_schema=_event_ref,
        output_schema=output_schema(
            "The released hold",
            {"event_id": string("The hold that was deleted"), "released": boolean("Always true")},
            ("event_id", "released"),
        ),
    ),
    Action(
        name="find_meeting_time",
        title="Find a meeting time",
        description=(
            "Slots where all the agents are free, earliest first (POST /v1/availability/find-meeting-time), "
            "honouring their working hours, buffers and minimum notice."
        ),
        input_schema=input_schema(
            {
                "agent_ids": array(
                    "The agents who must all be free (agt_…), 2–50",
                    string("An agent id"),
                    min_items=2,
                    max_items=50,
                    examples=[["agt_01J9Z3A1", "agt_01J9Z3B2"]],
                ),
                "start": string("Search from (" + _INSTANT + ")", format="date-time", examples=["2025-03-10T08:00:00Z"]),
                "end": string("Search until (" + _INSTANT + ")", format="date-time", examples=["2025-03-14T18:00:00Z"]),
                "duration_minutes": integer("Meeting length, 1–1440 minutes", minimum=1, maximum=1440, examples=[30]),
                "limit": integer("Most slots to answer, 1–100", minimum=1, maximum=100, default=10, examples=[5]),
                "slot_step_minutes": integer(
                    "Distance between candidate starts, 1–1440 minutes", minimum=1, maximum=1440, default=15, examples=[30]
                ),
                "explain": boolean(
                    "Also answer why the other candidates were rejected (REST's ?explain=true): the events, rules and "
                    "sources (with when they last synced) that blocked them",
                    default=False,
                    examples=[True],
                ),
            },
            ("agent_ids", "start", "end", "duration_minutes"),
            examples=[
                {
                    "agent_ids": ["agt_01J9Z3A1", "agt_01J9Z3B2"],
                    "start": "2025-03-10T08:00:00Z",
                    "end": "2025-03-14T18:00:00Z",
                    "duration_minutes": 30,
                }
            ],
        ),
        output_schema=output_schema(
            "Free slots, earliest first",
            {
                "slots": array("Slots of the requested length", _interval),
                "explanation": obj(
                    "With explain: rejected candidates (grouped, with their reasons) and the sources behind them",
                    nullable=True,
                ),
            },
            ("slots",),
        ),
    ),
    Action(
        name="list_events",
        title="List events",
        description=(
            "Events of one calendar (calendar_id) or across an agent's calendars (agent_id). With both "
            "start_after and start_before, recurring series are expanded into occurrences."
        ),
        input_schema=input_schema(
            {
                "calendar_id": calendar_id,
                "agent_id": string(
                    "The agent's id (agt_…): events across its calendars", pattern="^agt_", examples=["agt_01J9Z3A1"]
                ),
                "start_after": string(
                    "Only events starting at or after this instant", format="date-time", examples=["2025-03-10T00:00:00Z"]
                ),
                "start_before": string(
                    "Only events starting before this instant", format="date-time", examples=["2025-03-17T00:00:00Z"]
                ),
                "status": string(
                    "Only events with this status", enum=["confirmed", "tentative", "hold", "cancelled"], examples=["hold"]
                ),
                "source": string(
                    "Only events from this source",
                    enum=["internal", "external_ical", "google", "microsoft", "icloud", "caldav"],
                    examples=["internal"],
                ),
                "limit": integer("Page size, 1–200", minimum=1, maximum=200, default=50, examples=[50]),
                "offset": integer("Items to skip", minimum=0, maximum=2**31 - 1, default=0, examples=[0]),
            },
            oneOf=[{"required": ["calendar_id"]}, {"required": ["agent_id"]}],
            examples=[{"calendar_id": _CAL, "start_after": "2025-03-10T00:00:00Z", "start_before": "2025-03-17T00:00:00Z"}],
        ),
        output_schema=output_schema(
            "One page of events",
            {
                "data": array("The events", any_json("An event (see create_event's output)")),
                "total": integer("Events matching, over all pages"),
                "limit": integer("Page size"),
                "offset": integer("Items skipped"),
            },
            ("data", "total", "limit", "offset"),
        ),
    ),
)

WEBHOOK_EVENTS = (
    EventType(name="agent.created", description="An agent was created"),
    EventType(name="agent.updated", description="An agent's fields changed (previous holds the old values)"),
    EventType(name="agent.deleted", description="An agent was deleted, with its calendars, events and keys"),
    EventType(name="calendar.created", description="A calendar was created"),
    EventType(name="calendar.updated", description="A calendar's fields changed"),
    EventType(name="calendar.deleted", description="A calendar was deleted with its events"),
    EventType(name="event.created", description="An event was created (locally, by sync or by an import)"),
    EventType(name="event.updated", description="An event changed"),
    EventType(name="event.deleted", description="An event was deleted"),
    EventType(name="event.cancelled", description="An event's status became cancelled"),
    EventType(name="event.hold_created", description="A hold was placed"),
    EventType(name="event.hold_confirmed", description="A hold became a confirmed event"),
    EventType(name="event.hold_released", description="A hold was released (deleted) before it expired"),
    EventType(name="event.hold_expired", description="A hold passed hold_expires_at and was removed"),
    EventType(name="event.started", description="An event or occurrence reached its start time"),
    EventType(name="event.ended", description="An event or occurrence reached its end time"),
    EventType(
        name="event.reminder",
        description="One of an event's reminders fell due (its minutes before the start are in reminder_minutes)",
    ),
    EventType(name="proposal.created", description="A meeting proposal was opened"),
    EventType(name="proposal.responded", description="A participant accepted, declined or countered"),
    EventType(name="proposal.resolved", description="A proposal settled on a slot (events created) or was declined"),
    EventType(name="proposal.cancelled", description="A proposal was cancelled"),
    EventType(name="ical_subscription.synced", description="A subscribed iCal feed was read"),
    EventType(name="ical_subscription.failed", description="A subscribed iCal feed could not be read"),
    EventType(name="connection.created", description="A provider account was connected"),
    EventType(name="connection.synced", description="A sync round of a connection finished"),
    EventType(name="connection.error", description="A connection failed (credentials revoked, provider errors)"),
    EventType(name="connection.deleted", description="A connection was removed"),
    EventType(name="table.row_created", description="A row was added to a Connect table (by the API, a flow or an import)"),
    EventType(
        name="table.row_updated", description="A Connect table row's values changed (previous.values holds the old ones)"
    ),
    EventType(name="table.row_deleted", description="A row was deleted from a Connect table"),
    EventType(name="record.received", description="A payload came in from outside (inbound delivery, poll item, import)"),
)

PROVIDER = Provider(
    type="chronary",
    name="Chronary",
    category="chronary",
    description=(
        "This server: create and change events, place and settle holds, find meeting times; its changes "
        "(the webhook event types) start flows."
    ),
    auth="none",
    docs_url="/schema",
    capabilities=("actions", "webhooks", "triggers"),
    actions=ACTIONS,
    webhook_events=WEBHOOK_EVENTS,
)
