"""/v1/calendars/{calendar_id}/events and /v1/agents/{agent_id}/events."""

from __future__ import annotations

from typing import Literal

from litestar import Controller, Response, delete, get, patch, post
from litestar.openapi.datastructures import ResponseSpec
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
from chronary.schemas.common import ErrorEnvelope
from chronary.schemas.events import Event, EventCreate, EventList, EventStatus, EventUpdate
from chronary.services import event_lists as lists
from chronary.services import events as svc
from chronary.services.context import Ctx
from chronary.store.db import Database

Source = Literal["internal", "external_ical", "google", "microsoft", "icloud", "caldav"]
_AFTER = Parameter(
    default=None,
    description="Only events starting at or after this instant (ISO 8601)",
    schema_extra={"format": "date-time"},
)
_BEFORE = Parameter(
    default=None, description="Only events starting before this instant (ISO 8601)", schema_extra={"format": "date-time"}
)
_EXPANDS = (
    "With both start_after and start_before, recurring series are expanded: each occurrence is listed "
    "with its own id (`<series id>_<original start as YYYYMMDDTHHMMSSZ>`) and `recurring_event_id`; "
    "changed or cancelled occurrences appear as stored. Without both, series are listed once."
)
_OCCURRENCE = (
    "`event_id` may be an occurrence id of a series: changing or cancelling one occurrence stores an "
    "exception with that id (a cancelled occurrence stays listed with status cancelled); deleting one adds "
    "an EXDATE to the series, so it is gone from lists, feeds and availability (GET answers 404)."
)
_CONDITIONAL = " " + CONDITIONAL.removesuffix(".") + "; an occurrence has its own ETag."
_CREATE_ERRORS = {
    **ERRORS,
    409: ResponseSpec(
        data_container=ErrorEnvelope,
        description=(
            "conflict: with if_free, the agent is busy then (`error.conflicts` lists the events in the way; "
            "nothing was written); a hold on a confirmed event without allow_overlap"
        ),
        generate_examples=False,
    ),
}


class CalendarEventController(Controller):
    path = "/calendars/{calendar_id:str}/events"
    tags = ["events"]

    @post(
        "/",
        summary="Create an event (or a hold with status hold)",
        description=(
            "With `if_free: true` the event is created only if its agent is free then (checked in the same "
            "write transaction as the insert, so concurrent bookings of one slot have exactly one winner); "
            "otherwise 409 `conflict` whose error object also lists `conflicts`: the events in the way "
            "(`event_id`, `calendar_id`, `title`, `status`, `start_time`, `end_time`, `source`, `source_id`, "
            "`reason` overlaps | buffer)."
        ),
        responses=_CREATE_ERRORS,
        response_headers=ETAG_HEADER,
    )
    async def create(self, calendar_id: str, data: EventCreate, db: Database, ctx: Ctx) -> Response[Event]:
        return tagged(await db.write(lambda tx: svc.create(tx, ctx, calendar_id, data)))

    @get("/", summary="List a calendar's events", description=_EXPANDS, responses=ERRORS)
    async def list_events(
        self,
        calendar_id: str,
        db: Database,
        ctx: Ctx,
        start_after: str | None = _AFTER,
        start_before: str | None = _BEFORE,
        status: EventStatus | None = None,
        source: Source | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> EventList:
        page = await db.read(
            lambda tx: lists.list_for_calendar(
                tx, ctx, calendar_id, start_after, start_before, status, source, limit, offset
            )
        )
        return page_body(EventList, page)

    @get(
        "/{event_id:str}",
        summary="Get an event or one occurrence of a series",
        description=_OCCURRENCE,
        responses={**ERRORS, **NOT_MODIFIED},
        response_headers=ETAG_HEADER,
    )
    async def get_event(
        self, calendar_id: str, event_id: str, db: Database, ctx: Ctx, if_none_match: str | None = IF_NONE_MATCH
    ) -> Response[Event]:
        return conditional(await db.read(lambda tx: svc.get(tx, ctx, calendar_id, event_id)), if_none_match)

    @patch(
        "/{event_id:str}",
        summary="Change an event (≥ 1 field; description: null clears)",
        description=_OCCURRENCE + _CONDITIONAL,
        responses=WRITE_ERRORS,
        response_headers=ETAG_HEADER,
    )
    async def update(
        self,
        calendar_id: str,
        event_id: str,
        data: EventUpdate,
        db: Database,
        ctx: Ctx,
        if_match_header: str | None = IF_MATCH,
    ) -> Response[Event]:
        check = if_match(if_match_header)
        return tagged(await db.write(lambda tx: svc.update(tx, ctx, calendar_id, event_id, data, check)))

    @delete(
        "/{event_id:str}",
        summary="Delete an event (a series with its exceptions)",
        description=_OCCURRENCE + _CONDITIONAL,
        responses=WRITE_ERRORS,
    )
    async def remove(
        self, calendar_id: str, event_id: str, db: Database, ctx: Ctx, if_match_header: str | None = IF_MATCH
    ) -> None:
        check = if_match(if_match_header)
        await db.write(lambda tx: svc.delete(tx, ctx, calendar_id, event_id, check=check))

    @post(
        "/{event_id:str}/cancel",
        status_code=200,
        summary="Cancel an event",
        description=_CONDITIONAL.strip(),
        responses=WRITE_ERRORS,
        response_headers=ETAG_HEADER,
    )
    async def cancel(
        self, calendar_id: str, event_id: str, db: Database, ctx: Ctx, if_match_header: str | None = IF_MATCH
    ) -> Response[Event]:
        check = if_match(if_match_header)
        return tagged(await db.write(lambda tx: svc.cancel(tx, ctx, calendar_id, event_id, check)))

    @post(
        "/{event_id:str}/confirm",
        status_code=200,
        summary="Confirm a hold",
        description=_CONDITIONAL.strip(),
        responses=WRITE_ERRORS,
        response_headers=ETAG_HEADER,
    )
    async def confirm(
        self, calendar_id: str, event_id: str, db: Database, ctx: Ctx, if_match_header: str | None = IF_MATCH
    ) -> Response[Event]:
        check = if_match(if_match_header)
        return tagged(await db.write(lambda tx: svc.confirm(tx, ctx, calendar_id, event_id, check)))

    @post(
        "/{event_id:str}/release",
        status_code=204,
        summary="Release (delete) a hold",
        description=_CONDITIONAL.strip(),
        responses=WRITE_ERRORS,
    )
    async def release(
        self, calendar_id: str, event_id: str, db: Database, ctx: Ctx, if_match_header: str | None = IF_MATCH
    ) -> None:
        check = if_match(if_match_header)
        await db.write(lambda tx: svc.release(tx, ctx, calendar_id, event_id, check))


class AgentEventController(Controller):
    path = "/agents/{agent_id:str}/events"
    tags = ["events"]

    @get("/", summary="List events across an agent's calendars", description=_EXPANDS, responses=ERRORS)
    async def list_events(
        self,
        agent_id: str,
        db: Database,
        ctx: Ctx,
        start_after: str | None = _AFTER,
        start_before: str | None = _BEFORE,
        status: EventStatus | None = None,
        source: Source | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> EventList:
        page = await db.read(
            lambda tx: lists.list_for_agent(tx, ctx, agent_id, start_after, start_before, status, source, limit, offset)
        )
        return page_body(EventList, page)


ROUTES = [CalendarEventController, AgentEventController]
