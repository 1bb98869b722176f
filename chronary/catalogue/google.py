"""Google Calendar: two-way sync of a Google account's calendars, its API behind the proxy, and events.

Tokens come from the OAuth flow at `/v1/connections/start` (PKCE, offline access); Connect sends
them as `Authorization: Bearer`. `create_event` maps to events.insert
(`POST /calendars/{calendarId}/events`): `summary`, `start`/`end` as EventDateTime (`dateTime`
RFC 3339, or `date` for all-day events) with `time_zone` as their `timeZone`.
"""

from __future__ import annotations

from chronary.catalogue import Action, EventType, Provider, input_schema, obj, output_schema, string

_when_out = obj(
    "EventDateTime: dateTime (RFC 3339) for timed events, date (YYYY-MM-DD) for all-day ones",
    {
        "dateTime": string("RFC 3339 timestamp", format="date-time"),
        "date": string("All-day date", format="date"),
        "timeZone": string("IANA time zone"),
    },
    closed=False,
)

CREATE_EVENT = Action(
    name="create_event",
    title="Create an event in a Google calendar",
    description=(
        "Insert an event into one of the connected account's calendars (events.insert). A start and end "
        "that are dates (YYYY-MM-DD) make an all-day event, the end being the day after the last day."
    ),
    input_schema=input_schema(
        {
            "calendar_id": string(
                "The Google calendar's id (calendarList.list), or primary for the account's main calendar",
                min_length=1,
                examples=["primary", "team@group.calendar.google.com"],
            ),
            "summary": string("The event's title", examples=["Design review"]),
            "start": string(
                "Start: RFC 3339 timestamp (offset optional when time_zone is given) or a date for all-day events",
                examples=["2025-03-10T09:00:00+01:00", "2025-03-10"],
            ),
            "end": string(
                "End (exclusive): RFC 3339 timestamp or, for all-day events, the day after the last day",
                examples=["2025-03-10T10:00:00+01:00", "2025-03-11"],
            ),
            "description": string("Description; may contain HTML", examples=["Agenda: Q2 roadmap"]),
            "location": string("Free-form location", examples=["Room 4.01"]),
            "time_zone": string(
                "IANA time zone of start and end (required by Google for recurring events); default: the calendar's",
                examples=["Europe/Berlin"],
            ),
        },
        ("calendar_id", "summary", "start", "end"),
        examples=[
            {
                "calendar_id": "primary",
                "summary": "Design review",
                "start": "2025-03-10T09:00:00",
                "end": "2025-03-10T10:00:00",
                "time_zone": "Europe/Berlin",
            }
        ],
    ),
    output_schema=output_schema(
        "The created Events resource (Google answers more fields than listed)",
        {
            "id": string("The event's id in this calendar"),
            "iCalUID": string("The iCalendar UID"),
            "status": string("confirmed, tentative or cancelled"),
            "htmlLink": string("Link to the event in Google Calendar", format="uri"),
            "summary": string("Title"),
            "start": _when_out,
            "end": _when_out,
            "created": string("Creation time", format="date-time"),
            "updated": string("Last modification time", format="date-time"),
        },
        ("id", "start", "end"),
    ),
)

PROVIDER = Provider(
    type="google",
    name="Google Calendar",
    category="calendar",
    description=(
        "Connect a Google account: its calendars are mirrored both ways, push notifications start a sync "
        "at once, and the Calendar API v3 is reachable through the proxy."
    ),
    auth="oauth2",
    docs_url="https://developers.google.com/calendar/api/v3/reference",
    base_url="https://www.googleapis.com/calendar/v3",
    capabilities=("calendar_sync", "proxy", "actions", "webhooks"),
    actions=(CREATE_EVENT,),
    # push notifications (events.watch channels): the X-Goog-Resource-State header names the kind
    webhook_events=(
        EventType(name="sync", description="A notification channel was created (sent once, carries no change)"),
        EventType(name="exists", description="A watched calendar's events changed: created, updated or deleted"),
        EventType(name="not_exists", description="The watched resource no longer exists"),
    ),
    connect_via="/v1/connections/start",
)
