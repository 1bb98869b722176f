"""`/connect/v1/proxy/{type}`, `/connect/v1/providers/{type}/actions/{name}` and the audit log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, get, post
from litestar.params import Parameter

from chronary.api._common import ERRORS, Limit, Offset, RuntimeDep
from chronary.errors import ValidationError
from chronary.schemas.connect import ActionResult, ProxyCallList, ProxyRequest, ProxyResponse
from chronary.services.connect import calls as svc
from chronary.services.context import Ctx

_PROXY_ABOUT = (
    "Chronary calls `<provider base URL><path>` with the connection's credentials (OAuth tokens refreshed as "
    "needed) and answers the provider's status, headers (minus hop-by-hop and auth) and body. The path must stay "
    "below the base URL (absolute URLs, //, @, .. and encoded forms answer 400); auth headers cannot be set; "
    "bodies and answers are size-capped; each connection has a per-minute budget (429 + Retry-After); every call "
    "is in GET /connect/v1/proxy-log."
)


class ProxyController(Controller):
    path = "/proxy"
    tags = ["connect: proxy"]

    @post(
        "/{provider_type:str}",
        status_code=200,
        summary="Call a provider's API through a connection",
        description=_PROXY_ABOUT,
        responses=ERRORS,
    )
    async def proxy(self, provider_type: str, data: ProxyRequest, ctx: Ctx, runtime: RuntimeDep) -> ProxyResponse:
        return await svc.proxy(runtime, ctx, provider_type, data)


class ActionController(Controller):
    path = "/providers/{provider_type:str}/actions"
    tags = ["connect: actions"]

    @post(
        "/{action_name:str}",
        status_code=200,
        summary="Run a provider action now",
        description=(
            "The body is the action's inputs (see its input_schema) plus an optional connectionId; inputs are "
            "validated against the schema (400 naming the field) and the output is returned."
        ),
        responses=ERRORS,
    )
    async def run(
        self, provider_type: str, action_name: str, data: dict[str, Any], ctx: Ctx, runtime: RuntimeDep
    ) -> ActionResult:
        inputs = dict(data)
        connection_id = inputs.pop("connectionId", None)
        if connection_id is not None and not isinstance(connection_id, str):
            raise ValidationError("connectionId must be a string", "connectionId")
        return await svc.run_action(runtime, ctx, provider_type, action_name, inputs, connection_id)


class ProxyLogController(Controller):
    path = "/proxy-log"
    tags = ["connect: proxy"]

    @get("/", summary="The audit log of proxy calls and actions (never bodies or secrets), newest first", responses=ERRORS)
    async def log(
        self,
        ctx: Ctx,
        runtime: RuntimeDep,
        provider_type: Annotated[str | None, Parameter(query="providerType", max_length=40)] = None,
        connection_id: Annotated[str | None, Parameter(query="connectionId", max_length=100)] = None,
        kind: Literal["proxy", "action"] | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> ProxyCallList:
        return await runtime.db.read(lambda tx: svc.calls(tx, ctx, provider_type, connection_id, kind, limit, offset))


ROUTES = [ProxyController, ActionController, ProxyLogController]
