"""Provider webhook subscriptions (`/connect/v1/providers/{type}/webhooks`).

A subscription is a webhook endpoint (table webhook_endpoints, `provider_type` set): the same
fan-out, signing, retries, delivery log and redelivery as `/v1/webhooks` (chronary/webhooks).
What it receives (chronary/webhooks/dispatch.from_provider): for providers that push to Connect
their inbound events, named `<provider>.<event>` (`telegram.message`, `slack.app_mention`, …;
short names are accepted); for calendar providers the changes their sync brings in and the
health of their connections (`event.*`, `connection.synced|error|deleted`). Telegram is told the
inbound URL (setWebhook) when a subscription is made, so its updates start flowing at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chronary import ids
from chronary.catalogue import Provider
from chronary.connectors.base import ConnectorError
from chronary.errors import NotFound, UpstreamError, ValidationError
from chronary.schemas.connect import ProviderWebhook, ProviderWebhookCreate, ProviderWebhookList, ProviderWebhookWithSecret
from chronary.services import webhooks as v1_webhooks
from chronary.services.connect import catalogue as org_catalogue
from chronary.services.connect import connections as cons
from chronary.services.context import Ctx, Principal
from chronary.store import connect as connect_store
from chronary.store import webhooks as store
from chronary.store.connections import CALENDAR_PROVIDERS
from chronary.store.db import Tx
from chronary.timeutil import iso_ms
from chronary.webhooks.types import ALL, CALENDAR_PROVIDER_TYPES

if TYPE_CHECKING:
    from chronary.runtime import Runtime


def event_types(provider: Provider) -> tuple[str, ...]:
    if provider.type == "chronary":
        return ()  # checked as /v1/webhooks checks them
    if provider.type in CALENDAR_PROVIDERS:
        return CALENDAR_PROVIDER_TYPES
    return tuple(f"{provider.type}.{e.name}" for e in provider.webhook_events)


def _events(provider: Provider, wanted: list[str] | None) -> list[str]:
    if not wanted:
        return [ALL]
    if provider.type == "chronary":
        return v1_webhooks.check_events(wanted)
    known = event_types(provider)
    out: list[str] = []
    for i, name in enumerate(wanted):
        full = name if name in known or name == ALL else f"{provider.type}.{name}"
        if name == ALL and len(wanted) != 1:
            raise ValidationError('"*" means every event of the provider and must be the only entry', f"events[{i}]")
        if full != ALL and full not in known:
            raise ValidationError(
                f"{provider.name} has no event {name!r}; it has {', '.join(known) or 'none'}", f"events[{i}]"
            )
        if full not in out:
            out.append(full)
    return out


def present(row: dict[str, Any]) -> ProviderWebhook:
    return ProviderWebhook(
        id=row["id"],
        provider_type=row["provider_type"],
        connection_id=row["connection_id"],
        url=row["url"],
        events=row["events"],
        status=row["status"],
        description=row["description"],
        created_at=row["created_at"],
    )


def _provider(tx: Tx, principal: Principal, provider_type: str) -> Provider:
    provider = org_catalogue.get(tx, principal.org_id, provider_type)
    if provider.type == "ical":
        raise ValidationError(
            "iCal subscriptions announce themselves as ical_subscription.* and event.* on /v1/webhooks", "providerType"
        )
    if "webhooks" not in provider.capabilities and provider.type not in CALENDAR_PROVIDERS:
        raise ValidationError(f"{provider.name} sends no events", "providerType")
    return provider


async def create(runtime: Runtime, ctx: Ctx, provider_type: str, data: ProviderWebhookCreate) -> ProviderWebhookWithSecret:
    """Store the subscription; for providers that need it, tell them the inbound URL first."""
    principal = ctx.principal
    principal.require("triggers.write")

    def check(tx: Tx) -> tuple[Provider, list[str], list[dict[str, Any]]]:
        provider = _provider(tx, principal, provider_type)
        events = _events(provider, data.events)
        if data.connection_id is not None:
            rows = [cons.load(tx, principal, provider_type, data.connection_id)]
        else:
            rows = connect_store.connections_of(tx.conn, principal.org_id, provider_type)
        return provider, events, rows

    provider, events, rows = await runtime.db.read(check)
    if cons.receives_inbound(provider):
        for row in rows:
            await _register(runtime, ctx, row)
    secret = v1_webhooks.new_secret()

    def store_row(tx: Tx) -> ProviderWebhookWithSecret:
        now = iso_ms(tx.now)
        row: dict[str, Any] = {
            "id": ids.new_id("whk"),
            "org_id": principal.org_id,
            "url": data.url,
            "events": events,
            "description": data.description,
            "agent_id": None,
            "status": "active",
            "disabled_reason": None,
            "secret_enc": runtime.secrets.encrypt(secret),
            "failing_since": None,
            "since_seq": store.outbox_high_water(tx.conn),
            "created_at": now,
            "updated_at": now,
            "provider_type": provider.type,
            "connection_id": data.connection_id,
        }
        store.create_endpoint(tx.conn, row)
        return ProviderWebhookWithSecret(
            **{f: getattr(present(row), f) for f in ProviderWebhook.__struct_fields__}, secret=secret
        )

    return await runtime.db.write(store_row)


async def _register(runtime: Runtime, ctx: Ctx, row: dict[str, Any]) -> None:
    url = cons.inbound_url(runtime, ctx.base_url, row)
    if url is None or not row["secret"]:
        return
    connector = await cons.connector_for(runtime, row)
    try:
        await connector.register_inbound(url)
    except ConnectorError as exc:
        raise UpstreamError(f"Could not give {row['provider']} the inbound URL: {exc.reason}") from None
    finally:
        await cons.close(connector)


def list_(tx: Tx, principal: Principal, provider_type: str) -> ProviderWebhookList:
    principal.require("triggers.view")
    _provider(tx, principal, provider_type)
    rows, total = store.list_endpoints(tx.conn, principal.org_id, None, 200, 0, provider_type=provider_type)
    return ProviderWebhookList(data=[present(r) for r in rows], total=total)


def delete(tx: Tx, principal: Principal, provider_type: str, webhook_id: str) -> None:
    principal.require("triggers.write")
    row = store.get_endpoint(tx.conn, webhook_id)
    if row is None or row["org_id"] != principal.org_id or row["provider_type"] != provider_type:
        raise NotFound(f"No {provider_type} webhook subscription {webhook_id}", "id")
    store.delete_endpoint(tx.conn, webhook_id)
