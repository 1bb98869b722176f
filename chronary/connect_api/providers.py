"""`/connect/v1/providers`: the catalogue (chronary/catalogue, one module per provider)."""

from __future__ import annotations

import msgspec
from litestar import Controller, get

from chronary import catalogue
from chronary.api._common import ERRORS
from chronary.catalogue import Action, Provider
from chronary.errors import NotFound
from chronary.services.context import Ctx


class ProviderList(msgspec.Struct):
    data: list[Provider]
    total: int


class ActionList(msgspec.Struct):
    data: list[Action]
    total: int


def _provider(provider_type: str) -> Provider:
    found = catalogue.get(provider_type)
    if found is None:
        raise NotFound("Provider not found", "type")
    return found


class ProviderController(Controller):
    path = "/providers"
    tags = ["connect: providers"]

    @get("/", summary="Every provider, with its metadata and capabilities", responses=ERRORS)
    async def list_providers(self, ctx: Ctx) -> ProviderList:
        ctx.principal.require("providers.view")
        found = catalogue.all_providers()
        return ProviderList(data=found, total=len(found))

    @get("/{provider_type:str}", summary="One provider", responses=ERRORS)
    async def get_provider(self, provider_type: str, ctx: Ctx) -> Provider:
        ctx.principal.require("providers.view")
        return _provider(provider_type)

    @get(
        "/{provider_type:str}/actions", summary="A provider's actions with their input and output schemas", responses=ERRORS
    )
    async def list_actions(self, provider_type: str, ctx: Ctx) -> ActionList:
        ctx.principal.require("actions.view")
        actions = list(_provider(provider_type).actions)
        return ActionList(data=actions, total=len(actions))


ROUTES = [ProviderController]
