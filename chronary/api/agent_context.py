"""/v1/agents/{agent_id}/context: the calendar context an agent reads before acting."""

from __future__ import annotations

from litestar import Controller, get
from litestar.params import Parameter

from chronary.api._common import ERRORS
from chronary.schemas.scheduling import Context
from chronary.services import agent_context as svc
from chronary.services.context import Ctx
from chronary.store.db import Database


class AgentContextController(Controller):
    path = "/agents/{agent_id:str}/context"
    tags = ["availability"]

    @get(
        "/",
        summary="Current event, next and last events, and status of an agent",
        responses=ERRORS,
        description=(
            "`current_event`: an event in progress now (a real event before a hold); `upcoming`: the next "
            "events by start; `recent`: the last events that ended, latest first. Cancelled events and "
            "lapsed holds are left out; recurring series are expanded. `agent_status` is the agent_status of "
            "the agent's most recently updated calendar (idle without calendars)."
        ),
    )
    async def context(
        self,
        agent_id: str,
        db: Database,
        ctx: Ctx,
        upcoming: int = Parameter(default=5, description="How many upcoming events, 0–50"),
        recent: int = Parameter(default=5, description="How many recent events, 0–50"),
    ) -> Context:
        return await db.read(lambda tx: svc.context(tx, ctx.principal, agent_id, upcoming, recent))


ROUTES = [AgentContextController]
