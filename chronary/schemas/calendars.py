"""Calendar shapes."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from chronary.schemas.common import Input, Metadata, Name, Reminders

AgentStatus = Literal["idle", "working", "waiting", "error"]


class CalendarCreate(Input):
    name: Name
    timezone: str
    agent_status: AgentStatus = "idle"
    default_reminders: Reminders | None = None
    metadata: Metadata | None = None


class CalendarUpdate(Input):
    name: Name | UnsetType = UNSET
    timezone: str | UnsetType = UNSET
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
    ical_url: str
    created_at: str
    updated_at: str


class CalendarList(msgspec.Struct):
    data: list[Calendar]
    total: int
    limit: int
    offset: int
