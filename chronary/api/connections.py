"""/v1/connections: provider accounts (org keys only) and their two-way sync."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from chronary.api._common import ERRORS, Limit, Offset, RuntimeDep, page_body
from chronary.schemas.common import ErrorEnvelope
from chronary.schemas.connections import (
    Connection,
    ConnectionCreate,
    ConnectionList,
    ConnectionStart,
    ConnectionStartResult,
    ConnectionStatus,
    ConnectionUpdate,
    ProviderName,
    SyncConflictList,
)
from chronary.services import connections as svc
from chronary.services import oauth
from chronary.services.context import Ctx
from chronary.services.validation import check_url
from chronary.store.db import Database

_EXPAND = Parameter(
    query="expand[]", default=None, description="`calendars`: list every calendar of the account, not only the synced ones"
)
_ERRORS = {
    **ERRORS,
    502: ResponseSpec(
        data_container=ErrorEnvelope,
        generate_examples=False,
        description="upstream_error: the provider's server is unreachable or failing",
    ),
}


class ConnectionController(Controller):
    path = "/connections"
    tags = ["connections"]

    @post(
        "/",
        summary="Connect an iCloud or CalDAV account",
        responses=_ERRORS,
        description=(
            "Logs in and discovers the account's calendars before storing anything: wrong credentials answer 400 "
            "(nothing stored), an unreachable server 502. The password is stored encrypted and never returned. "
            "google/microsoft use the OAuth flow (POST /v1/connections/start) instead. The answer lists every "
            "calendar of the account; choose which to sync with PATCH."
        ),
    )
    async def create(self, runtime: RuntimeDep, data: ConnectionCreate, ctx: Ctx) -> Connection:
        if data.server_url is not None:
            ctx.principal.require_org("connections")  # 403 before any 400 about the body
            check_url(data.server_url, "server_url")  # syntax; services then check the target itself
        return await svc.connect(runtime, ctx.principal, data)

    @post(
        "/start",
        status_code=200,
        summary="Start connecting a Google or Microsoft account (OAuth)",
        responses=_ERRORS,
        description=(
            "Answers {redirect_url, state, expires_at}: send the person's browser to redirect_url; the provider "
            "comes back to GET /v1/connections/callback, which redirects to return_url with "
            "?connection_id=…&state=…. `connection_id` re-authorizes an existing connection. A server with no "
            "OAuth client for the provider answers 400 naming `provider`."
        ),
    )
    async def start(self, data: ConnectionStart, db: Database, ctx: Ctx) -> ConnectionStartResult:
        return await db.read(lambda tx: oauth.start(tx, ctx.principal, data))

    @get(
        "/",
        summary="List connections",
        responses=_ERRORS,
        description="Filters: provider, agent_id, status. `calendars` lists synced calendars unless expand[]=calendars.",
    )
    async def list_connections(
        self,
        db: Database,
        ctx: Ctx,
        provider: ProviderName | None = None,
        agent_id: str | None = None,
        status: ConnectionStatus | None = None,
        expand: list[str] | None = _EXPAND,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> ConnectionList:
        page = await db.read(lambda tx: svc.list_(tx, ctx.principal, provider, agent_id, status, expand, limit, offset))
        return page_body(ConnectionList, page)

    @get(
        "/{connection_id:str}",
        summary="Get a connection",
        responses=_ERRORS,
        description="`calendars` lists synced calendars; expand[]=calendars lists all the account's calendars.",
    )
    async def get_connection(
        self, connection_id: str, db: Database, ctx: Ctx, expand: list[str] | None = _EXPAND
    ) -> Connection:
        return await db.read(lambda tx: svc.get(tx, ctx.principal, connection_id, expand))

    @patch(
        "/{connection_id:str}",
        summary="Choose calendars to sync; change the sync interval",
        responses=_ERRORS,
        description=(
            "calendars: [{remote_id, sync, calendar_id?}]. sync true without calendar_id creates a calendar "
            "owned by the connection's agent; with calendar_id mirrors into that (existing) calendar of the "
            "agent, whose local events are then pushed up. sync false stops mirroring that calendar; its "
            "events stay as plain local events. Answers with every calendar of the account."
        ),
    )
    async def update(self, connection_id: str, data: ConnectionUpdate, db: Database, ctx: Ctx) -> Connection:
        return await db.write(lambda tx: svc.update(tx, ctx, connection_id, data))

    @delete(
        "/{connection_id:str}",
        summary="Disconnect: stop syncing and forget the credentials",
        responses=_ERRORS,
        description="Mirrored events stay as plain local events (source internal, remote null, writable).",
    )
    async def remove(self, runtime: RuntimeDep, connection_id: str, ctx: Ctx) -> None:
        await svc.disconnect(runtime, ctx.principal, connection_id)

    @post(
        "/{connection_id:str}/refresh",
        status_code=202,
        summary="Full resync now",
        responses=_ERRORS,
        description="Queues a full resync for the scheduler (at once). At most once a minute per connection: "
        "429 with Retry-After otherwise.",
    )
    async def refresh(self, connection_id: str, db: Database, ctx: Ctx) -> Connection:
        return await db.write(lambda tx: svc.refresh(tx, ctx.principal, connection_id))

    @get(
        "/{connection_id:str}/conflicts",
        summary="Conflicts the sync resolved, newest first",
        responses=_ERRORS,
        description=(
            "When both sides changed an event between two syncs, the later change wins (remote LAST-MODIFIED vs "
            "the local updated_at; a tie goes to the provider) and an edit beats a deletion. The losing version "
            "is kept here: `losing_version` is the provider's iCalendar text or the local event(s) as JSON."
        ),
    )
    async def conflicts(
        self, connection_id: str, db: Database, ctx: Ctx, limit: Limit = 50, offset: Offset = 0
    ) -> SyncConflictList:
        page = await db.read(lambda tx: svc.conflicts(tx, ctx.principal, connection_id, limit, offset))
        return page_body(SyncConflictList, page)


@get(
    "/v1/connections/callback",
    tags=["connections"],
    summary="Where the provider sends the browser back after consent (no API key: `state` is the credential)",
    description="Exchanges `code`, stores the tokens and redirects to the return_url given to /start. "
    "A missing, unknown, used or expired `state` answers 400.",
    responses={400: ERRORS[400]},
)
async def oauth_callback(
    code: str | None = Parameter(default=None, max_length=4096),
    oauth_state: str | None = Parameter(query="state", default=None, max_length=256),  # `state` is reserved
) -> None:
    oauth.finish(code, oauth_state)


ROUTES = [ConnectionController]
PUBLIC_ROUTES = [oauth_callback]
