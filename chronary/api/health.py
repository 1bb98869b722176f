"""Liveness: answers without a key so load balancers and the binary test can probe it."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from chronary import __version__
from chronary.store.db import Tx
from chronary.store.migrate import schema_version


def _version(tx: Tx) -> int:
    return schema_version(tx.conn)


@get("/health", tags=["health"], summary="Server health")
async def health(request: Request[Any, Any, Any]) -> dict[str, Any]:
    version = await request.app.state.db.read(_version)
    return {"status": "ok", "version": __version__, "schema_version": version}


PUBLIC_ROUTES = [health]
