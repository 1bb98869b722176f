"""`/connect/v1/providers/{type}/webhooks` (subscriptions) and `/connect/v1/inbound/{token}`."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, Response, delete, get, post

from chronary.api._common import ERRORS, RuntimeDep
from chronary.schemas.connect import ProviderWebhookCreate, ProviderWebhookList, ProviderWebhookWithSecret
from chronary.services.connect import inbound
from chronary.services.connect import webhooks as svc
from chronary.services.context import Ctx
from chronary.services.validation import check_callable_url


class ProviderWebhookController(Controller):
    path = "/providers/{provider_type:str}/webhooks"
    tags = ["connect: webhooks"]

    @post(
        "/",
        summary="Subscribe a URL to a provider's events (signed, retried and logged like /v1/webhooks)",
        description=(
            "events: the provider's event names (e.g. message for telegram; event.created or connection.error for "
            "calendar providers), default all. The signing secret is shown only here. Telegram is given the "
            "connection's inbound URL at once."
        ),
        responses=ERRORS,
    )
    async def create(
        self, provider_type: str, data: ProviderWebhookCreate, ctx: Ctx, runtime: RuntimeDep
    ) -> ProviderWebhookWithSecret:
        ctx.principal.require("triggers.write")
        await asyncio.to_thread(check_callable_url, data.url, "url", runtime.settings)
        return await svc.create(runtime, ctx, provider_type, data)

    @get("/", summary="A provider's webhook subscriptions (no secrets)", responses=ERRORS)
    async def list_subscriptions(self, provider_type: str, ctx: Ctx, runtime: RuntimeDep) -> ProviderWebhookList:
        return await runtime.db.read(lambda tx: svc.list_(tx, ctx.principal, provider_type))

    @delete("/{webhook_id:str}", summary="Delete a subscription and its delivery log", responses=ERRORS)
    async def remove(self, provider_type: str, webhook_id: str, ctx: Ctx, runtime: RuntimeDep) -> None:
        await runtime.db.write(lambda tx: svc.delete(tx, ctx.principal, provider_type, webhook_id))


@post(
    "/connect/v1/inbound/{token:str}",
    tags=["connect: webhooks"],
    status_code=200,
    summary="Where providers push events (no API key: the unguessable token and the provider's signature)",
    description=(
        "Each connection of a provider that pushes (Telegram, Slack, Home Assistant, http) has its own inbound URL "
        "(the connection's inboundUrl). Signatures are checked where the provider has them (401 otherwise); each "
        "delivery is kept as a record and relayed to the provider's webhook subscriptions."
    ),
    responses={k: ERRORS[k] for k in (400, 401, 404)},
)
async def receive(token: str, request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[Any]:
    body = await request.body()
    answer = await inbound.receive(runtime, token, dict(request.headers), body)
    return Response(answer, status_code=200)


ROUTES = [ProviderWebhookController]
PUBLIC_ROUTES = [receive]
