"""/v1/calendars and /v1/agents/{agent_id}/calendars."""

from __future__ import annotations

from typing import Literal

from litestar import Controller, delete, get, patch, post

from chronary.api._common import ERRORS, Limit, Offset, page_body
from chronary.schemas.calendars import Calendar, CalendarCreate, CalendarList, CalendarUpdate
from chronary.services import calendars as svc
from chronary.services.context import Ctx
from chronary.store.db import Database


class CalendarController(Controller):
    path = "/calendars"
    tags = ["calendars"]

    @post("/", summary="Create an org-level calendar (org keys only)", responses=ERRORS)
    async def create(self, data: CalendarCreate, db: Database, ctx: Ctx) -> Calendar:
        return await db.write(lambda tx: svc.create(tx, ctx, None, data))

    @get("/", summary="List org-level calendars; include=all adds agent-owned ones", responses=ERRORS)
    async def list_calendars(
        self, db: Database, ctx: Ctx, include: Literal["all"] | None = None, limit: Limit = 50, offset: Offset = 0
    ) -> CalendarList:
        page = await db.read(lambda tx: svc.list_(tx, ctx, None, include == "all", limit, offset))
        return page_body(CalendarList, page)

    @get("/{calendar_id:str}", summary="Get a calendar", responses=ERRORS)
    async def get_calendar(self, calendar_id: str, db: Database, ctx: Ctx) -> Calendar:
        return await db.read(lambda tx: svc.get(tx, ctx, calendar_id))

    @patch("/{calendar_id:str}", summary="Change a calendar (at least one field)", responses=ERRORS)
    async def update(self, calendar_id: str, data: CalendarUpdate, db: Database, ctx: Ctx) -> Calendar:
        return await db.write(lambda tx: svc.update(tx, ctx, calendar_id, data))

    @delete("/{calendar_id:str}", summary="Delete a calendar and all its events", responses=ERRORS)
    async def remove(self, calendar_id: str, db: Database, ctx: Ctx) -> None:
        await db.write(lambda tx: svc.delete(tx, ctx, calendar_id))


class AgentCalendarController(Controller):
    path = "/agents/{agent_id:str}/calendars"
    tags = ["calendars"]

    @post("/", summary="Create a calendar owned by an agent", responses=ERRORS)
    async def create(self, agent_id: str, data: CalendarCreate, db: Database, ctx: Ctx) -> Calendar:
        return await db.write(lambda tx: svc.create(tx, ctx, agent_id, data))

    @get("/", summary="List an agent's calendars", responses=ERRORS)
    async def list_calendars(
        self, agent_id: str, db: Database, ctx: Ctx, limit: Limit = 50, offset: Offset = 0
    ) -> CalendarList:
        page = await db.read(lambda tx: svc.list_(tx, ctx, agent_id, False, limit, offset))
        return page_body(CalendarList, page)


ROUTES = [CalendarController, AgentCalendarController]
