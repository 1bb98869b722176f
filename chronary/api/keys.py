"""/v1/keys: create (secret shown once), list (prefix + last 4), revoke."""

from __future__ import annotations

from litestar import Controller, delete, get, post

from chronary.api._common import ERRORS, Limit, Offset, page_body
from chronary.schemas.keys import ApiKeyList, ApiKeyWithSecret, KeyCreate
from chronary.services import keys as svc
from chronary.services.context import Ctx
from chronary.store.db import Database


class KeyController(Controller):
    path = "/keys"
    tags = ["keys"]

    @post("/", summary="Create an API key (org keys only); the secret is in this response only", responses=ERRORS)
    async def create(self, data: KeyCreate, db: Database, ctx: Ctx) -> ApiKeyWithSecret:
        return await db.write(lambda tx: svc.create(tx, ctx.principal, data.name, data.agent_id, data.permissions))

    @get("/", summary="List active keys (no secrets)", responses=ERRORS)
    async def list_keys(
        self, db: Database, ctx: Ctx, agent_id: str | None = None, limit: Limit = 50, offset: Offset = 0
    ) -> ApiKeyList:
        page = await db.read(lambda tx: svc.list_(tx, ctx.principal, agent_id, limit, offset))
        return page_body(ApiKeyList, page)

    @delete("/{key_id:str}", summary="Revoke a key (401 for it from now on)", responses=ERRORS)
    async def revoke(self, key_id: str, db: Database, ctx: Ctx) -> None:
        await db.write(lambda tx: svc.revoke(tx, ctx.principal, key_id))


ROUTES = [KeyController]
