"""The one interface every calendar provider implements, so the sync engine never branches on a name.

Like Radicale's pluggable backends: this module defines the base class; each provider lives in
its own module exporting a class named `Provider` (`caldav` serves both `icloud` and `caldav`,
`ics` reads subscribed feeds; `google` and `microsoft` fill in the OAuth and push hooks). This
package imports nothing from `chronary.services`: the engine and its policy (status, backoff,
scheduling) live there and call in here, one way only.

Every method is a coroutine; a provider built on a blocking library runs it in a thread. Calls
never happen inside a database transaction. The data is neutral: a `RemoteEvent` is one series
master (or single event) with its overrides, each piece with its own remote id and etag where
the provider has them, plus the raw provider data (iCalendar text, JSON) that the next write
starts from so nothing Chronary does not model is lost.

Credentials: `Account.secrets` holds the decrypted token set for the call's duration. A provider
that refreshes tokens keeps the new set in `refreshed_secrets()`; the engine stores it after
every round, successful or failed, so a rotated refresh token is never lost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chronary.clock import Clock, SystemClock
from chronary.config import env_name
from chronary.ical.model import EventData, Outgoing

if TYPE_CHECKING:
    import httpx

__all__ = [
    "Account",
    "AuthFailed",
    "AuthStart",
    "Changes",
    "CursorExpired",
    "EventData",
    "Notification",
    "Outgoing",
    "PreconditionFailed",
    "Provider",
    "ProviderError",
    "PushChannel",
    "RemoteCalendar",
    "RemoteEvent",
    "Unreachable",
    "Window",
]


class ProviderError(Exception):
    """A provider call failed; `reason` is safe to show users and to log (never a secret).

    `retry_after` (seconds) is the provider's own word on when to try again (HTTP Retry-After,
    a rate-limit reply); the engine waits at least that long.
    """

    def __init__(self, reason: str, *, retryable: bool = True, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


class AuthFailed(ProviderError):
    """The provider refused the credentials (wrong password, revoked app password or grant).

    `reauthorize` is True when only the user can repair it (an OAuth grant that is gone).
    """

    def __init__(self, reason: str, *, reauthorize: bool = False) -> None:
        super().__init__(reason, retryable=False)
        self.reauthorize = reauthorize


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
    """One calendar of the account. `local_timezone` is the zone of the Chronary calendar it is
    mirrored into: floating times and all-day dates are read there (set by the engine)."""

    remote_id: str
    name: str
    color: str | None = None
    read_only: bool = False
    timezone: str | None = None
    local_timezone: str = "UTC"


@dataclass(frozen=True)
class Window:
    """A time range in UTC seconds; providers that sync a window (Graph calendarView) use it."""

    start_ts: int
    end_ts: int


@dataclass
class RemoteEvent:
    """One remote series (or single event) with its overrides, as the provider holds it."""

    remote_id: str  # CalDAV: the resource href; Google/Graph: the master's event id
    etag: str | None
    uid: str
    master: EventData
    overrides: list[EventData] = field(default_factory=list)
    raw: str | None = None  # the provider's own data, kept as the base of the next write


@dataclass
class Changes:
    """One page of what changed in one calendar since a cursor.

    `events` are new or changed remote events. A full listing (`full=True`) also gives `present`:
    every remote id that exists, so the engine deletes linked ones that are gone; an incremental
    one gives `deleted` remote ids instead. `next_page` is set while more pages follow (the
    engine asks again with it); the last page carries the new `cursor`. `unchanged` says the
    provider knows nothing changed (a 304, an equal ctag) without listing.
    """

    events: list[RemoteEvent] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    present: set[str] = field(default_factory=set)
    cursor: str | None = None
    full: bool = False
    next_page: str | None = None
    unchanged: bool = False
    skipped: int = 0  # resources the provider could not read (lenient decoding)


@dataclass
class AuthStart:
    """Where to send the user's browser, and what the callback needs back (kept server-side)."""

    url: str
    pending: dict[str, Any]  # e.g. the PKCE verifier or msal's flow: stored by state, never sent


@dataclass
class PushChannel:
    """A push subscription for one remote calendar (Google watch channel, Graph subscription)."""

    id: str
    remote_calendar_id: str
    token: str  # our secret, echoed by the provider on every notification
    expires_at: int  # UTC seconds
    resource_id: str | None = None  # the provider's handle, needed to stop it


@dataclass
class Notification:
    """A verified push notification: which channel it is for, and whether to sync now."""

    channel_id: str
    sync: bool = True
    renew: bool = False  # the provider asks for a new subscription (Graph lifecycle events)


def unset(settings: Any, *names: str) -> list[str]:
    """The environment variables of the settings among `names` that have no value (what an OAuth
    provider's `configured` tells the operator to set)."""
    return [env_name(n) for n in names if not getattr(settings, n, None)]


class Provider:
    """Base class: every hook raises NotImplementedError until a provider fills it in."""

    name = "base"
    supports_oauth = False
    supports_push = False
    sync_window_days: int | None = None  # providers that sync a window, not everything
    merge_chunk: int | None = None  # pulled events per merge transaction (None: the engine's default)

    def __init__(self, account: Account, settings: Any, clock: Clock | None = None) -> None:
        self.account = account
        self.settings = settings
        self.clock: Clock = clock or SystemClock()  # DTSTAMPs, token expiry: the injected clock
        # token telemetry, counted by providers that refresh OAuth tokens (the engine records it
        # as the connection's token_refresh {last_at, failures_count})
        self.refreshes = 0
        self.refresh_failures = 0

    # -- OAuth (classmethods: there is no account yet) ----------------------------------------
    @classmethod
    def configured(cls, settings: Any) -> str | None:
        """None when the server can start this provider's sign-in; else what to configure."""
        return "this provider does not sign in with OAuth"

    @classmethod
    async def authorization_url(cls, settings: Any, redirect_uri: str, state: str, scopes: list[str]) -> AuthStart:
        raise NotImplementedError

    @classmethod
    async def exchange_code(
        cls, settings: Any, redirect_uri: str, params: Mapping[str, str], pending: dict[str, Any]
    ) -> dict[str, str]:
        """The token set for an authorization code (stored encrypted as the account's secrets)."""
        raise NotImplementedError

    async def refresh(self) -> None:
        """Refresh the access token now (ahead of expiry); raises AuthFailed(reauthorize=True)
        when the grant is gone. The new set is in `refreshed_secrets()`."""

    def refreshed_secrets(self) -> dict[str, str] | None:
        """New credentials to store (OAuth token refresh); None when nothing changed."""
        return None

    # -- calendars and events ------------------------------------------------------------------
    async def login(self) -> str:
        """Check credentials and discover the account; returns the account's email/username."""
        raise NotImplementedError

    async def list_calendars(self) -> list[RemoteCalendar]:
        raise NotImplementedError

    async def fetch_changes(
        self,
        calendar: RemoteCalendar,
        cursor: str | None,
        known: Mapping[str, str | None],
        window: Window | None = None,
        page: str | None = None,
    ) -> Changes:
        """Changes since `cursor` (None: a full listing), one page at a time. `known` maps remote
        id → etag we already hold, so unchanged bodies are not downloaded. Raises CursorExpired
        when the cursor is gone."""
        raise NotImplementedError

    async def put_event(self, calendar: RemoteCalendar, event: Outgoing) -> RemoteEvent:
        """Create (`event.remote_id` None: only if absent) or replace (only if the etag still
        matches, else PreconditionFailed). Answers the stored remote event (new etag, raw)."""
        raise NotImplementedError

    async def delete_event(self, calendar: RemoteCalendar, remote_id: str, etag: str | None) -> None:
        """Delete if the etag still matches; an already-missing event is not an error."""
        raise NotImplementedError

    # -- push ----------------------------------------------------------------------------------
    async def subscribe(self, calendar: RemoteCalendar, callback_url: str, token: str) -> PushChannel:
        raise NotImplementedError

    async def renew(self, channel: PushChannel, callback_url: str) -> PushChannel:
        raise NotImplementedError

    async def unsubscribe(self, channel: PushChannel) -> None:
        raise NotImplementedError

    @classmethod
    def handshake(cls, query: Mapping[str, str]) -> str | None:
        """The text/plain answer to a subscription-validation request (Graph posts
        `?validationToken=…` and wants it echoed within 10 s); None when this is no handshake."""
        return None

    @classmethod
    def verify_notification(
        cls, headers: Mapping[str, str], body: bytes, lookup: Callable[[str], PushChannel | None]
    ) -> list[Notification]:
        """The notifications in one push request that really are for a channel of ours: `lookup`
        finds a channel by id, and its token must match. Empty when none is (answer 404)."""
        return []

    # -- lifecycle -----------------------------------------------------------------------------
    def api_base(self) -> str | None:
        """Where `api_request` paths are relative to (None: the provider has no REST API to proxy)."""
        return None

    async def api_request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One raw call to the provider's REST API with the connection's auth, tokens refreshed as
        needed (Connect's proxy and actions). `path` is already checked to stay below `api_base`."""
        raise NotImplementedError

    async def revoke(self) -> None:
        """Revoke the grant at the provider where it can (OAuth); password providers: nothing."""

    async def close(self) -> None:
        """Release sessions; safe to call twice."""
