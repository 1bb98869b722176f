"""Email through an SMTP server: plain messages, and event invitations as iCalendar (iMIP).

`send_invitation` sends an iTIP message (RFC 5546) by email as RFC 6047 describes: a
`text/calendar; method=REQUEST` (or `CANCEL`) part holding one VEVENT whose ORGANIZER is
`from_address` and whose ATTENDEEs are the recipients, so calendar apps show Accept/Decline. A
CANCEL must carry the UID of the invitation it withdraws and a higher SEQUENCE; with `event_id`
Chronary takes both from the event (`ical_uid`, `sequence`).
"""

from __future__ import annotations

from chronary import limits
from chronary.catalogue import (
    Action,
    CredentialField,
    Provider,
    Schema,
    array,
    boolean,
    input_schema,
    integer,
    obj,
    output_schema,
    string,
)

_address = string("An email address", format="email")


def _recipients(description: str, example: list[str], *, min_items: int | None = None) -> Schema:
    return array(description, _address, min_items=min_items, max_items=100, examples=[example])


_sent = {
    "message_id": string("The Message-ID header of the sent mail"),
    "accepted": array("Recipients the server accepted", _address),
    "refused": array(
        "Recipients the server refused, with its answer",
        obj(
            "A refused recipient",
            {"address": _address, "code": integer("SMTP reply code"), "reason": string("The server's text")},
            ("address",),
        ),
    ),
}

SEND_EMAIL = Action(
    name="send_email",
    title="Send an email",
    description="Send a plain-text email (with an HTML alternative when html is given) from the connection's address.",
    input_schema=input_schema(
        {
            "to": _recipients("Recipients, at least one", ["ada@example.com"], min_items=1),
            "subject": string("Subject line", max_length=998, examples=["Your meeting moved to 10:00"]),
            "text": string("Plain-text body", examples=["Hi Ada, the design review now starts at 10:00."]),
            "html": string(
                "HTML body, sent as an alternative to text",
                examples=["<p>Hi Ada, the design review now starts at <b>10:00</b>.</p>"],
            ),
            "cc": _recipients("Copy recipients", ["team@example.com"]),
            "bcc": _recipients("Blind-copy recipients", ["archive@example.com"]),
        },
        ("to", "subject", "text"),
        examples=[
            {"to": ["ada@example.com"], "subject": "Your meeting moved", "text": "The design review now starts at 10:00."}
        ],
    ),
    output_schema=output_schema("What the server did with the message", _sent, ("message_id", "accepted", "refused")),
)

_inline_event = obj(
    "The event to invite to, when it is not a Chronary event",
    {
        "uid": string(
            "iCalendar UID; required to CANCEL (the UID of the invitation sent before); generated for a new REQUEST",
            min_length=1,
        ),
        "sequence": integer("SEQUENCE: 0 for a new invitation, higher for each update or cancellation", minimum=0),
        "title": string("Title (SUMMARY)", min_length=1, max_length=limits.TITLE_MAX),
        "start_time": string("ISO 8601 timestamp with offset; for all-day events a date YYYY-MM-DD"),
        "end_time": string("ISO 8601 timestamp with offset; for all-day events the day after the last day"),
        "all_day": boolean("Whole days (start_time and end_time are dates)"),
        "timezone": string("IANA time zone the event is shown in (TZID)"),
        "description": string("Description", max_length=limits.DESCRIPTION_MAX),
        "location": string("Location", max_length=limits.LOCATION_MAX),
    },
    ("title", "start_time", "end_time"),
)

SEND_INVITATION = Action(
    name="send_invitation",
    title="Send an event invitation",
    description=(
        "Email an invitation (method REQUEST) or its cancellation (CANCEL) as an iCalendar attachment that "
        "calendar apps can accept: for a Chronary event (calendar_id + event_id) or for the event given."
    ),
    input_schema=input_schema(
        {
            "to": _recipients("Attendees to invite, at least one", ["ada@example.com"], min_items=1),
            "method": string(
                "REQUEST invites (or updates an invitation), CANCEL withdraws it",
                enum=["REQUEST", "CANCEL"],
                default="REQUEST",
                examples=["REQUEST"],
            ),
            "calendar_id": string(
                "The Chronary calendar holding event_id (cal_…)",
                pattern="^cal_",
                examples=["cal_01J9Z3K4Q8X2V6M0N5B7C1D3E4"],
            ),
            "event_id": string(
                "The Chronary event to invite to (evt_…)", pattern="^evt_", examples=["evt_01J9Z3M2W7R5T8Y1U4I6O9P0A2"]
            ),
            "event": {
                **_inline_event,
                "examples": [
                    {
                        "title": "Design review",
                        "start_time": "2025-03-10T09:00:00+01:00",
                        "end_time": "2025-03-10T10:00:00+01:00",
                    }
                ],
            },
            "subject": string(
                "Subject line; default: the event's title (prefixed Cancelled: for CANCEL)",
                examples=["Invitation: Design review"],
            ),
            "text": string("A note shown above the invitation", examples=["Looking forward to it."]),
        },
        ("to",),
        oneOf=[{"required": ["calendar_id", "event_id"]}, {"required": ["event"]}],
        examples=[
            {
                "to": ["ada@example.com"],
                "method": "REQUEST",
                "calendar_id": "cal_01J9Z3K4Q8X2V6M0N5B7C1D3E4",
                "event_id": "evt_01J9Z3M2W7R5T8Y1U4I6O9P0A2",
            }
        ],
    ),
    output_schema=output_schema(
        "The sent invitation",
        {
            **_sent,
            "uid": string("The VEVENT's UID (send it again with CANCEL to withdraw)"),
            "sequence": integer("The VEVENT's SEQUENCE"),
            "method": string("REQUEST or CANCEL", enum=["REQUEST", "CANCEL"]),
        },
        ("message_id", "accepted", "refused", "uid", "sequence", "method"),
    ),
)

PROVIDER = Provider(
    type="smtp",
    name="Email (SMTP)",
    category="email",
    description="Send email and calendar invitations through any SMTP server (a mail provider, a relay, a LAN server).",
    auth="basic",
    docs_url="https://www.rfc-editor.org/rfc/rfc6047",
    credentials=(
        CredentialField(name="host", label="SMTP server", description="The server's host name", format="hostname"),
        CredentialField(
            name="port",
            label="Port",
            description="587 for STARTTLS (submission), 465 for implicit TLS, 25 for a relay without TLS",
            default="587",
            format="port",
        ),
        CredentialField(
            name="security",
            label="Security",
            description=(
                "starttls: upgrade the connection (port 587); ssl: TLS from the start (port 465); "
                "none: plain (LAN relays only)"
            ),
            default="starttls",
            choices=("starttls", "ssl", "none"),
        ),
        CredentialField(
            name="username",
            label="Username",
            description="The login; leave empty for a server that needs none",
            required=False,
        ),
        CredentialField(
            name="password",
            label="Password",
            description="The password or an app password the mail provider issued",
            secret=True,
            required=False,
        ),
        CredentialField(
            name="from_address",
            label="From address",
            description="The sender (and the invitations' ORGANIZER), e.g. calendar@example.com",
            format="email",
        ),
    ),
    capabilities=("actions",),
    actions=(SEND_EMAIL, SEND_INVITATION),
)
