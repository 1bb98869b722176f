"""Agent shapes."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from chronary.schemas.common import Input, Metadata, Name

AgentType = Literal["ai", "human", "resource"]
AgentStatus = Literal["active", "paused", "decommissioned"]


class AgentCreate(Input):
    name: Name
    type: AgentType = "ai"
    email: str | None = None
    timezone: str = "UTC"
    metadata: Metadata | None = None


class AgentUpdate(Input):
    name: Name | UnsetType = UNSET
    type: AgentType | UnsetType = UNSET
    status: AgentStatus | UnsetType = UNSET
    email: str | None | UnsetType = UNSET
    timezone: str | UnsetType = UNSET
    metadata: Metadata | None | UnsetType = UNSET


class Agent(msgspec.Struct):
    id: str
    name: str
    type: str
    status: str
    email: str | None
    timezone: str
    metadata: dict[str, Any]
    created_at: str
    updated_at: str


class AgentList(msgspec.Struct):
    data: list[Agent]
    total: int
    limit: int
    offset: int
