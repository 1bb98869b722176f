"""Microsoft 365 / Outlook.com calendars through Microsoft Graph: two-way sync, proxy, events.

Tokens come from the identity platform's auth-code flow at `/v1/connections/start`; Connect sends
them as `Authorization: Bearer`. `create_event` maps to `POST /me/calendars/{id}/events` (or
`/me/events` for the default calendar): `subject`, `start`/`end` as dateTimeTimeZone (a local
`dateTime` without offset plus a `timeZone`), `body` as itemBody, `location.displayName`.
"""

from __future__ import annotations

from chronary.catalogue import Action, EventType, Provider, array, boolean, input_schema, obj, output_schema, string

_when_out = obj(
    "dateTimeTimeZone: a local date-time and the zone it is in",
    {"dateTime": string("Local date-time, no offset"), "timeZone": string("Time zone name")},
    closed=False,
)

CREATE_EVENT = Action(
    name="create_event",
    title="Create an event in a Microsoft calendar",
    description=(
        "Create an event in the connected account's default calendar or in calendar_id. When attendees are "
        "given, Exchange sends them invitations."
    ),
    input_schema=input_schema(
        {
            "calendar_id": string(
                "The Graph calendar id; absent: the default calendar", min_length=1, examples=["AAMkAGI2TGuLAAA="]
            ),
            "subject": string("The event's title", examples=["Design review"]),
            "start": string(
                "Start as a local date-time without offset, read in time_zone",
                examples=["2025-03-10T09:00:00"],
            ),
            "end": string("End as a local date-time without offset, read in time_zone", examples=["2025-03-10T10:00:00"]),
            "time_zone": string(
                "Zone of start and end: a Windows name or an IANA name", default="UTC", examples=["Europe/Berlin"]
            ),
            "is_all_day": boolean(
                "All-day event: start and end must then be midnights in time_zone", default=False, examples=[False]
            ),
            "body": string("The event's description", examples=["Agenda: Q2 roadmap"]),
            "body_content_type": string("How body is read", enum=["text", "html"], default="text", examples=["text"]),
            "location": string("Location display name", examples=["Room 4.01"]),
            "attendees": array(
                "Email addresses of required attendees (invited by Exchange)",
                string("An email address", format="email"),
                examples=[["ada@example.com"]],
            ),
        },
        ("subject", "start", "end"),
        examples=[
            {
                "subject": "Design review",
                "start": "2025-03-10T09:00:00",
                "end": "2025-03-10T10:00:00",
                "time_zone": "Europe/Berlin",
                "location": "Room 4.01",
            }
        ],
    ),
    output_schema=output_schema(
        "The created event resource (Graph answers more fields than listed)",
        {
            "id": string("The event's id"),
            "iCalUId": string("The iCalendar UID"),
            "subject": string("Title"),
            "start": _when_out,
            "end": _when_out,
            "isAllDay": boolean("All-day event"),
            "webLink": string("Link to the event in Outlook on the web", format="uri"),
            "createdDateTime": string("Creation time", format="date-time"),
            "lastModifiedDateTime": string("Last modification time", format="date-time"),
        },
        ("id", "start", "end"),
    ),
)

PROVIDER = Provider(
    type="microsoft",
    name="Microsoft Outlook",
    category="calendar",
    description=(
        "Connect a Microsoft 365 or Outlook.com account: calendars are mirrored both ways, change "
        "notifications start a sync at once, and Microsoft Graph is reachable through the proxy."
    ),
    auth="oauth2",
    docs_url="https://learn.microsoft.com/en-us/graph/api/resources/event",
    base_url="https://graph.microsoft.com/v1.0",
    capabilities=("calendar_sync", "proxy", "actions", "webhooks"),
    actions=(CREATE_EVENT,),
    # change notifications of a Graph subscription on a calendar's events: the changeType
    webhook_events=(
        EventType(name="created", description="An event was created in a watched calendar"),
        EventType(name="updated", description="An event in a watched calendar changed"),
        EventType(name="deleted", description="An event was deleted from a watched calendar"),
    ),
    connect_via="/v1/connections/start",
)
