"""iCal subscription shapes (/v1/agents/{agent_id}/ical-subscriptions, /v1/ical-subscriptions)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from chronary.schemas.common import Input, Timestamp

Url = Annotated[str, Meta(min_length=1, max_length=2048, description="http, https or webcal URL of an .ics feed")]
Label = Annotated[str, Meta(max_length=255)]
Interval = Annotated[int, Meta(ge=15, le=1440, description="Minutes between refreshes, 15–1440")]
Username = Annotated[str, Meta(max_length=255, description="HTTP basic-auth user; stored encrypted, never returned")]
Password = Annotated[str, Meta(max_length=1024, description="HTTP basic-auth password; stored encrypted, never returned")]


class IcalSubscriptionCreate(Input):
    calendar_id: str
    url: Url
    label: Label | None = None
    refresh_interval_minutes: Interval = 60
    username: Username | None = None
    password: Password | None = None


class IcalSubscriptionUpdate(Input):
    url: Url | UnsetType = UNSET
    label: Label | None | UnsetType = UNSET
    refresh_interval_minutes: Interval | UnsetType = UNSET
    status: Literal["active", "paused"] | UnsetType = UNSET
    username: Username | None | UnsetType = UNSET
    password: Password | None | UnsetType = UNSET


class IcalSubscription(msgspec.Struct):
    id: str
    agent_id: str
    calendar_id: str
    url: str
    label: str | None
    refresh_interval_minutes: int
    status: str
    last_synced_at: Timestamp | None
    last_error: str | None
    event_count: int
    has_credentials: bool
    created_at: Timestamp
    updated_at: Timestamp


class IcalSubscriptionList(msgspec.Struct):
    data: list[IcalSubscription]
    total: int
    limit: int
    offset: int
