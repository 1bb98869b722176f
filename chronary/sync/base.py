"""The one interface every provider implements, so the sync engine never branches on its name.

Like Radicale's pluggable backends: this module defines the base class and `load(name)`;
each provider lives in its own module exporting a class named `Provider` (caldav.py serves
both `icloud` and `caldav`; google.py and microsoft.py will follow). Provider methods are
blocking (the CalDAV library is) and are called from a worker thread, never inside a database
transaction. Resources are whole provider objects: one UID with its master VEVENT and its
RECURRENCE-ID overrides, carried as iCalendar text, so every provider speaks the same shape
(Google/Microsoft adapters convert their JSON to and from that text).

How the OAuth providers will fit (a later issue), so nothing here is CalDAV-only:
- cursor: Google `nextSyncToken` (events.list with syncToken, showDeleted), Graph `@odata.deltaLink`
  (calendarView/delta); Google 410 Gone / Graph syncStateNotFound → raise CursorExpired.
- href/etag: the provider's event id and etag; put_event sends If-Match (Google, Graph) and
  PreconditionFailed maps their 412; cancelled/`@removed` entries become `Changes.deleted`.
- credentials: `Account.secrets` holds the decrypted token set; a provider that refreshes
  tokens returns the new set from `refreshed_secrets()` and the engine stores it encrypted.
- realtime: `supports_realtime` plus `subscribe`/`unsubscribe` (Google watch channels, Graph
  subscriptions) back the connection's `webhook_subscription`; `revoke()` runs on DELETE.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# provider name → module under chronary.sync that exports `Provider`
MODULES = {"icloud": "caldav", "caldav": "caldav", "google": "google", "microsoft": "microsoft"}
PASSWORD_PROVIDERS = ("icloud", "caldav")
OAUTH_PROVIDERS = ("google", "microsoft")


class ProviderError(Exception):
    """A provider call failed; `reason` is safe to show users and to log (never a secret)."""

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class AuthFailed(ProviderError):
    """The provider refused the credentials (wrong password, revoked app password or token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, retryable=False)


class Unreachable(ProviderError):
    """Network trouble: refused, reset, timed out, DNS."""


class CursorExpired(ProviderError):
    """The provider no longer accepts the sync cursor (RFC 6578 valid-sync-token, Google 410)."""


class PreconditionFailed(ProviderError):
    """The remote copy changed since the etag we hold (HTTP 412)."""


@dataclass
class Account:
    """What a provider needs to log in. `secrets` is decrypted only for the call's duration."""

    provider: str
    username: str | None
    server_url: str | None
    secrets: Mapping[str, str]


@dataclass
class RemoteCalendar:
    remote_id: str
    name: str
    color: str | None = None
    read_only: bool = False
    timezone: str | None = None


@dataclass
class RemoteItem:
    href: str
    etag: str | None
    ical: str | None = None  # None when the body was not fetched (unchanged etag)


@dataclass
class Changes:
    """What changed in one calendar since a cursor.

    `items` are new or changed resources with their bodies. A full listing (`full=True`) also
    gives `present`: every href that exists, so the engine deletes linked ones that are gone.
    An incremental one gives `deleted` hrefs instead.
    """

    items: list[RemoteItem] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    present: set[str] = field(default_factory=set)
    cursor: str | None = None
    full: bool = False


class Provider:
    """Base class: every method raises NotImplementedError until a provider fills it in."""

    name = "base"
    supports_realtime = False  # push notifications (Google watch, Graph subscriptions)

    def __init__(self, account: Account, settings: Any) -> None:
        self.account = account
        self.settings = settings

    def login(self) -> str:
        """Check credentials and discover the account; returns the account's email/username."""
        raise NotImplementedError

    def list_calendars(self) -> list[RemoteCalendar]:
        raise NotImplementedError

    def fetch_changes(self, calendar: RemoteCalendar, cursor: str | None, known: Mapping[str, str | None]) -> Changes:
        """Changes since `cursor` (None: a full listing). `known` maps href → etag we already
        hold, so unchanged bodies are not downloaded. Raises CursorExpired if the cursor is gone."""
        raise NotImplementedError

    def put_event(self, calendar: RemoteCalendar, uid: str, ical: str, href: str | None, etag: str | None) -> RemoteItem:
        """Create (href/etag None: only if absent) or replace (only if the etag still matches)."""
        raise NotImplementedError

    def delete_event(self, href: str, etag: str | None) -> None:
        """Delete if the etag still matches; an already-missing resource is not an error."""
        raise NotImplementedError

    def refreshed_secrets(self) -> dict[str, str] | None:
        """New credentials to store (OAuth token refresh); None when nothing changed."""
        return None

    def subscribe(self, calendar: RemoteCalendar, callback_url: str) -> tuple[str, str | None]:
        """Start push notifications for a calendar: (subscription id, expires_at ISO)."""
        raise NotImplementedError

    def unsubscribe(self, subscription_id: str) -> None:
        raise NotImplementedError

    def revoke(self) -> None:
        """Revoke the grant at the provider where it can (OAuth); password providers: nothing."""

    def close(self) -> None:
        """Release sessions; safe to call twice."""


def load(provider_name: str) -> type[Provider]:
    """The Provider class for a provider name (`icloud`, `caldav`, …)."""
    module_name = MODULES.get(provider_name)
    if module_name is None:
        raise ValueError(f"unknown provider {provider_name!r}")
    try:
        module = importlib.import_module(f"chronary.sync.{module_name}")
    except ModuleNotFoundError as exc:
        raise ProviderError(f"provider {provider_name} is not available in this build", retryable=False) from exc
    cls: type[Provider] = module.Provider
    return cls
