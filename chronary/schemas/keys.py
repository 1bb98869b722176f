"""API key shapes."""

from __future__ import annotations

import msgspec

from chronary.schemas.common import Input, Name


class KeyCreate(Input):
    name: Name = "api key"
    agent_id: str | None = None


class ApiKey(msgspec.Struct):
    id: str
    name: str
    agent_id: str | None
    prefix: str
    last4: str
    created_at: str


class ApiKeyWithSecret(ApiKey):
    secret: str


class ApiKeyList(msgspec.Struct):
    data: list[ApiKey]
    total: int
    limit: int
    offset: int
