"""Liveness: answers GET and HEAD without a key so load balancers and uptime checkers can probe it."""

from __future__ import annotations

from typing import Any

from litestar import HttpMethod, route

from chronary import __version__
from chronary.store.db import Database, Tx
from chronary.store.migrate import schema_version


def _version(tx: Tx) -> int:
    return schema_version(tx.conn)


# HEAD too: uptime checkers and calendar apps probe with it (uvicorn drops the body, keeps the headers)
@route("/health", http_method=[HttpMethod.GET, HttpMethod.HEAD], tags=["health"], summary="Server health")
async def health(db: Database) -> dict[str, Any]:
    version = await db.read(_version)
    return {"status": "ok", "version": __version__, "schema_version": version}


PUBLIC_ROUTES = [health]
