"""The MCP server object: Chronary's tools, calendar resources and the scheduling prompt.

`ChronaryMCP` is the SDK's `MCPServer` with its tool, resource and resource-template listings
answered from chronary/mcp/tools.py and the caller's own data. Who is calling comes from the
HTTP request the message arrived on (chronary/mcp/http.py puts the API key's Principal into the
ASGI scope after authenticating it) or, for the stdio command, from the key it was started with.

Failures are tool results with `isError` and the REST error envelope
(`{"error": {"type", "message", "param", "request_id"}}`) both as structured content and as the
text, so an agent reads the same words REST would answer; nothing unexpected leaks a traceback.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import mcp.types as types
from mcp.server import MCPServer, ServerRequestContext
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from chronary import __version__
from chronary.errors import ChronaryError, NotFound, Unauthorized
from chronary.mcp import tools
from chronary.services import calendars
from chronary.services import event_lists as lists
from chronary.services.context import Ctx, Principal
from chronary.timeutil import iso

if TYPE_CHECKING:
    from chronary.runtime import Runtime

log = logging.getLogger("chronary.mcp")

PRINCIPAL_KEY = "chronary.principal"  # the ASGI scope key chronary/mcp/http.py sets
CALENDAR_URI = "chronary://calendars/{calendar_id}"
_CALENDAR_URI = re.compile(r"^chronary://calendars/([A-Za-z0-9_\-]{1,100})$")
UPCOMING_DAYS = 14

INSTRUCTIONS = (
    "Chronary is the calendar server of your organisation. Find your calendars with list_calendars, "
    "read what is booked with list_events or get_agent_context, find a time with find_meeting_time "
    "(hold_title holds the best slot), confirm it with confirm_hold, or ask others with create_proposal. "
    "Give writes a request_id so a retry never books twice."
)


def _result(out: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(out, separators=(",", ":")))], structured_content=out
    )


def error_result(exc: ChronaryError) -> types.CallToolResult:
    envelope = tools.error_envelope(exc)
    text = f"{exc.type}: {exc.message}" + (f" (param: {exc.param})" if exc.param else "")
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=f"{text}\n{json.dumps(envelope)}")],
        structured_content=envelope,
        is_error=True,
    )


class ChronaryMCP(MCPServer[Any]):
    """Chronary over MCP, on one runtime; `principal` fixes the caller (stdio) instead of HTTP auth."""

    def __init__(self, runtime: Runtime, base_url: str, principal: Principal | None = None) -> None:
        super().__init__(
            name="chronary",
            title="Chronary",
            description="Self-hosted calendars, availability and scheduling for AI agents",
            instructions=INSTRUCTIONS,
            version=__version__,
            log_level="WARNING",
        )
        self.runtime = runtime
        self.base_url = base_url
        self.principal = principal
        self.prompt(
            name="schedule_meeting",
            title="Schedule a meeting",
            description="Steps to find a time with other agents, hold it and confirm it",
        )(schedule_meeting)

    # --- who is calling ------------------------------------------------------------------------

    def _principal_of(self, request: Any) -> Principal:
        scope = getattr(request, "scope", None)
        if isinstance(scope, dict) and isinstance(scope.get(PRINCIPAL_KEY), Principal):
            found: Principal = scope[PRINCIPAL_KEY]
            return found
        if self.principal is not None:
            return self.principal
        raise Unauthorized("Missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'")

    def _ctx(self, context: Context[Any] | None) -> Ctx:
        request = None
        if context is not None:
            try:
                request = context.request_context.request
            except ValueError:
                request = None
        return Ctx(principal=self._principal_of(request), base_url=self.base_url)

    # --- tools ---------------------------------------------------------------------------------

    async def list_tools(self) -> list[types.Tool]:
        return [
            types.Tool(
                name=spec.name,
                title=spec.title,
                description=spec.description,
                input_schema=spec.input_schema,
                output_schema=spec.output_schema,
                annotations=types.ToolAnnotations(
                    title=spec.title,
                    read_only_hint=spec.read_only,
                    destructive_hint=spec.destructive,
                    idempotent_hint=spec.idempotent or spec.read_only,
                    open_world_hint=spec.name == "run_action",
                ),
            )
            for spec in tools.TOOLS
        ]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any] | None = None
    ) -> types.CallToolResult:
        spec = tools.BY_NAME.get(name)
        if spec is None:
            return error_result(NotFound(f"No tool named {name!r}", "name"))
        try:
            ctx = self._ctx(context)
            out = await tools.run(spec, tools.Call(self.runtime, ctx), arguments)
        except ChronaryError as exc:
            if exc.status >= 500:
                log.error("MCP tool %s failed: %s", name, exc.message)
            return error_result(exc)
        except Exception:
            log.exception("MCP tool %s raised", name)
            return error_result(ChronaryError("Internal error; the server log has the details"))
        return _result(out)

    # --- resources: each calendar the caller can see, with its upcoming events -----------------

    async def _handle_list_resources(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        call = Ctx(principal=self._principal_of(ctx.request), base_url=self.base_url)
        page = await self.runtime.db.read(lambda tx: calendars.list_(tx, call, None, True, 200, 0))
        return types.ListResourcesResult(
            resources=[
                types.Resource(
                    name=cal.name,
                    title=f"Calendar {cal.name}",
                    uri=f"chronary://calendars/{cal.id}",
                    description=f"{cal.name} ({cal.timezone}) and its events of the next {UPCOMING_DAYS} days",
                    mime_type="application/json",
                )
                for cal in page.items
            ]
        )

    async def list_resource_templates(self) -> list[types.ResourceTemplate]:
        return [
            types.ResourceTemplate(
                name="calendar",
                title="A calendar and its upcoming events",
                uri_template=CALENDAR_URI,
                description=f"A calendar with its events of the next {UPCOMING_DAYS} days (series expanded)",
                mime_type="application/json",
            )
        ]

    async def read_resource(self, uri: Any, context: Context[Any] | None = None) -> Iterable[ReadResourceContents]:
        found = _CALENDAR_URI.match(str(uri))
        if found is None:
            raise ResourceNotFoundError(f"Unknown resource {uri}")
        calendar_id = found.group(1)
        try:
            ctx = self._ctx(context)

            def read(tx: Any) -> dict[str, Any]:
                cal = calendars.get(tx, ctx, calendar_id)
                start, end = tx.now, tx.now + timedelta(days=UPCOMING_DAYS)
                page = lists.list_for_calendar(tx, ctx, calendar_id, iso(start), iso(end), None, None, 200, 0)
                return {"calendar": tools.as_json(cal), "upcoming_events": [tools.as_json(e) for e in page.items]}

            body = await self.runtime.db.read(read)
        except ChronaryError as exc:
            raise ResourceNotFoundError(f"{exc.type}: {exc.message}") from None
        return [ReadResourceContents(content=json.dumps(body), mime_type="application/json")]


def schedule_meeting(participants: str, duration_minutes: str = "30", window: str = "the next 5 working days") -> str:
    """The "schedule a meeting" prompt: the tool steps, in order."""
    return (
        f"Schedule a {duration_minutes}-minute meeting with {participants} within {window}.\n"
        "1. Call get_agent_context to see where you stand now, and list_calendars for your calendar id.\n"
        "2. Call find_meeting_time with every agent id (yours included), the window as ISO 8601 start/end, "
        f"duration_minutes={duration_minutes} and hold_title set to the meeting's title: the earliest common "
        "slot is held on your calendar. Give it a request_id.\n"
        "3. If no slot is found, widen the window or ask with create_proposal using candidate slots.\n"
        "4. Tell the user the slot; when they agree, call confirm_hold with the hold's calendar_id and id "
        "(release_hold gives it back). Check the result with list_events."
    )
