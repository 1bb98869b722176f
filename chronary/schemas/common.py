"""Shapes shared by every resource."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

Name = Annotated[str, Meta(min_length=1, max_length=255, description="1–255 characters")]
Timezone = Annotated[str, Meta(description="IANA timezone name, e.g. Europe/Berlin", examples=["Europe/Berlin"])]
Metadata = Annotated[dict[str, Any], Meta(description="Free-form JSON object, at most 16 KB")]
Timestamp = Annotated[str, Meta(description="ISO 8601 with offset or Z; answered in UTC with Z")]
Reminders = Annotated[list[int], Meta(max_length=5, description="Minutes before start (1–40320), at most 5 entries")]


class Input(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every request body: unknown fields are an error that names the field."""


class ErrorBody(msgspec.Struct):
    type: str
    message: str
    request_id: str
    param: str | None = None


class ErrorEnvelope(msgspec.Struct):
    error: ErrorBody


def set_fields(data: msgspec.Struct) -> dict[str, Any]:
    """The fields a PATCH body actually carried (UNSET ones left out; explicit nulls kept)."""
    return {f: getattr(data, f) for f in data.__struct_fields__ if getattr(data, f) is not msgspec.UNSET}
