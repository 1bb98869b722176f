"""Connection shapes (provider accounts: iCloud/CalDAV now, Google/Microsoft via OAuth later)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from chronary.schemas.common import Input, Timestamp

ProviderName = Literal["google", "microsoft", "icloud", "caldav"]
ConnectionStatus = Literal["active", "disconnected", "error"]


class ConnectionCreate(Input):
    provider: ProviderName
    agent_id: str
    username: Annotated[str, Meta(min_length=1, max_length=320)] | None = None
    password: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=1024,
                description=("For iCloud an app-specific password; stored encrypted, never returned"),
            ),
        ]
        | None
    ) = None
    server_url: (
        Annotated[str, Meta(max_length=2000, description="CalDAV base URL; iCloud defaults to https://caldav.icloud.com")]
        | None
    ) = None


OAuthProviderName = Literal["google", "microsoft"]


class ConnectionStart(Input):
    provider: OAuthProviderName
    agent_id: str
    return_url: Annotated[
        str, Meta(min_length=1, max_length=2000, description="Where the browser goes after the provider's consent page")
    ]
    scopes: Annotated[list[Annotated[str, Meta(min_length=1, max_length=200)]], Meta(max_length=20)] | None = None
    connection_id: Annotated[str, Meta(description="Re-authorize this existing connection")] | None = None


class ConnectionCallback(Input):
    """The provider's answer, relayed by a server-side integration instead of a browser."""

    code: Annotated[str, Meta(min_length=1, max_length=4096)]
    state: Annotated[str, Meta(min_length=1, max_length=256)]


class ConnectionStartResult(msgspec.Struct):
    redirect_url: str
    state: str
    expires_at: Timestamp


class CalendarChoice(Input):
    remote_id: Annotated[str, Meta(min_length=1, max_length=2000)]
    sync: bool
    calendar_id: str | None | UnsetType = UNSET


class ConnectionUpdate(Input):
    calendars: Annotated[list[CalendarChoice], Meta(max_length=200)] | UnsetType = UNSET
    sync_interval_minutes: Annotated[int, Meta(ge=1, le=1440)] | UnsetType = UNSET


class LastSync(msgspec.Struct):
    started_at: Timestamp | None
    finished_at: Timestamp | None
    pulled: int
    pushed: int
    conflicts: int
    error: str | None


class ConnectionCalendar(msgspec.Struct):
    remote_id: str
    name: str | None
    color: str | None
    read_only: bool
    calendar_id: str | None
    sync: bool


class TokenRefresh(msgspec.Struct):
    last_at: Timestamp | None
    failures_count: int


class WebhookSubscription(msgspec.Struct):
    id: str
    expires_at: Timestamp | None


class Connection(msgspec.Struct):
    id: str
    object: str
    provider: str
    status: ConnectionStatus
    status_reason: str | None
    email: str | None
    username: str | None
    agent_id: str
    sync_mode: str
    sync_interval_minutes: int
    last_synced_at: Timestamp | None
    last_sync: LastSync | None
    calendars: list[ConnectionCalendar]
    webhook_subscription: WebhookSubscription | None
    token_refresh: TokenRefresh
    pending_pushes: int
    created_at: Timestamp


class ConnectionList(msgspec.Struct):
    data: list[Connection]
    total: int
    limit: int
    offset: int


class SyncConflict(msgspec.Struct):
    id: int
    remote_id: str
    uid: str
    event_id: str | None
    winner: Literal["local", "remote"]
    reason: str
    losing_version: str
    created_at: Timestamp


class SyncConflictList(msgspec.Struct):
    data: list[SyncConflict]
    total: int
    limit: int
    offset: int
