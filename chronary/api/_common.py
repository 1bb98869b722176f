"""What every controller shares: paging parameters, error docs, list bodies, and what handlers
get injected (the runtime and its parts, the per-request context)."""

from __future__ import annotations

from typing import Annotated, Any, Protocol, TypeVar

from litestar import Request
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Dependency, Parameter

from chronary.clock import Clock
from chronary.config import Settings
from chronary.crypto import SecretBox
from chronary.runtime import Runtime
from chronary.schemas.common import ErrorEnvelope
from chronary.services.context import Ctx, Page, Principal
from chronary.store.db import Database

Limit = Annotated[int, Parameter(ge=1, le=200, description="Page size, 1–200")]
Offset = Annotated[int, Parameter(ge=0, le=2**31 - 1, description="Items to skip")]  # le: SQLite binds 64-bit ints

# Litestar checks injected values against the handler's annotation with msgspec, which cannot
# take a Runtime (a dataclass holding locks) or a Clock (a Protocol); these two skip that check.
# `db: Database`, `settings: Settings` and `secrets: SecretBox` need no alias.
RuntimeDep = Annotated[Runtime, Dependency(skip_validation=True)]
ClockDep = Annotated[Clock, Dependency(skip_validation=True)]

T = TypeVar("T")
L = TypeVar("L")
L_co = TypeVar("L_co", covariant=True)


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


def app_dependencies(runtime: Runtime, settings: Settings) -> dict[str, Provide]:
    """Injected by name into any handler that asks: `runtime`, `db`, `settings`, `secrets`, `clock`.

    Handlers declare what they need (`async def h(self, db: Database, settings: Settings,
    runtime: RuntimeDep)`) instead of reading `request.app.state`; import those types at module
    level (Litestar resolves the annotations at startup). `settings` is create_app's argument.
    """

    def provide_runtime() -> Runtime:
        return runtime

    def provide_db() -> Database:
        return runtime.db

    def provide_settings() -> Settings:
        return settings

    def provide_secrets() -> SecretBox:
        return runtime.secrets

    def provide_clock() -> Clock:
        return runtime.clock

    return {
        "runtime": Provide(provide_runtime, sync_to_thread=False),
        "db": Provide(provide_db, sync_to_thread=False),
        "settings": Provide(provide_settings, sync_to_thread=False),
        "secrets": Provide(provide_secrets, sync_to_thread=False),
        "clock": Provide(provide_clock, sync_to_thread=False),
    }


def v1_dependencies(settings: Settings) -> dict[str, Provide]:
    """`ctx` for /v1 handlers: the key's Principal (set by the api-key guard) and the base URL."""
    base_url = settings.base_url

    # `db` is unused but makes ctx depend on it: Litestar resolves a level of two or more
    # independent dependencies (db and ctx, in nearly every handler) in an anyio task group
    def provide_ctx(request: Request[Any, Any, Any], db: Database) -> Ctx:
        principal: Principal = request.state.principal
        return Ctx(principal=principal, base_url=base_url)

    return {"ctx": Provide(provide_ctx, sync_to_thread=False)}


class ListShape(Protocol[T, L_co]):
    """A `…List` struct's constructor: `AgentList(data=[Agent, …], total=…, limit=…, offset=…)`."""

    def __call__(self, *, data: list[T], total: int, limit: int, offset: int) -> L_co: ...


def page_body(shape: ListShape[T, L], page: Page[T]) -> L:
    """The typed list body of a page: `page_body(AgentList, page)` is an `AgentList`."""
    return shape(data=page.items, total=page.total, limit=page.limit, offset=page.offset)


def page_dict(page: Page[Any]) -> dict[str, Any]:
    """The list body as a dict, for services that still answer with dicts (use `page_body` with structs)."""
    return {"data": page.items, "total": page.total, "limit": page.limit, "offset": page.offset}
