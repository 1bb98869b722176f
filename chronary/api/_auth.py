"""The /v1 guard: resolve the API key into a Principal before any handler runs."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from chronary.services import keys as key_service


def presented_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    auth = connection.headers.get("authorization")
    if auth:
        scheme, _, token = auth.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""
    return connection.headers.get("x-api-key")


async def require_api_key(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    key = presented_key(connection)
    principal = await connection.app.state.db.read(lambda tx: key_service.authenticate(tx, key))
    connection.state.principal = principal
