"""The /v1 guard: resolve the API key into a Principal before any handler runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from chronary.services import keys as key_service
from chronary.store.db import Database

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


def presented_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The Bearer token, else `x-api-key`; "" (malformed) for another Authorization scheme alone.

    A non-Bearer Authorization (say Basic, added by a proxy) does not hide a valid x-api-key.
    """
    auth = connection.headers.get("authorization")
    if auth:
        scheme, _, token = auth.strip().partition(" ")
        if scheme.lower() == "bearer":
            return token.strip()
    header = connection.headers.get("x-api-key")
    if header is not None:
        return header.strip()
    return "" if auth else None


def api_key_guard(db: Database) -> Guard:
    """The guard for /v1 on this database: the key's Principal lands in `connection.state.principal`."""

    async def require_api_key(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        key = presented_key(connection)
        connection.state.principal = await db.read(lambda tx: key_service.authenticate(tx, key))

    return require_api_key
