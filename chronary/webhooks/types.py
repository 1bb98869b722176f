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
    "event.started",
    "event.ended",
    "event.reminder",
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
    "table.row_created",
    "table.row_updated",
    "table.row_deleted",
    "record.received",
)
ALL = "*"
# Sent only by POST /v1/webhooks/{id}/test, to that endpoint, whatever it subscribes to.
TEST_TYPE = "webhook.test"


CHRONARY_TYPES = frozenset(EVENT_TYPES)
# what a calendar provider's Connect webhook subscription can receive: the changes its sync sees
# on the remote side and the connection's health
CALENDAR_PROVIDER_TYPES: tuple[str, ...] = (
    "event.created",
    "event.updated",
    "event.deleted",
    "event.cancelled",
    "connection.synced",
    "connection.error",
    "connection.deleted",
)


def matches(subscribed: list[str], event_type: str) -> bool:
    """`*` is every Chronary type; providers' own event types (slack.message, …) only by name."""
    return event_type in subscribed or (ALL in subscribed and event_type in CHRONARY_TYPES)
