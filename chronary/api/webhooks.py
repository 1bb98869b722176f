"""/v1/webhooks and /v1/webhook-deliveries: endpoints, secrets, test sends and the delivery log."""

from __future__ import annotations

import asyncio

from litestar import Controller, delete, get, patch, post

from chronary.api._common import ERRORS, Limit, Offset, page_body
from chronary.config import Settings
from chronary.crypto import SecretBox
from chronary.schemas.webhooks import (
    Delivery,
    DeliveryDetail,
    DeliveryList,
    DeliveryStatus,
    EndpointStatus,
    Webhook,
    WebhookCreate,
    WebhookList,
    WebhookUpdate,
    WebhookWithSecret,
)
from chronary.services import webhooks as svc
from chronary.services.context import Ctx
from chronary.services.validation import check_callable_url
from chronary.store.db import Database

_ABOUT_URL = "URLs must be http(s), with no credentials or control characters; this server's own addresses are refused."


async def _check_url(url: str, settings: Settings, ctx: Ctx) -> None:
    """Reachability rules need DNS, so they run before (never inside) the write transaction."""
    ctx.principal.require_org("webhooks")
    await asyncio.to_thread(check_callable_url, url, "url", settings)


class WebhookController(Controller):
    path = "/webhooks"
    tags = ["webhooks"]

    @post(
        "/",
        summary="Create a webhook endpoint (org keys only); the secret is shown only here",
        description=_ABOUT_URL + ' `events` lists types from the webhook spec, or ["*"] for all. '
        "`agent_id` limits it to that agent's changes.",
        responses=ERRORS,
    )
    async def create(
        self, data: WebhookCreate, db: Database, ctx: Ctx, settings: Settings, secrets: SecretBox
    ) -> WebhookWithSecret:
        await _check_url(data.url, settings, ctx)
        return await db.write(lambda tx: svc.create(tx, ctx.principal, data, secrets))

    @get("/", summary="List webhook endpoints (no secrets)", responses=ERRORS)
    async def list_webhooks(
        self, db: Database, ctx: Ctx, status: EndpointStatus | None = None, limit: Limit = 50, offset: Offset = 0
    ) -> WebhookList:
        page = await db.read(lambda tx: svc.list_(tx, ctx.principal, status, limit, offset))
        return page_body(WebhookList, page)

    @get("/{webhook_id:str}", summary="Get a webhook endpoint", responses=ERRORS)
    async def get_webhook(self, webhook_id: str, db: Database, ctx: Ctx) -> Webhook:
        return await db.read(lambda tx: svc.get(tx, ctx.principal, webhook_id))

    @patch(
        "/{webhook_id:str}",
        summary="Change url/events/description, or pause/resume with status",
        description="status paused holds new deliveries (they are kept) until status active; setting "
        "active on a disabled endpoint re-enables it and clears its failure record.",
        responses=ERRORS,
    )
    async def update(self, webhook_id: str, data: WebhookUpdate, db: Database, ctx: Ctx, settings: Settings) -> Webhook:
        if isinstance(data.url, str):
            await _check_url(data.url, settings, ctx)
        return await db.write(lambda tx: svc.update(tx, ctx.principal, webhook_id, data))

    @delete("/{webhook_id:str}", summary="Delete a webhook endpoint and its delivery log", responses=ERRORS)
    async def remove(self, webhook_id: str, db: Database, ctx: Ctx) -> None:
        await db.write(lambda tx: svc.delete(tx, ctx.principal, webhook_id))

    @post(
        "/{webhook_id:str}/rotate-secret",
        status_code=200,
        responses=ERRORS,
        summary="Replace the signing secret; the new one is in this response only",
        description="Takes effect at once for every later attempt, retries included.",
    )
    async def rotate(self, webhook_id: str, db: Database, ctx: Ctx, secrets: SecretBox) -> WebhookWithSecret:
        return await db.write(lambda tx: svc.rotate_secret(tx, ctx.principal, webhook_id, secrets))

    @post(
        "/{webhook_id:str}/test",
        status_code=202,
        responses=ERRORS,
        summary="Queue a webhook.test delivery to this endpoint only",
        description="Returns the queued delivery; follow it at /v1/webhook-deliveries/{id}. Like every "
        "delivery it waits while the endpoint is paused or disabled.",
    )
    async def send_test(self, webhook_id: str, db: Database, ctx: Ctx) -> Delivery:
        return await db.write(lambda tx: svc.send_test(tx, ctx.principal, webhook_id))

    @get("/{webhook_id:str}/deliveries", summary="The endpoint's delivery log, newest first", responses=ERRORS)
    async def deliveries(
        self,
        webhook_id: str,
        db: Database,
        ctx: Ctx,
        status: DeliveryStatus | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> DeliveryList:
        page = await db.read(lambda tx: svc.list_deliveries(tx, ctx.principal, webhook_id, status, limit, offset))
        return page_body(DeliveryList, page)


class DeliveryController(Controller):
    path = "/webhook-deliveries"
    tags = ["webhooks"]

    @get("/{delivery_id:str}", summary="One delivery with its payload and every attempt", responses=ERRORS)
    async def get_delivery(self, delivery_id: str, db: Database, ctx: Ctx) -> DeliveryDetail:
        return await db.read(lambda tx: svc.get_delivery(tx, ctx.principal, delivery_id))

    @post(
        "/{delivery_id:str}/redeliver",
        status_code=202,
        responses=ERRORS,
        summary="Attempt this delivery again now (same payload and id)",
        description="409 while an attempt is in flight. Later retries follow the schedule.",
    )
    async def redeliver(self, delivery_id: str, db: Database, ctx: Ctx) -> DeliveryDetail:
        return await db.write(lambda tx: svc.redeliver(tx, ctx.principal, delivery_id))


ROUTES = [WebhookController, DeliveryController]
