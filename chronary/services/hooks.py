"""Listeners called inside the transaction of every event change.

The events service calls `fire` after each create, update and delete (holds and exceptions
included), in the same transaction, so whatever a listener records (a pending push to a
provider, say) commits or rolls back with the change itself. Listeners register at import
time of their module; `chronary.runtime` imports the modules that register.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chronary.store.db import Tx

# (tx, kind, before_row | None, after_row | None, calendar_row); kind: created|updated|deleted
EventListener = Callable[[Tx, str, dict[str, Any] | None, dict[str, Any] | None, dict[str, Any]], None]

_listeners: list[EventListener] = []


def register(listener: EventListener) -> EventListener:
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def fire(tx: Tx, kind: str, before: dict[str, Any] | None, after: dict[str, Any] | None, calendar: dict[str, Any]) -> None:
    for listener in list(_listeners):
        listener(tx, kind, before, after, calendar)
