"""What every controller shares: paging parameters, error docs, and the per-request context."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from chronary.schemas.common import ErrorEnvelope
from chronary.services.context import Ctx, Page, Principal
from chronary.store.db import Database

Limit = Annotated[int, Parameter(ge=1, le=200, description="Page size, 1–200")]
Offset = Annotated[int, Parameter(ge=0, le=2**31 - 1, description="Items to skip")]  # le: SQLite binds 64-bit ints


def _err(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorEnvelope, description=description, generate_examples=False)


ERRORS: dict[int, ResponseSpec] = {
    400: _err("validation_error: a field breaks a rule; `param` names it"),
    401: _err("unauthorized: missing, unknown or revoked API key"),
    403: _err("forbidden: the key may not do this (e.g. agent key on an org-only endpoint)"),
    404: _err("not_found: no such resource, or the key may not see it"),
    409: _err("conflict"),
    413: _err("payload_too_large: body over 1 MiB or metadata over 16 KB"),
    415: _err("unsupported_media_type: send application/json"),
    429: _err("rate_limited: retry after `Retry-After` seconds"),
}


def provide_db(request: Request[Any, Any, Any]) -> Database:
    return request.app.state.db


def provide_ctx(request: Request[Any, Any, Any]) -> Ctx:
    principal: Principal = request.state.principal
    return Ctx(principal=principal, base_url=request.app.state.settings.base_url)


def page_dict(page: Page) -> dict[str, Any]:
    return {"data": page.items, "total": page.total, "limit": page.limit, "offset": page.offset}
