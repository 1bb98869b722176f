"""Agent shapes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from chronary.schemas.common import Input, Metadata, Name, Timestamp, Timezone

AgentType = Annotated[Literal["ai", "human", "resource"], Meta(description="What kind of actor this is")]
AgentStatus = Annotated[Literal["active", "paused", "decommissioned"], Meta(description="Lifecycle state")]
Email = Annotated[str, Meta(description="Contact address (validated), at most 254 characters")]


class AgentCreate(Input):
    """A new agent; status starts as active."""

    name: Name
    type: AgentType = "ai"
    email: Email | None = None
    timezone: Timezone = "UTC"
    metadata: Metadata | None = None


class AgentUpdate(Input):
    """At least one field; `email: null` clears it, `metadata` replaces the whole object."""

    name: Name | UnsetType = UNSET
    type: AgentType | UnsetType = UNSET
    status: AgentStatus | UnsetType = UNSET
    email: Email | None | UnsetType = UNSET
    timezone: Timezone | UnsetType = UNSET
    metadata: Metadata | None | UnsetType = UNSET


class Agent(msgspec.Struct):
    id: str
    name: str
    type: str
    status: str
    email: str | None
    timezone: str
    metadata: dict[str, Any]
    created_at: Timestamp
    updated_at: Timestamp


class AgentList(msgspec.Struct):
    data: list[Agent]
    total: int
    limit: int
    offset: int
