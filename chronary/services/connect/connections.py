"""Connections as the Connect API sees them: one `connections` table serves both APIs.

Calendar accounts (google, microsoft, icloud, caldav) are made by `/v1/connections[/start]` and
shown here as they are; API-key providers (ntfy, slack, discord, telegram, home_assistant, smtp,
http, custom ones) connect here: the credentials are normalized against the catalogue's fields
(`apiKey`/`apiSecret` name the provider's first and second secret field; camelCase and
snake_case names both work), checked against the provider where it has a cheap check, and only
then stored — secret fields encrypted in `secret`, the others in `settings`. Bad credentials
answer 400 and store nothing. Secrets never leave this module except to a connector.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from email.utils import parseaddr
from functools import partial
from typing import TYPE_CHECKING, Any

from chronary import connectors, ids
from chronary.catalogue import Provider
from chronary.connectors.base import BadCredentials, BadInput, Connector, ConnectorError, Unreachable
from chronary.errors import NotFound, UpstreamError, ValidationError
from chronary.outbound import OutboundError, check_target
from chronary.schemas.connect import ConnectConnection, ConnectRequest, Disconnected, Health, HealthStatus, ProviderStatus
from chronary.services import connections as calendar_connections
from chronary.services.connect import catalogue as org_catalogue
from chronary.services.context import Ctx, Principal
from chronary.store import connect as store
from chronary.store import connections as con_store
from chronary.store import webhooks as webhook_store
from chronary.store.connections import CALENDAR_PROVIDERS
from chronary.store.db import Tx
from chronary.timeutil import iso_ms

if TYPE_CHECKING:
    from chronary.config import Settings
    from chronary.runtime import Runtime

INBOUND_PREFIX = "inb_"
PUSHING = ("webhooks", "triggers")  # capabilities that mean the provider pushes to Connect


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def inbound_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def receives_inbound(provider: Provider) -> bool:
    return "triggers" in provider.capabilities and provider.type not in CALENDAR_PROVIDERS and provider.type != "chronary"


# --- credentials ---------------------------------------------------------------------------------


@dataclass
class Credentials:
    secret: dict[str, str]  # stored encrypted
    settings: dict[str, str]  # stored as they are (base URLs, host names, choices)

    def merged(self) -> dict[str, str]:
        return {**self.settings, **self.secret}


def normalize(provider: Provider, raw: dict[str, str]) -> Credentials:
    """The catalogue's credential fields from what the caller sent; errors name `credentials.<key>`."""
    fields = {f.name: f for f in provider.credentials}
    secret_names = [f.name for f in provider.credentials if f.secret]
    aliases = {"api_key": 0, "api_secret": 1}
    given: dict[str, str] = {}
    for key, text in raw.items():
        name = snake(key)
        if name not in fields and name in aliases:
            index = aliases[name]
            if index >= len(secret_names):
                raise ValidationError(f"{provider.type} takes no {key}", f"credentials.{key}")
            name = secret_names[index]
        if name not in fields:
            takes = ", ".join(camel(f) for f in fields) or "no credentials"
            raise ValidationError(f"{provider.type} takes no credential {key!r} (it takes {takes})", f"credentials.{key}")
        if name in given:
            raise ValidationError(f"credentials name {camel(name)} twice", f"credentials.{key}")
        given[name] = text if fields[name].secret else text.strip()
    out = Credentials({}, {})
    for f in provider.credentials:
        value = given.get(f.name) or f.default
        param = f"credentials.{camel(f.name)}"
        if not value:
            if f.required:
                raise ValidationError(f"{provider.type} needs {camel(f.name)}: {f.description}", param)
            continue
        if f.choices and value not in f.choices:
            raise ValidationError(f"{camel(f.name)} must be one of {', '.join(f.choices)}", param)
        if f.format == "port" and not (value.isdigit() and 0 < int(value) < 65536):
            raise ValidationError(f"{camel(f.name)} must be a port number (1-65535)", param)
        if f.format == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", parseaddr(value)[1]):
            raise ValidationError(f"{camel(f.name)} must be an email address (Name <a@b.c> works too)", param)
        if f.format == "url":
            org_catalogue.check_base_url(value)
            value = value.rstrip("/")
        (out.secret if f.secret else out.settings)[f.name] = value
    return out


def check_urls(provider: Provider, creds: Credentials, settings: Settings) -> None:
    """The network half of the URL check (resolves DNS: run it outside transactions)."""
    for f in provider.credentials:
        value = creds.settings.get(f.name)
        if f.format == "url" and value:
            try:
                check_target(value, settings)
            except OutboundError as exc:
                param = f"credentials.{camel(f.name)}"
                raise ValidationError(f"{camel(f.name)} is not allowed: {exc.reason}", param) from None


# --- connectors ----------------------------------------------------------------------------------


def connector_type(tx: Tx, org_id: str, provider_type: str) -> tuple[str, dict[str, str]]:
    """The connector that runs a provider, and the extra credentials it needs (custom providers)."""
    if connectors.has(provider_type):
        return provider_type, {}
    row = org_catalogue.custom_row(tx, org_id, provider_type)
    if row is None:
        raise ValidationError(f"{provider_type} is not reached through an API key", "providerType")
    auth = row["auth"]
    extra = {"base_url": row["base_url"], "auth_style": auth.get("style", "bearer")}
    if auth.get("header_name"):
        extra["header_name"] = auth["header_name"]
    if auth.get("query_param"):
        extra["query_param"] = auth["query_param"]
    return "http", extra


def decrypt(runtime: Runtime, row: dict[str, Any]) -> dict[str, str]:
    secret = json.loads(runtime.secrets.decrypt(row["secret"])) if row["secret"] else {}
    return {**(row["settings"] or {}), **secret}


def open_connector(runtime: Runtime, kind: str, credentials: dict[str, str]) -> Connector:
    return connectors.load(kind)(credentials, runtime.settings, connectors.client(runtime.settings))


async def connector_for(runtime: Runtime, row: dict[str, Any]) -> Connector:
    """The connector of a stored connection, with its decrypted credentials (close it after use)."""
    kind, extra = await runtime.db.read(lambda tx: connector_type(tx, row["org_id"], row["provider"]))
    return open_connector(runtime, kind, {**decrypt(runtime, row), **extra})


async def close(connector: Connector) -> None:
    await connector.http.aclose()


# --- shapes --------------------------------------------------------------------------------------


def inbound_url(runtime: Runtime, ctx_base: str, row: dict[str, Any]) -> str | None:
    if not row.get("inbound_token"):
        return None
    return f"{ctx_base}/connect/v1/inbound/{runtime.secrets.decrypt(row['inbound_token'])}"


def present(runtime: Runtime, ctx: Ctx, row: dict[str, Any]) -> ConnectConnection:
    calendar = row["provider"] in CALENDAR_PROVIDERS
    if calendar:
        last = row["last_sync"] or {}
        error = last.get("error") if last else None
        status: HealthStatus = (
            "failing" if row["status"] == "error" or error else "healthy" if row["last_synced_at"] else "unknown"
        )
        if row["status"] == "disconnected":
            status = "disconnected"
        health = Health(status=status, reason=row["status_reason"] or error, checked_at=row["last_synced_at"])
        settings = {"serverUrl": row["server_url"]} if row["server_url"] and row["provider"] == "caldav" else {}
        fields = ["tokens"] if row["provider"] in ("google", "microsoft") else ["password"]
    else:
        state: HealthStatus = (
            "healthy" if row["status"] == "active" else "failing" if row["status"] == "error" else "disconnected"
        )
        health = Health(status=state, reason=row["status_reason"], checked_at=row["last_checked_at"])
        settings = {camel(k): v for k, v in (row["settings"] or {}).items()}
        fields = sorted(camel(k) for k in json.loads(runtime.secrets.decrypt(row["secret"]))) if row["secret"] else []
    return ConnectConnection(
        id=row["id"],
        object="connection",
        provider_type=row["provider"],
        name=row["name"],
        status=row["status"],
        status_reason=row["status_reason"],
        account=row["email"] or row["username"],
        agent_id=row["agent_id"],
        settings=settings,
        credential_fields=fields,
        inbound_url=inbound_url(runtime, ctx.base_url, row),
        health=health,
        last_used_at=row["last_used_at"],
        created_at=row["created_at"],
    )


def load(tx: Tx, principal: Principal, provider_type: str, connection_id: str) -> dict[str, Any]:
    row = con_store.get(tx.conn, connection_id)
    if row is None or row["org_id"] != principal.org_id or row["provider"] != provider_type:
        raise NotFound(f"No {provider_type} connection {connection_id}", "connectionId")
    if row["agent_id"] is not None and not principal.can_see_agent(row["agent_id"]):
        raise NotFound(f"No {provider_type} connection {connection_id}", "connectionId")
    return row


def pick(tx: Tx, principal: Principal, provider_type: str, connection_id: str | None) -> dict[str, Any]:
    """The connection a call uses: the one named, or the provider's only usable connection."""
    if connection_id is not None:
        return load(tx, principal, provider_type, connection_id)
    rows = [
        r
        for r in store.connections_of(tx.conn, principal.org_id, provider_type)
        if r["secret"] and (r["agent_id"] is None or principal.can_see_agent(r["agent_id"]))
    ]
    if not rows:
        raise ValidationError(
            f"There is no {provider_type} connection: POST /connect/v1/providers/{provider_type}/connect first",
            "connectionId",
        )
    if len(rows) > 1:
        raise ValidationError(
            f"There are {len(rows)} {provider_type} connections; say which with connectionId", "connectionId"
        )
    return rows[0]


# --- status, connect, disconnect -----------------------------------------------------------------


def connect_via(provider: Provider) -> str:
    return provider.connect_via or f"/connect/v1/providers/{provider.type}/connect"


async def status(runtime: Runtime, ctx: Ctx, provider_type: str, check: bool) -> ProviderStatus:
    ctx.principal.require("providers.view")
    principal = ctx.principal

    def read(tx: Tx) -> tuple[Provider, list[dict[str, Any]]]:
        provider = org_catalogue.get(tx, principal.org_id, provider_type)
        rows = store.connections_of(tx.conn, principal.org_id, provider_type)
        return provider, [r for r in rows if r["agent_id"] is None or principal.can_see_agent(r["agent_id"])]

    provider, rows = await runtime.db.read(read)
    if check:
        rows = [await _recheck(runtime, row) if row["agent_id"] is None and row["secret"] else row for row in rows]
    return ProviderStatus(
        provider_type=provider.type,
        connected=any(r["status"] == "active" for r in rows),
        connections=[present(runtime, ctx, r) for r in rows],
        connect_via=connect_via(provider),
    )


async def _recheck(runtime: Runtime, row: dict[str, Any]) -> dict[str, Any]:
    """Run the provider's cheap check now and record the outcome as the connection's health."""
    connector = await connector_for(runtime, row)
    values: dict[str, Any]
    try:
        await connector.check()
        values = {"status": "active", "status_reason": None}
    except BadCredentials as exc:
        values = {"status": "error", "status_reason": f"the provider refused the credentials: {exc.reason}"}
    except ConnectorError as exc:
        values = {"status": "error", "status_reason": exc.reason}
    finally:
        await close(connector)

    def store_health(tx: Tx) -> dict[str, Any]:
        stamp = iso_ms(tx.now)
        con_store.patch(tx.conn, row["id"], {**values, "last_checked_at": stamp, "updated_at": stamp})
        fresh = con_store.get(tx.conn, row["id"])
        assert fresh is not None
        return fresh

    return await runtime.db.write(store_health)


async def connect(runtime: Runtime, ctx: Ctx, provider_type: str, data: ConnectRequest) -> ConnectConnection:
    principal = ctx.principal
    principal.require("providers.write")
    provider = await runtime.db.read(lambda tx: org_catalogue.get(tx, principal.org_id, provider_type))
    if provider.connect_via:
        raise ValidationError(
            f"{provider.name} connects through {provider.connect_via} (see the provider's connectVia)", "providerType"
        )
    if provider.type == "chronary":
        raise ValidationError("chronary is this server: its actions need no connection", "providerType")
    creds = normalize(provider, data.credentials)
    await asyncio.to_thread(check_urls, provider, creds, runtime.settings)
    kind, extra = await runtime.db.read(lambda tx: connector_type(tx, principal.org_id, provider.type))
    connector = open_connector(runtime, kind, {**creds.merged(), **extra})
    try:
        account = await connector.check()
    except BadCredentials as exc:
        field = f"credentials.{camel(exc.field)}" if exc.field else "credentials"
        raise ValidationError(f"{provider.name} refused the credentials: {exc.reason}", field) from None
    except BadInput as exc:
        field = f"credentials.{camel(exc.field)}" if exc.field else "credentials"
        raise ValidationError(exc.reason, field) from None
    except Unreachable as exc:
        raise UpstreamError(f"Could not check the credentials: {exc.reason}", "credentials") from None
    except ConnectorError as exc:
        raise UpstreamError(f"{provider.name} answered an error while checking the credentials: {exc.reason}") from None
    finally:
        await close(connector)
    token = INBOUND_PREFIX + secrets.token_urlsafe(32) if receives_inbound(provider) else None
    secret = runtime.secrets.encrypt(json.dumps(creds.secret))
    sealed_token = runtime.secrets.encrypt(token) if token else None

    def store_row(tx: Tx) -> ConnectConnection:
        now = iso_ms(tx.now)
        row: dict[str, Any] = {
            "id": ids.new_id("con"),
            "org_id": principal.org_id,
            "agent_id": None,
            "provider": provider.type,
            "status": "active",
            "status_reason": None,
            "username": account,
            "email": None,
            "server_url": creds.settings.get("base_url"),
            "secret": secret,
            "sync_mode": "none",
            "created_at": now,
            "updated_at": now,
            "name": data.name or account or provider.name,
            "settings": creds.settings,
            "inbound_hash": inbound_hash(token) if token else None,
            "inbound_token": sealed_token,
            "last_checked_at": now,
        }
        con_store.create(tx.conn, row)
        stored = con_store.get(tx.conn, row["id"])
        assert stored is not None
        return present(runtime, ctx, stored)

    return await runtime.db.write(store_row)


async def disconnect(runtime: Runtime, ctx: Ctx, provider_type: str, connection_id: str | None) -> Disconnected:
    """Forget the credentials of one connection (or all of the provider's) and its provider
    webhook subscriptions; OAuth grants are revoked at the provider (the /v1 disconnect)."""
    principal = ctx.principal
    principal.require("providers.write")

    def read(tx: Tx) -> list[dict[str, Any]]:
        org_catalogue.get(tx, principal.org_id, provider_type)
        if connection_id is not None:
            return [load(tx, principal, provider_type, connection_id)]
        rows = store.connections_of(tx.conn, principal.org_id, provider_type)
        return [r for r in rows if r["agent_id"] is None or principal.can_see_agent(r["agent_id"])]

    rows = await runtime.db.read(read)
    if not rows:
        raise ValidationError(f"There is no {provider_type} connection to disconnect", "connectionId")
    revoked = False
    for row in rows:
        if row["provider"] in CALENDAR_PROVIDERS:
            await calendar_connections.disconnect(runtime, principal, row["id"])
            revoked = revoked or row["provider"] in ("google", "microsoft")
            continue
        await runtime.db.write(partial(_forget, connection_id=row["id"]))
    return Disconnected(provider_type=provider_type, disconnected=[r["id"] for r in rows], revoked=revoked)


def _forget(tx: Tx, connection_id: str) -> None:
    webhook_store.delete_for_connection(tx.conn, connection_id)
    con_store.delete(tx.conn, connection_id)


def mark_refused(tx: Tx, connection_id: str, reason: str) -> None:
    """Stored credentials the provider no longer takes: the connection shows failing."""
    stamp = iso_ms(tx.now)
    con_store.patch(
        tx.conn, connection_id, {"status": "error", "status_reason": reason, "last_checked_at": stamp, "updated_at": stamp}
    )


def touch(tx: Tx, connection_id: str) -> None:
    con_store.patch(tx.conn, connection_id, {"last_used_at": iso_ms(tx.now)})
