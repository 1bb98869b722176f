"""The webhook event types endpoints may subscribe to (the contract in spec/webhooks.md)."""

from __future__ import annotations

EVENT_TYPES: tuple[str, ...] = (
    "agent.created",
    "agent.updated",
    "agent.deleted",
    "calendar.created",
    "calendar.updated",
    "calendar.deleted",
    "event.created",
    "event.updated",
    "event.deleted",
    "event.cancelled",
    "event.hold_created",
    "event.hold_confirmed",
    "event.hold_released",
    "event.hold_expired",
    "proposal.created",
    "proposal.responded",
    "proposal.resolved",
    "proposal.cancelled",
    "ical_subscription.synced",
    "ical_subscription.failed",
    "connection.created",
    "connection.synced",
    "connection.error",
    "connection.deleted",
)
ALL = "*"
# Sent only by POST /v1/webhooks/{id}/test, to that endpoint, whatever it subscribes to.
TEST_TYPE = "webhook.test"


def matches(subscribed: list[str], event_type: str) -> bool:
    return ALL in subscribed or event_type in subscribed
