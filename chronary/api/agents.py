"""/v1/agents."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.params import Parameter

from chronary.api._common import ERRORS, Limit, Offset, page_body
from chronary.schemas.agents import Agent, AgentCreate, AgentList, AgentStatus, AgentType, AgentUpdate
from chronary.services import agents as svc
from chronary.services.context import Ctx
from chronary.store.db import Database


class AgentController(Controller):
    path = "/agents"
    tags = ["agents"]

    @post("/", summary="Create an agent (org keys only)", responses=ERRORS)
    async def create(self, data: AgentCreate, db: Database, ctx: Ctx) -> Agent:
        return await db.write(lambda tx: svc.create(tx, ctx.principal, data))

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

    @get("/{agent_id:str}", summary="Get an agent", responses=ERRORS)
    async def get_agent(self, agent_id: str, db: Database, ctx: Ctx) -> Agent:
        return await db.read(lambda tx: svc.get(tx, ctx.principal, agent_id))

    @patch("/{agent_id:str}", summary="Change an agent (at least one field; metadata replaces)", responses=ERRORS)
    async def update(self, agent_id: str, data: AgentUpdate, db: Database, ctx: Ctx) -> Agent:
        return await db.write(lambda tx: svc.update(tx, ctx.principal, agent_id, data))

    @delete("/{agent_id:str}", summary="Delete an agent, its calendars and events; revoke its keys", responses=ERRORS)
    async def remove(self, agent_id: str, db: Database, ctx: Ctx) -> None:
        await db.write(lambda tx: svc.delete(tx, ctx.principal, agent_id))


ROUTES = [AgentController]
