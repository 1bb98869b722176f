"""`/connect/v1/providers`: the catalogue (chronary/catalogue, one module per provider) plus the
org's custom providers; status, connect and disconnect of a provider's connections."""

from __future__ import annotations

import asyncio
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.params import Parameter

from chronary.api._common import ERRORS, RuntimeDep
from chronary.catalogue import Action, Provider
from chronary.errors import ValidationError
from chronary.outbound import OutboundError, check_target
from chronary.schemas.connect import (
    ConnectConnection,
    ConnectRequest,
    CustomProviderCreate,
    Disconnected,
    DisconnectRequest,
    ProviderStatus,
)
from chronary.services.connect import catalogue as org_catalogue
from chronary.services.connect import connections as svc
from chronary.services.context import Ctx


class ProviderList(msgspec.Struct):
    data: list[Provider]
    total: int


class ActionList(msgspec.Struct):
    data: list[Action]
    total: int


class ProviderController(Controller):
    path = "/providers"
    tags = ["connect: providers"]

    @get("/", summary="Every provider, with its metadata and capabilities (custom ones last)", responses=ERRORS)
    async def list_providers(self, ctx: Ctx, runtime: RuntimeDep) -> ProviderList:
        ctx.principal.require("providers.view")
        found = await runtime.db.read(lambda tx: org_catalogue.all_for(tx, ctx.principal.org_id))
        return ProviderList(data=found, total=len(found))

    @post(
        "/",
        summary="Make any HTTP API a provider (custom provider): proxy and the http request action",
        description="`type` must not be a built-in provider's; `auth.style` says how the connection's apiKey is sent.",
        responses=ERRORS,
    )
    async def create_provider(self, data: CustomProviderCreate, ctx: Ctx, runtime: RuntimeDep) -> Provider:
        ctx.principal.require("providers.write")
        org_catalogue.check_base_url(data.base_url)
        try:
            await asyncio.to_thread(check_target, data.base_url, runtime.settings)
        except OutboundError as exc:
            raise ValidationError(f"baseUrl is not allowed: {exc.reason}", "baseUrl") from None
        return await runtime.db.write(lambda tx: org_catalogue.create(tx, ctx.principal, data))

    @get("/{provider_type:str}", summary="One provider", responses=ERRORS)
    async def get_provider(self, provider_type: str, ctx: Ctx, runtime: RuntimeDep) -> Provider:
        ctx.principal.require("providers.view")
        return await runtime.db.read(lambda tx: org_catalogue.get(tx, ctx.principal.org_id, provider_type))

    @delete("/{provider_type:str}", summary="Delete a custom provider (disconnect its connections first)", responses=ERRORS)
    async def delete_provider(self, provider_type: str, ctx: Ctx, runtime: RuntimeDep) -> None:
        await runtime.db.write(lambda tx: org_catalogue.delete(tx, ctx.principal, provider_type))

    @get(
        "/{provider_type:str}/actions", summary="A provider's actions with their input and output schemas", responses=ERRORS
    )
    async def list_actions(self, provider_type: str, ctx: Ctx, runtime: RuntimeDep) -> ActionList:
        ctx.principal.require("actions.view")
        provider = await runtime.db.read(lambda tx: org_catalogue.get(tx, ctx.principal.org_id, provider_type))
        return ActionList(data=list(provider.actions), total=len(provider.actions))

    @get(
        "/{provider_type:str}/status",
        summary="The org's connections of this provider, with their health",
        description="`check=true` runs each API-key connection's cheap credential check now and records the outcome.",
        responses=ERRORS,
    )
    async def status(
        self,
        provider_type: str,
        ctx: Ctx,
        runtime: RuntimeDep,
        check: Annotated[bool, Parameter(description="Check the credentials against the provider now")] = False,
    ) -> ProviderStatus:
        return await svc.status(runtime, ctx, provider_type, check)

    @post(
        "/{provider_type:str}/connect",
        status_code=201,
        summary="Connect an API-key provider: credentials are checked, then stored encrypted",
        description=(
            "`credentials`: apiKey (the provider's key or token), apiSecret? (its second secret, e.g. Slack's signing "
            "secret) and the provider's other fields (baseUrl, …). Bad credentials answer 400 and nothing is stored. "
            "OAuth providers connect through POST /v1/connections/start, password ones through POST /v1/connections."
        ),
        responses=ERRORS,
    )
    async def connect(self, provider_type: str, data: ConnectRequest, ctx: Ctx, runtime: RuntimeDep) -> ConnectConnection:
        return await svc.connect(runtime, ctx, provider_type, data)

    @post(
        "/{provider_type:str}/disconnect",
        status_code=200,
        summary="Forget a connection's credentials (all of the provider's without connectionId)",
        description="OAuth grants are revoked at the provider; the connection's webhook subscriptions go with it.",
        responses=ERRORS,
    )
    async def disconnect(
        self, provider_type: str, ctx: Ctx, runtime: RuntimeDep, data: DisconnectRequest | None = None
    ) -> Disconnected:
        return await svc.disconnect(runtime, ctx, provider_type, data.connection_id if data else None)


ROUTES = [ProviderController]
