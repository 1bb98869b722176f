"""Shapes shared by every resource."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar.openapi.spec import OpenAPIFormat, Schema
from msgspec import UNSET, Meta, UnsetType

from chronary import limits

Name = Annotated[str, Meta(min_length=1, max_length=255, description="1–255 characters")]
Timezone = Annotated[str, Meta(description="IANA timezone name, e.g. Europe/Berlin", examples=["Europe/Berlin"])]
Metadata = Annotated[dict[str, Any], Meta(description="Free-form JSON object, at most 16 KB")]


def _formatted(description: str, fmt: str) -> Meta:
    """A string with an OpenAPI `format` (Litestar reads it from msgspec's extra_json_schema)."""
    return Meta(description=description, extra_json_schema={"description": description, "extra": {"format": fmt}})


Timestamp = Annotated[str, _formatted("ISO 8601 with offset or Z; answered in UTC with Z", "date-time")]
Date = Annotated[str, _formatted("A calendar date, YYYY-MM-DD", "date")]
_DATE_OR_TIME = (
    "ISO 8601 timestamp with offset; for all-day events a date YYYY-MM-DD (or that date's midnight, "
    "local to the calendar or UTC: 2027-03-12T00:00:00Z)"
)
DateOrTimestamp = Annotated[
    str,
    Meta(
        description=_DATE_OR_TIME,
        extra_json_schema={
            "description": _DATE_OR_TIME,
            "extra": {"any_of": [Schema(format=OpenAPIFormat.DATE_TIME), Schema(format=OpenAPIFormat.DATE)]},
        },
    ),
]
Reminders = Annotated[
    list[int], Meta(max_length=limits.REMINDERS_MAX, description="Minutes before start (1–40320), at most 5 entries")
]


class Input(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every request body: unknown fields are an error that names the field."""


class EventConflict(msgspec.Struct):
    """One event (or occurrence) in the way of an if_free create."""

    event_id: str
    calendar_id: str
    title: str
    status: str
    start_time: Timestamp
    end_time: Timestamp
    source: Annotated[str, Meta(description="internal, google, microsoft, caldav, icloud or external_ical")]
    source_id: Annotated[
        str | None, Meta(description="The connection (con_…) or iCal subscription (isub_…) it was synced from")
    ]
    reason: Annotated[str, Meta(description="overlaps (the event itself), or buffer (only the agent's buffers around it)")]


class ErrorBody(msgspec.Struct):
    type: str
    message: str
    request_id: str
    param: str | None = None
    conflicts: Annotated[
        list[EventConflict] | UnsetType,
        Meta(
            description=(
                "Only on a 409 conflict of an if_free create: the events in the way, earliest first (at most 100); "
                "absent from every other error"
            )
        ),
    ] = UNSET


class ErrorEnvelope(msgspec.Struct):
    error: ErrorBody


def set_fields(data: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body actually carried (UNSET ones left out; explicit nulls kept)."""
    return {f: getattr(data, f) for f in data.__struct_fields__ if getattr(data, f) is not msgspec.UNSET}
