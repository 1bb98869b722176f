"""Connect API shapes (`/connect/v1`): camelCase on the wire, as Calimatic Connect names them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from chronary.schemas.common import Timestamp

ProviderType = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{1,39}$", description="lower-case letters, digits and _")]
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
CustomAuthStyle = Literal["bearer", "header", "query", "none"]
ShortText = Annotated[str, Meta(min_length=1, max_length=200)]
Url = Annotated[str, Meta(min_length=1, max_length=2000)]


class CamelInput(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, rename="camel"):
    """Base of Connect request bodies: camelCase names; unknown fields are an error naming the field."""


class Camel(msgspec.Struct, kw_only=True, rename="camel"):
    """Base of Connect answers."""


# --- custom providers ----------------------------------------------------------------------------


class CustomAuth(CamelInput):
    style: CustomAuthStyle = "bearer"
    header_name: Annotated[str, Meta(pattern=r"^[A-Za-z0-9-]{1,64}$")] | None = None
    query_param: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] | None = None


class CustomProviderCreate(CamelInput):
    type: ProviderType
    name: ShortText
    base_url: Url
    auth: CustomAuth = msgspec.field(default_factory=CustomAuth)
    description: Annotated[str, Meta(max_length=1000)] | None = None
    docs_url: Url | None = None


# --- connections ---------------------------------------------------------------------------------


class ConnectRequest(CamelInput):
    credentials: Annotated[
        dict[str, Annotated[str, Meta(max_length=4096)]],
        Meta(
            max_length=20,
            description="apiKey, apiSecret? and the provider's fields (baseUrl, …; snake_case names work too)",
        ),
    ]
    name: ShortText | None = None


class DisconnectRequest(CamelInput):
    connection_id: str | None = None


HealthStatus = Literal["healthy", "failing", "disconnected", "unknown"]


class Health(Camel):
    status: HealthStatus
    reason: str | None
    checked_at: Timestamp | None


class ConnectConnection(Camel):
    id: str
    object: Literal["connection"]
    provider_type: str
    name: str | None
    status: Literal["active", "error", "disconnected"]
    status_reason: str | None
    account: str | None  # who the credentials belong to (a Slack team, a bot's @name, a login)
    agent_id: str | None  # calendar connections belong to an agent; API-key ones to the org
    settings: dict[str, str]  # the non-secret credential fields (baseUrl, …)
    credential_fields: list[str]  # the secret fields stored (encrypted; never answered)
    inbound_url: str | None  # where the provider pushes its events (providers with webhooks)
    health: Health
    last_used_at: Timestamp | None
    created_at: Timestamp


class ProviderStatus(Camel):
    provider_type: str
    connected: bool
    connections: list[ConnectConnection]
    connect_via: str  # the endpoint that makes a connection of this provider


class Disconnected(Camel):
    provider_type: str
    disconnected: list[str]
    revoked: bool  # the provider was told (OAuth grants, Telegram webhooks) where it can be


# --- provider webhook subscriptions --------------------------------------------------------------


class ProviderWebhookCreate(CamelInput):
    url: Url
    events: Annotated[list[Annotated[str, Meta(max_length=100)]], Meta(min_length=1, max_length=100)] | None = None
    connection_id: str | None = None
    description: Annotated[str, Meta(max_length=1000)] | None = None


class ProviderWebhook(Camel):
    id: str
    provider_type: str
    connection_id: str | None
    url: str
    events: list[str]
    status: str
    description: str | None
    created_at: Timestamp


class ProviderWebhookWithSecret(ProviderWebhook):
    secret: str


class ProviderWebhookList(Camel):
    data: list[ProviderWebhook]
    total: int


# --- proxy and actions ---------------------------------------------------------------------------


class ProxyRequest(CamelInput):
    method: HttpMethod
    path: Annotated[str, Meta(min_length=1, max_length=4000)]
    body: Any = None
    headers: Annotated[dict[str, Annotated[str, Meta(max_length=8000)]], Meta(max_length=50)] | None = None
    query: Annotated[dict[str, Annotated[str, Meta(max_length=4000)]], Meta(max_length=100)] | None = None
    connection_id: str | None = None


class ProxyResponse(Camel):
    status: int
    headers: dict[str, str]
    body: Any
    connection_id: str
    duration_ms: int


class ActionResult(Camel):
    provider_type: str
    action: str
    connection_id: str | None
    output: dict[str, Any]
    duration_ms: int


class ProxyCall(Camel):
    id: int
    kind: Literal["proxy", "action"]
    key_id: str | None
    provider_type: str
    connection_id: str | None
    method: str | None
    path: str | None
    status: int | None
    error: str | None
    duration_ms: int | None
    created_at: Timestamp


class ProxyCallList(Camel):
    data: list[ProxyCall]
    total: int
    limit: int
    offset: int


class InboundAck(Camel):
    received: bool
    record_id: str | None
    event: str | None
