"""The /mcp mount, with the MCP SDK imported and built only when /mcp is first requested.

The SDK (with pydantic models for every protocol type) takes about half a second to import, which
is most of what `serve` would spend before answering /health; a server nobody talks MCP to never
pays it. `LazyMcp.running()` is entered by the app's lifespan. It starts one task that waits until
the first /mcp request asks for the endpoint, then imports chronary/mcp/http.py (in a thread, so
the event loop keeps answering other requests meanwhile), builds `McpEndpoint` and runs the SDK's
session manager until shutdown. The session manager's task group is entered and left in that one
task, as anyio requires. Everything else (auth, host policy, sessions) is chronary/mcp/http.py's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any

from litestar.handlers import ASGIRouteHandler, asgi
from litestar.types import Receive, Scope, Send

if TYPE_CHECKING:
    from chronary.config import Settings
    from chronary.mcp.http import McpEndpoint
    from chronary.runtime import Runtime

PATH = "/mcp"


def _endpoint_class() -> type[McpEndpoint]:
    from chronary.mcp.http import McpEndpoint

    return McpEndpoint


class LazyMcp:
    """The ASGI app behind /mcp until (and after) the real endpoint is built on first use."""

    def __init__(self, runtime: Runtime, settings: Settings) -> None:
        self.runtime = runtime
        self.settings = settings
        self._wanted = asyncio.Event()
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._endpoint: McpEndpoint | None = None
        self._error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def _serve(self) -> None:
        """Build the endpoint when first wanted, then run its session manager until stopped."""
        try:
            await self._wanted.wait()
            if self._stop.is_set():
                return
            endpoint_class = await asyncio.to_thread(_endpoint_class)  # the slow part, off the loop
            endpoint = endpoint_class(self.runtime, self.settings)
            async with endpoint.session_manager.run():
                self._endpoint = endpoint
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:
            self._error = exc
            raise
        finally:
            self._ready.set()  # wake any waiting request: it sees the error or the shutdown

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Held open by the app's lifespan: the session manager (once built) lives inside it."""
        self._task = asyncio.create_task(self._serve(), name="mcp")
        try:
            yield
        finally:
            self._stop.set()
            self._wanted.set()
            with suppress(Exception, asyncio.CancelledError):
                await self._task

    async def endpoint(self) -> McpEndpoint:
        if self._endpoint is None:
            if self._task is None:
                raise RuntimeError("the MCP endpoint is used outside the app's lifespan")
            self._wanted.set()
            await self._ready.wait()
            if self._endpoint is None:
                raise RuntimeError("the MCP endpoint could not start") from self._error
        return self._endpoint

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        endpoint = await self.endpoint()
        await endpoint(scope, receive, send)


def route(mcp: LazyMcp) -> ASGIRouteHandler:
    """The Litestar mount for `mcp` at /mcp (and below)."""

    @asgi(PATH, is_mount=True, copy_scope=True)
    async def mcp_transport(scope: Scope, receive: Receive, send: Send) -> None:
        await mcp(scope, receive, send)

    return mcp_transport
