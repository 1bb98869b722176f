"""The OAuth connection flow: `POST /v1/connections/start` → provider consent → `/callback`.

`start` checks everything it can before the browser leaves (the agent, the connection being
re-authorized, the return_url, that the server has an OAuth client for the provider), then keeps
a random single-use `state` (256 bits; only its SHA-256 is stored) bound to the org, the agent and
the return_url for 10 minutes, with the provider-side half of the flow (the PKCE verifier)
encrypted beside it. `finish` takes that state exactly once, exchanges the code, discovers the
account and its calendars, and only then stores the connection in one transaction: any failure
stores nothing. Re-authorizing (a `connection_id` given to start, or the same account connected
again to the same agent) replaces the tokens of the existing connection and keeps its id, its
calendar mapping and its mirrored events.

return_url: http(s), and on this server's own origin (its public URL, or the address the request
came in on) or one listed in CHRONARY_OAUTH_RETURN_ORIGINS, so the flow is no open redirect.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from chronary import ids, providers
from chronary.errors import Conflict, ValidationError
from chronary.providers.base import Account, AuthFailed, Provider, ProviderError, RemoteCalendar
from chronary.schemas.connections import Connection, ConnectionStart, ConnectionStartResult
from chronary.services.agents import load as load_agent
from chronary.services.connection_shapes import emit, to_struct
from chronary.services.context import Principal
from chronary.services.sync.accounts import store_calendars
from chronary.services.validation import check_url
from chronary.store import connections as con_store
from chronary.store import oauth as oauth_store
from chronary.store.db import Tx
from chronary.timeutil import from_ts, iso_ms, to_ts

if TYPE_CHECKING:
    from chronary.config import Settings
    from chronary.runtime import Runtime

log = logging.getLogger("chronary.oauth")
STATE_TTL = 600  # seconds a started flow stays valid
CALLBACK_PATH = "/v1/connections/callback"
_ERROR_TYPE = re.compile(r"^[a-z_]{1,64}$")


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{(parts.netloc or '').lower()}"


def redirect_uri(settings: Settings, request_base: str) -> str:
    """The callback URL the provider sends the browser to (register it with the provider)."""
    base = settings.public_url or request_base
    return base.rstrip("/") + CALLBACK_PATH


def realtime_possible(settings: Settings, cls: type[Provider]) -> bool:
    """Push needs a public https URL the provider can reach."""
    return cls.supports_push and bool(settings.public_url) and str(settings.public_url).startswith("https://")


def _check_return_url(url: str, settings: Settings, request_base: str) -> str:
    check_url(url, "return_url")
    allowed = {_origin(settings.base_url), _origin(request_base), *settings.oauth_return_origins}
    if _origin(url) not in allowed:
        raise ValidationError(
            f"return_url must be on this server ({_origin(settings.base_url)}) or on an origin listed in "
            "CHRONARY_OAUTH_RETURN_ORIGINS",
            "return_url",
        )
    return url


def _check_start(tx: Tx, principal: Principal, data: ConnectionStart) -> None:
    load_agent(tx, principal, data.agent_id)
    if data.connection_id is None:
        return
    existing = con_store.get(tx.conn, data.connection_id)
    if existing is None or existing["org_id"] != principal.org_id:
        raise ValidationError(f"No connection with id {data.connection_id!r}", "connection_id")
    if existing["provider"] != data.provider:
        raise ValidationError(
            f"Connection {data.connection_id} is a {existing['provider']} connection, not {data.provider}", "connection_id"
        )
    if existing["agent_id"] != data.agent_id:
        raise ValidationError(f"Connection {data.connection_id} belongs to agent {existing['agent_id']}", "agent_id")


async def start(runtime: Runtime, principal: Principal, data: ConnectionStart, request_base: str) -> ConnectionStartResult:
    principal.require_org("connections")
    settings = runtime.settings
    return_url = _check_return_url(data.return_url, settings, request_base)
    await runtime.db.read(lambda tx: _check_start(tx, principal, data))
    try:
        cls = providers.load(data.provider)
    except ProviderError as exc:
        raise ValidationError(f"{data.provider} connections are not available: {exc.reason}", "provider") from None
    missing = cls.configured(settings)
    if missing is not None:
        raise ValidationError(missing, "provider")
    state = secrets.token_urlsafe(32)
    callback = redirect_uri(settings, request_base)
    try:
        auth = await cls.authorization_url(settings, callback, state, list(data.scopes or []))
    except ProviderError as exc:
        raise ValidationError(f"Cannot start the {data.provider} sign-in: {exc.reason}", "provider") from None
    pending = runtime.secrets.encrypt(json.dumps(auth.pending))

    def keep(tx: Tx) -> ConnectionStartResult:
        now = to_ts(tx.now)
        oauth_store.prune_states(tx.conn, now)
        oauth_store.add_state(
            tx.conn,
            {
                "state_hash": _hash(state),
                "org_id": principal.org_id,
                "agent_id": data.agent_id,
                "provider": data.provider,
                "return_url": return_url,
                "redirect_uri": callback,
                "connection_id": data.connection_id,
                "scopes": list(data.scopes) if data.scopes else None,
                "pending": pending,
                "expires_ts": now + STATE_TTL,
                "created_at": iso_ms(tx.now),
            },
        )
        return ConnectionStartResult(redirect_url=auth.url, state=state, expires_at=iso_ms(from_ts(now + STATE_TTL)))

    return await runtime.db.write(keep)


# -- the way back ----------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the callback did: a connection, or an error type (never both), and where to go."""

    state: str
    return_url: str
    connection: Connection | None = None
    error: str | None = None
    message: str = ""

    def redirect(self) -> str:
        """return_url with ?connection_id=…&state=… or ?error=…&state=… added."""
        parts = urlsplit(self.return_url)
        extra = {"connection_id": self.connection.id} if self.connection else {"error": self.error or "server_error"}
        query = "&".join(q for q in (parts.query, urlencode({**extra, "state": self.state})) if q)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


async def finish(runtime: Runtime, params: dict[str, str]) -> Outcome:
    """Handle the provider's redirect back. An unknown, used or expired state raises
    ValidationError (there is nowhere safe to send the browser); everything else is an Outcome."""
    state = params.get("state") or ""
    if not state:
        raise ValidationError("state is required", "state")
    row = await runtime.db.write(lambda tx: oauth_store.take_state(tx.conn, _hash(state)))
    if row is None:
        raise ValidationError("Unknown or already used state: start again with POST /v1/connections/start", "state")
    outcome = Outcome(state=state, return_url=row["return_url"])
    if row["expires_ts"] <= to_ts(runtime.clock.now()):
        return _failed(outcome, "expired_state", "the sign-in took longer than 10 minutes; start again")
    if params.get("error"):
        error = params["error"] if _ERROR_TYPE.match(params["error"]) else "provider_error"
        return _failed(outcome, error, f"the provider answered {error}")
    if not params.get("code"):
        return _failed(outcome, "invalid_request", "the provider sent no code")
    cls = providers.load(row["provider"])
    pending = json.loads(runtime.secrets.decrypt(row["pending"]))
    try:
        tokens = await cls.exchange_code(runtime.settings, row["redirect_uri"], params, pending)
    except AuthFailed as exc:
        return _failed(outcome, "invalid_grant", exc.reason)
    except ProviderError as exc:
        return _failed(outcome, "provider_error", exc.reason)
    provider = cls(Account(row["provider"], None, None, tokens), runtime.settings, runtime.clock)
    try:
        email = await provider.login()
        remote = await provider.list_calendars()
    except ProviderError as exc:
        return _failed(outcome, "provider_error", exc.reason)
    finally:
        await provider.close()
    secret = runtime.secrets.encrypt(json.dumps(provider.refreshed_secrets() or tokens))
    realtime = realtime_possible(runtime.settings, cls)
    try:
        outcome.connection = await runtime.db.write(lambda tx: _store(tx, row, email, secret, remote, realtime))
    except Conflict as exc:
        return _failed(outcome, "connection_gone", exc.message)
    return outcome


def _failed(outcome: Outcome, error: str, message: str) -> Outcome:
    log.info("oauth callback failed: %s (%s)", error, message)
    outcome.error, outcome.message = error, message
    return outcome


def _store(
    tx: Tx, flow: dict[str, Any], email: str, secret: str, remote: list[RemoteCalendar], realtime: bool
) -> Connection:
    """Create the connection, or give an existing one (re-authorized, or this account again) its
    new tokens: same id, same mapping, no duplicates."""
    now = iso_ms(tx.now)
    target = flow["connection_id"]
    if target is not None and con_store.get(tx.conn, target) is None:
        raise Conflict(f"connection {target} was deleted during the sign-in", "connection_id")
    if target is None:
        siblings = con_store.list_(tx.conn, flow["org_id"], flow["provider"], flow["agent_id"], None, 200, 0)[0]
        target = next((c["id"] for c in siblings if email and c["email"] == email), None)
    values: dict[str, Any] = {
        "status": "active",
        "status_reason": None,
        "email": email or None,
        "secret": secret,
        "sync_mode": "realtime" if realtime else "polling",
        "token_last_at": now,
        "token_failures": 0,
        "failures": 0,
        "next_sync_at": to_ts(tx.now),
        "updated_at": now,
    }
    if target is not None:
        con_store.patch(tx.conn, target, values)
        store_calendars(tx, target, remote)
        row = con_store.get(tx.conn, target)
        assert row is not None
        return to_struct(tx, row, expand_calendars=True)
    row = {
        "id": ids.new_id("con"),
        "org_id": flow["org_id"],
        "agent_id": flow["agent_id"],
        "provider": flow["provider"],
        "username": None,
        "server_url": None,
        "sync_interval_minutes": 5,
        "last_synced_at": None,
        "last_sync": None,
        "full_resync": 0,
        "created_at": now,
        **values,
    }
    con_store.create(tx.conn, row)
    store_calendars(tx, row["id"], remote)
    emit(tx, "connection.created", row["id"])
    return to_struct(tx, row, expand_calendars=True)
