"""Liveness: answers GET and HEAD without a key so load balancers and uptime checkers can probe it."""

from __future__ import annotations

from typing import Any

from litestar import HttpMethod, route

from chronary import __version__
from chronary.api._common import RuntimeDep


# HEAD too: uptime checkers and calendar apps probe with it (uvicorn drops the body, keeps the headers)
@route("/health", http_method=[HttpMethod.GET, HttpMethod.HEAD], tags=["health"], summary="Server health")
async def health(runtime: RuntimeDep) -> dict[str, Any]:
    """Cheap by design (load balancers poll it): the schema version was read at start."""
    return {"status": "ok", "version": __version__, "schema_version": runtime.schema_version}


PUBLIC_ROUTES = [health]
