"""/v1/agents."""

from __future__ import annotations

from litestar import Controller, Response, delete, get, patch, post
from litestar.params import Parameter

from chronary.api._common import ERRORS, Limit, Offset, page_body
from chronary.api._etag import (
    CONDITIONAL,
    ETAG_HEADER,
    IF_MATCH,
    IF_NONE_MATCH,
    NOT_MODIFIED,
    WRITE_ERRORS,
    conditional,
    if_match,
    tagged,
)
from chronary.schemas.agents import Agent, AgentCreate, AgentList, AgentStatus, AgentType, AgentUpdate
from chronary.services import agents as svc
from chronary.services.context import Ctx
from chronary.store.db import Database


class AgentController(Controller):
    path = "/agents"
    tags = ["agents"]

    @post("/", summary="Create an agent (org keys only)", responses=ERRORS, response_headers=ETAG_HEADER)
    async def create(self, data: AgentCreate, db: Database, ctx: Ctx) -> Response[Agent]:
        return tagged(await db.write(lambda tx: svc.create(tx, ctx.principal, data)))

    @get("/", summary="List agents (an agent key sees only itself)", responses=ERRORS)
    async def list_agents(
        self,
        db: Database,
        ctx: Ctx,
        agent_type: AgentType | None = Parameter(query="type", default=None),
        status: AgentStatus | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> AgentList:
        page = await db.read(lambda tx: svc.list_(tx, ctx.principal, agent_type, status, limit, offset))
        return page_body(AgentList, page)

    @get("/{agent_id:str}", summary="Get an agent", responses={**ERRORS, **NOT_MODIFIED}, response_headers=ETAG_HEADER)
    async def get_agent(
        self, agent_id: str, db: Database, ctx: Ctx, if_none_match: str | None = IF_NONE_MATCH
    ) -> Response[Agent]:
        return conditional(await db.read(lambda tx: svc.get(tx, ctx.principal, agent_id)), if_none_match)

    @patch(
        "/{agent_id:str}",
        summary="Change an agent (at least one field; metadata replaces)",
        description=CONDITIONAL,
        responses=WRITE_ERRORS,
        response_headers=ETAG_HEADER,
    )
    async def update(
        self, agent_id: str, data: AgentUpdate, db: Database, ctx: Ctx, if_match_header: str | None = IF_MATCH
    ) -> Response[Agent]:
        check = if_match(if_match_header)
        return tagged(await db.write(lambda tx: svc.update(tx, ctx.principal, agent_id, data, check)))

    @delete(
        "/{agent_id:str}",
        summary="Delete an agent, its calendars and events; revoke its keys",
        description=CONDITIONAL,
        responses=WRITE_ERRORS,
    )
    async def remove(self, agent_id: str, db: Database, ctx: Ctx, if_match_header: str | None = IF_MATCH) -> None:
        check = if_match(if_match_header)
        await db.write(lambda tx: svc.delete(tx, ctx.principal, agent_id, check))


ROUTES = [AgentController]
