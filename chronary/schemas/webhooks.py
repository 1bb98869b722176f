"""Webhook endpoint and delivery shapes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from chronary.schemas.common import Input, Timestamp

Url = Annotated[str, Meta(min_length=1, max_length=2048, description="http(s) URL that receives POSTs")]
EventList = Annotated[
    list[Annotated[str, Meta(max_length=100)]],
    Meta(min_length=1, max_length=100, description='Event types to receive, or ["*"] for all'),
]
Description = Annotated[str, Meta(max_length=1000)]
EndpointStatus = Literal["active", "paused", "disabled"]
SettableStatus = Literal["active", "paused"]
DeliveryStatus = Literal["pending", "retrying", "succeeded", "failed"]


class WebhookCreate(Input):
    url: Url
    events: EventList
    description: Description | None = None
    agent_id: str | None = None


class WebhookUpdate(Input):
    url: Url | UnsetType = UNSET
    events: EventList | UnsetType = UNSET
    description: Description | None | UnsetType = UNSET
    status: (
        Annotated[SettableStatus, Meta(description="paused holds deliveries until active again; active re-enables")]
        | UnsetType
    ) = UNSET


class Webhook(msgspec.Struct):
    id: str
    url: str
    events: list[str]
    status: EndpointStatus
    disabled_reason: str | None
    description: str | None
    agent_id: str | None
    created_at: Timestamp
    updated_at: Timestamp


class WebhookWithSecret(Webhook):
    secret: str


class WebhookList(msgspec.Struct):
    data: list[Webhook]
    total: int
    limit: int
    offset: int


class DeliveryAttempt(msgspec.Struct):
    number: int
    outcome: Literal["in_flight", "succeeded", "retry", "failed", "interrupted"]
    started_at: Timestamp
    finished_at: Timestamp | None
    status_code: int | None
    response_body: str | None
    error: str | None
    duration_ms: int | None


class Delivery(msgspec.Struct):
    id: str
    webhook_id: str
    event_id: str
    event_type: str
    resource_id: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: Timestamp | None
    last_attempt_at: Timestamp | None
    last_status_code: int | None
    last_response_body: str | None
    last_error: str | None
    last_duration_ms: int | None
    completed_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp


class DeliveryDetail(Delivery):
    payload: dict[str, Any]
    attempt_log: list[DeliveryAttempt]


class DeliveryList(msgspec.Struct):
    data: list[Delivery]
    total: int
    limit: int
    offset: int
