"""/v1/agents/{id}/availability-rules, /v1/agents/{id}/availability, /v1/availability/find-meeting-time."""

from __future__ import annotations

from litestar import Controller, delete, get, post, put
from litestar.params import Parameter

from chronary.api._common import ERRORS
from chronary.schemas.scheduling import Availability, FindMeetingTime, MeetingSlots, Rules, RulesInput
from chronary.services import availability as svc
from chronary.services import rules as rule_svc
from chronary.services.context import Ctx
from chronary.store.db import Database

_EXPLAIN = Parameter(
    default=False,
    description=(
        "true: add `explanation`, saying what blocked each busy interval or rejected candidate: the events "
        "(id, calendar, status, times, and their source: local, or the connection / iCal subscription they "
        "were synced from with its `last_synced_at`) and the rules (working_hours, date_override, buffer, "
        "minimum_notice), plus every source filling the calendars. Slower; off by default."
    ),
)


class RulesController(Controller):
    path = "/agents/{agent_id:str}/availability-rules"
    tags = ["availability"]

    @put(
        "/",
        summary="Set an agent's availability rules (replaces them)",
        responses=ERRORS,
        description=(
            "Working hours per weekday (several ranges a day, HH:MM local time in `timezone`, default the "
            "agent's), buffers around events, minimum notice, and date overrides (`hours: []` = day off). "
            "Ranges of one day may not overlap; the rules must leave some hours. Without rules an agent is "
            "always available."
        ),
    )
    async def put_rules(self, agent_id: str, data: RulesInput, db: Database, ctx: Ctx) -> Rules:
        return await db.write(lambda tx: rule_svc.put(tx, ctx.principal, agent_id, data))

    @get("/", summary="Get an agent's availability rules (404 when it has none)", responses=ERRORS)
    async def get_rules(self, agent_id: str, db: Database, ctx: Ctx) -> Rules:
        return await db.read(lambda tx: rule_svc.get(tx, ctx.principal, agent_id))

    @delete("/", summary="Clear an agent's availability rules (it becomes always available)", responses=ERRORS)
    async def delete_rules(self, agent_id: str, db: Database, ctx: Ctx) -> None:
        await db.write(lambda tx: rule_svc.delete(tx, ctx.principal, agent_id))


class AvailabilityController(Controller):
    path = "/agents/{agent_id:str}/availability"
    tags = ["availability"]

    @get(
        "/",
        summary="Free/busy for one agent",
        responses=ERRORS,
        description=(
            "Busy: confirmed, tentative and unexpired hold events on all the agent's calendars (recurrences "
            "expanded, all-day events block their local days), widened by buffers and merged; `event_id` is "
            "set when an interval comes from one event. Free: working hours minus busy, not before now + "
            "minimum notice, only intervals of at least `slot_minutes`. Window at most 62 days."
        ),
    )
    async def availability(
        self,
        agent_id: str,
        db: Database,
        ctx: Ctx,
        start: str | None = Parameter(
            default=None, description="Window start, ISO 8601 with offset", schema_extra={"format": "date-time"}
        ),
        end: str | None = Parameter(
            default=None,
            description="Window end, ISO 8601 with offset (≤ 62 days after start)",
            schema_extra={"format": "date-time"},
        ),
        slot_minutes: int = Parameter(default=30, description="Shortest free interval to report, 1–1440"),
        explain: bool = _EXPLAIN,
    ) -> Availability:
        return await db.read(
            lambda tx: svc.availability(tx, ctx.principal, agent_id, start, end, slot_minutes, explain=explain)
        )


class FindMeetingTimeController(Controller):
    path = "/availability/find-meeting-time"
    tags = ["availability"]

    @post(
        "/",
        status_code=200,
        summary="Common free slots of several agents",
        responses=ERRORS,
        description=(
            "Slots of `duration_minutes` free for every agent (their rules, timezones, buffers and notice), "
            "starting on a `slot_step_minutes` grid, earliest first, at most `limit`. An agent key must "
            "include its own agent."
        ),
    )
    async def find(self, data: FindMeetingTime, db: Database, ctx: Ctx, explain: bool = _EXPLAIN) -> MeetingSlots:
        return await db.read(lambda tx: svc.find_meeting_time(tx, ctx.principal, data, explain=explain))


ROUTES = [RulesController, AvailabilityController, FindMeetingTimeController]
