"""/v1/connections: provider accounts (org keys only) and their two-way sync."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.response import Redirect

from chronary.api._common import ERRORS, Limit, Offset, RuntimeDep, page_body
from chronary.errors import UpstreamError, ValidationError, not_found
from chronary.schemas.common import ErrorEnvelope
from chronary.schemas.connections import (
    Connection,
    ConnectionCallback,
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
from chronary.services.sync import push
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
    async def start(
        self, request: Request[Any, Any, Any], runtime: RuntimeDep, data: ConnectionStart, ctx: Ctx
    ) -> ConnectionStartResult:
        return await oauth.start(runtime, ctx.principal, data, _request_base(request))

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


def _request_base(request: Request[Any, Any, Any]) -> str:
    return str(request.base_url).rstrip("/")


_CALLBACK_ERRORS = {400: ERRORS[400], 502: _ERRORS[502]}


@get(
    "/v1/connections/callback",
    tags=["connections"],
    status_code=302,
    summary="Where the provider sends the browser back after consent (no API key: `state` is the credential)",
    description=(
        "Exchanges `code`, stores the tokens encrypted, discovers the account's email and calendars, and redirects "
        "(302) to the return_url given to /start with `?connection_id=con_…&state=…`. On any failure it redirects "
        "with `?error=<type>&state=…` (access_denied, expired_state, invalid_grant, provider_error, …) and stores "
        "nothing. A missing, unknown or already used `state` answers 400: there is nowhere safe to redirect."
    ),
    responses={302: ResponseSpec(None, description="to return_url"), 400: ERRORS[400]},
)
async def oauth_callback(
    runtime: RuntimeDep,
    code: str | None = Parameter(default=None, max_length=4096),
    oauth_state: str | None = Parameter(query="state", default=None, max_length=256),  # `state` is reserved
    error: str | None = Parameter(default=None, max_length=200),
) -> Redirect:
    params = {k: v for k, v in (("code", code), ("state", oauth_state), ("error", error)) if v is not None}
    outcome = await oauth.finish(runtime, params)
    return Redirect(outcome.redirect(), status_code=302)


@post(
    "/v1/connections/callback",
    tags=["connections"],
    status_code=201,
    summary="Finish the OAuth flow from a server-side integration (no API key: `state` is the credential)",
    description=(
        "The same as the browser callback, answering JSON: the connection (201), or the error envelope: 400 for "
        "an unknown, used or expired state or a refused code, 502 when the provider fails."
    ),
    responses=_CALLBACK_ERRORS,
)
async def oauth_callback_post(runtime: RuntimeDep, data: ConnectionCallback) -> Connection:
    outcome = await oauth.finish(runtime, {"code": data.code, "state": data.state})
    if outcome.connection is not None:
        return outcome.connection
    if outcome.error == "provider_error":
        raise UpstreamError(f"The provider failed: {outcome.message}", None)
    raise ValidationError(f"{outcome.error}: {outcome.message}", "state" if outcome.error == "expired_state" else "code")


@post(
    "/v1/connections/notifications/{provider:str}",
    tags=["connections"],
    status_code=200,
    summary="Push notifications from a provider (no API key: the channel's token is checked)",
    description=(
        "Google watch channels and Microsoft Graph subscriptions post here; the channel id and its secret token "
        "must match a channel of ours, else 404 and nothing changes. A valid notification schedules an incremental "
        "sync of that connection now and is answered at once. Graph's `?validationToken=` handshake is echoed."
    ),
    responses={404: ERRORS[404]},
)
async def push_notification(request: Request[Any, Any, Any], runtime: RuntimeDep, provider: str) -> Response[bytes]:
    echo = push.handshake(provider, dict(request.query_params))
    if echo is not None:  # a provider validating a new subscription: answer at once, in text/plain
        return Response(echo.encode(), status_code=200, media_type="text/plain")
    body = await request.body()
    handled = await push.receive(runtime, provider, dict(request.headers), body)
    if not handled:
        raise not_found("push channel", request.headers.get("x-goog-channel-id") or "")
    return Response(b"", status_code=200, media_type="text/plain")


ROUTES = [ConnectionController]
PUBLIC_ROUTES = [oauth_callback, oauth_callback_post, push_notification]
