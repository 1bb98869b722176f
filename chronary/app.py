"""The app factory: routes, auth, errors, OpenAPI, the bundled UI, and the worker lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Router
from litestar.config.app import AppConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins import PluginProtocol

from chronary import __version__, api, connect_api
from chronary.api import web_ui
from chronary.api._auth import api_key_guard
from chronary.api._body import MAX_BODY_BYTES
from chronary.api._common import app_dependencies, v1_dependencies
from chronary.api._errors import EXCEPTION_HANDLERS
from chronary.api._hot import HotRoutes
from chronary.api._idempotency import idempotency_middleware
from chronary.api._middleware import RequestContextMiddleware
from chronary.api._openapi import ClosedStructSchemaPlugin, document_idempotency
from chronary.clock import Clock
from chronary.config import Settings
from chronary.mcp import mount as mcp_mount
from chronary.runtime import Runtime, open_runtime
from chronary.workers import WorkerSet, discover

log = logging.getLogger("chronary")


class ChronaryApp(Litestar):
    """Litestar with the request-context middleware around everything, routing included.

    Litestar runs app middleware only for matched routes; wrapping `__call__` gives 404s and
    405s their request id and the JSON-only check too. Inside it, the hot routes (api/_hot.py)
    answer the commonest write's plain requests before Litestar routes them.
    """

    front: Any = None  # what requests meet first (create_app): request ids, JSON-only, hot routes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" or self.front is None:
            await super().__call__(scope, receive, send)
            return
        await self.front(scope, receive, send)

    async def routed(self, scope: Any, receive: Any, send: Any) -> None:
        """Litestar's own handling: routing, middleware, guards, handlers."""
        await super().__call__(scope, receive, send)

    @staticmethod
    def _get_default_plugins(plugins: list[PluginProtocol]) -> list[PluginProtocol]:
        """Only msgspec's: Litestar would also add its pydantic and attrs plugins whenever those
        libraries are installed (the MCP SDK brings pydantic), importing them at start (~0.2 s).
        Chronary's handlers and schemas are msgspec Structs, so those plugins have nothing to do."""
        from litestar.plugins.core import MsgspecDIPlugin

        return [*plugins, MsgspecDIPlugin()]

    @staticmethod
    def _patch_opentelemetry_middleware(config: AppConfig) -> AppConfig:
        """Unchanged: Chronary adds no OpenTelemetry middleware for Litestar to move into a plugin,
        and looking for one imports OpenTelemetry's semantic conventions (the MCP SDK installs it)."""
        return config


class MountedOnce(Router):
    """A Router built for one app and registered in it once.

    Litestar deep-copies every Router instance it registers, so that one router can sit under two
    parents; for /v1 with its couple of hundred handlers that copy was a sizeable part of building
    the app at start. These routers are made per app and have a single parent: the copy is this."""

    def __deepcopy__(self, memo: dict[int, Any]) -> MountedOnce:
        return self


def create_app(settings: Settings, clock: Clock | None = None, runtime: Runtime | None = None) -> Litestar:
    runtime = runtime or open_runtime(settings, clock)
    private_routes, public_routes = api.discover()
    # /mcp: MCP over Streamable HTTP (chronary/mcp/http.py), its SDK imported on first use (mount.py)
    mcp = mcp_mount.LazyMcp(runtime, settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        import asyncio

        runtime.signals.loop = asyncio.get_running_loop()
        workers = WorkerSet(discover(runtime) if settings.workers else [])
        app.state.workers = workers
        workers.start()
        try:
            async with mcp.running():
                yield
        finally:
            await workers.shutdown()
            runtime.db.close()

    idempotent = idempotency_middleware(runtime)  # Idempotency-Key on POST/PATCH
    v1 = MountedOnce(
        path="/v1",
        route_handlers=private_routes,
        guards=[api_key_guard(runtime.db)],
        dependencies=v1_dependencies(settings),
        middleware=[idempotent],
        security=[{"apiKey": []}, {"apiKeyHeader": []}],
    )
    connect = MountedOnce(
        path="/connect/v1",
        route_handlers=connect_api.routes(),
        guards=[api_key_guard(runtime.db)],
        dependencies=v1_dependencies(settings),
        middleware=[idempotent],
        security=[{"apiKey": []}, {"apiKeyHeader": []}],
    )
    handlers: list[Any] = [
        v1,
        connect,
        *public_routes,
        *connect_api.public_routes(),
        mcp_mount.route(mcp),
    ]  # the UI's shell and assets are public routes (api/web_ui.py)

    app = ChronaryApp(
        route_handlers=handlers,
        dependencies=app_dependencies(runtime, settings),
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=MAX_BODY_BYTES,
        lifespan=[lifespan],
        plugins=[ClosedStructSchemaPlugin()],
        openapi_config=OpenAPIConfig(
            title="Chronary",
            version=__version__,
            description=(
                "Self-hosted calendar server for AI agents. Every error answers "
                '`{"error": {"type", "message", "param", "request_id"}}`.'
            ),
            path="/schema",
            # the docs page loads Redoc from this server and no web fonts: it works offline
            render_plugins=[
                RedocRenderPlugin(
                    js_url=web_ui.redoc_js(),
                    google_fonts=False,
                    path="/",
                    favicon='<link rel="icon" type="image/svg+xml" href="/assets/icon.svg">',
                ),
                YamlRenderPlugin(),
            ],
            components=Components(
                security_schemes={
                    "apiKey": SecurityScheme(
                        type="http", scheme="bearer", description="chr_sk_… (org) or chr_ak_… (agent) key"
                    ),
                    "apiKeyHeader": SecurityScheme(
                        type="apiKey",
                        name="x-api-key",
                        security_scheme_in="header",
                        description="The same key sent as `x-api-key: <key>`",
                    ),
                }
            ),
        ),
        debug=False,
        logging_config=None,
    )
    app.front = RequestContextMiddleware(HotRoutes(app.routed, runtime.db, settings.base_url), runtime.activity.seen)
    document_idempotency(app, ("/v1/", "/connect/v1/"))
    # also on app.state for tests and tools holding the app; handlers get these injected
    # (api/_common.app_dependencies: runtime, db, settings, secrets, clock)
    app.state.runtime = runtime
    app.state.db = runtime.db
    app.state.settings = settings
    app.state.clock = runtime.clock
    return app
