"""/v1/calendars and /v1/agents/{agent_id}/calendars."""

from __future__ import annotations

from typing import Literal

from litestar import Controller, Response, delete, get, patch, post

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
from chronary.schemas.calendars import Calendar, CalendarCreate, CalendarList, CalendarUpdate
from chronary.services import calendars as svc
from chronary.services.context import Ctx
from chronary.store.db import Database


class CalendarController(Controller):
    path = "/calendars"
    tags = ["calendars"]

    @post("/", summary="Create an org-level calendar (org keys only)", responses=ERRORS, response_headers=ETAG_HEADER)
    async def create(self, data: CalendarCreate, db: Database, ctx: Ctx) -> Response[Calendar]:
        return tagged(await db.write(lambda tx: svc.create(tx, ctx, None, data)))

    @get("/", summary="List org-level calendars; include=all adds agent-owned ones", responses=ERRORS)
    async def list_calendars(
        self, db: Database, ctx: Ctx, include: Literal["all"] | None = None, limit: Limit = 50, offset: Offset = 0
    ) -> CalendarList:
        page = await db.read(lambda tx: svc.list_(tx, ctx, None, include == "all", limit, offset))
        return page_body(CalendarList, page)

    @get(
        "/{calendar_id:str}",
        summary="Get a calendar",
        responses={**ERRORS, **NOT_MODIFIED},
        response_headers=ETAG_HEADER,
    )
    async def get_calendar(
        self, calendar_id: str, db: Database, ctx: Ctx, if_none_match: str | None = IF_NONE_MATCH
    ) -> Response[Calendar]:
        return conditional(await db.read(lambda tx: svc.get(tx, ctx, calendar_id)), if_none_match)

    @patch(
        "/{calendar_id:str}",
        summary="Change a calendar (at least one field)",
        description=CONDITIONAL,
        responses=WRITE_ERRORS,
        response_headers=ETAG_HEADER,
    )
    async def update(
        self, calendar_id: str, data: CalendarUpdate, db: Database, ctx: Ctx, if_match_header: str | None = IF_MATCH
    ) -> Response[Calendar]:
        check = if_match(if_match_header)
        return tagged(await db.write(lambda tx: svc.update(tx, ctx, calendar_id, data, check)))

    @delete(
        "/{calendar_id:str}",
        summary="Delete a calendar and all its events",
        description=CONDITIONAL,
        responses=WRITE_ERRORS,
    )
    async def remove(self, calendar_id: str, db: Database, ctx: Ctx, if_match_header: str | None = IF_MATCH) -> None:
        check = if_match(if_match_header)
        await db.write(lambda tx: svc.delete(tx, ctx, calendar_id, check))


class AgentCalendarController(Controller):
    path = "/agents/{agent_id:str}/calendars"
    tags = ["calendars"]

    @post("/", summary="Create a calendar owned by an agent", responses=ERRORS, response_headers=ETAG_HEADER)
    async def create(self, agent_id: str, data: CalendarCreate, db: Database, ctx: Ctx) -> Response[Calendar]:
        return tagged(await db.write(lambda tx: svc.create(tx, ctx, agent_id, data)))

    @get("/", summary="List an agent's calendars", responses=ERRORS)
    async def list_calendars(
        self, agent_id: str, db: Database, ctx: Ctx, limit: Limit = 50, offset: Offset = 0
    ) -> CalendarList:
        page = await db.read(lambda tx: svc.list_(tx, ctx, agent_id, False, limit, offset))
        return page_body(CalendarList, page)


ROUTES = [CalendarController, AgentCalendarController]
