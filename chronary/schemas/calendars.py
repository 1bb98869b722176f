"""Calendar shapes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from chronary.schemas.common import Input, Metadata, Name, Reminders, Timestamp, Timezone

AgentStatus = Annotated[
    Literal["idle", "working", "waiting", "error"], Meta(description="What the owning agent is doing now")
]


class CalendarCreate(Input):
    """A new calendar; it gets an unguessable feed token and its `ical_url`."""

    name: Name
    timezone: Timezone
    agent_status: AgentStatus = "idle"
    default_reminders: Reminders | None = None
    metadata: Metadata | None = None


class CalendarUpdate(Input):
    """At least one field; `default_reminders: null` clears them, `metadata` replaces.

    Changing the timezone keeps all-day events on their dates."""

    name: Name | UnsetType = UNSET
    timezone: Timezone | UnsetType = UNSET
    agent_status: AgentStatus | UnsetType = UNSET
    default_reminders: Reminders | None | UnsetType = UNSET
    metadata: Metadata | None | UnsetType = UNSET


class Calendar(msgspec.Struct):
    id: str
    org_id: str
    agent_id: str | None
    name: str
    timezone: str
    agent_status: str
    default_reminders: list[int] | None
    metadata: dict[str, Any]
    ical_url: Annotated[str, Meta(description="Public iCal feed URL (the token in it is its only access control)")]
    webcal_url: Annotated[str, Meta(description="The same feed as a webcal:// link, which calendar apps open to subscribe")]
    created_at: Timestamp
    updated_at: Timestamp


class CalendarList(msgspec.Struct):
    data: list[Calendar]
    total: int
    limit: int
    offset: int
