"""API key shapes."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from chronary.permissions import PERMISSIONS
from chronary.schemas.common import Input, Name, Timestamp

Permission = Literal[PERMISSIONS]  # type: ignore[valid-type]


class KeyCreate(Input):
    """An org key (chr_sk_…), or with agent_id an agent key (chr_ak_…) that reaches only that agent."""

    name: Name = "api key"
    agent_id: Annotated[str, Meta(description="Make an agent-scoped key for this agent")] | None = None
    permissions: (
        Annotated[
            list[Permission],
            Meta(
                max_length=len(PERMISSIONS),
                description="Connect API permission keys; default: all of them for org keys, none for agent keys",
            ),
        ]
        | None
    ) = None


class ApiKey(msgspec.Struct):
    id: str
    name: str
    agent_id: str | None
    prefix: Annotated[str, Meta(description="chr_sk_ (org) or chr_ak_ (agent)")]
    last4: Annotated[str, Meta(description="Last four characters of the secret, to recognise it")]
    created_at: Timestamp
    permissions: Annotated[list[str], Meta(description="The Connect API permission keys this key holds")]


class ApiKeyWithSecret(ApiKey):
    secret: Annotated[str, Meta(description="The key itself: shown in this response only, stored as a hash")]


class ApiKeyList(msgspec.Struct):
    data: list[ApiKey]
    total: int
    limit: int
    offset: int
