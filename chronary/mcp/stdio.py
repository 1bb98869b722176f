"""`chronary mcp`: MCP over stdio for desktop clients (Claude Desktop and the like).

Two ways, one set of tools:
- on the data dir (`--data-dir`, default the user data dir): this process opens the database
  itself (apsw, like the server; several processes on one SQLite file are safe) and runs the
  tools as the key's principal. Background work those writes cause (webhooks, provider pushes,
  flow runs) is in the change log, done by the running `chronary serve` whenever it runs.
- bridged (`--url http://host:8765`): every MCP message is passed, unchanged, between stdio and
  the server's /mcp endpoint (the SDK's Streamable HTTP client, the key sent as a Bearer token),
  so the server does the work and applies its own auth.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import TYPE_CHECKING, Any

from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from mcp.server.stdio import stdio_server

from chronary.mcp.mount import PATH
from chronary.mcp.server import ChronaryMCP
from chronary.services import keys

if TYPE_CHECKING:
    from chronary.runtime import Runtime

log = logging.getLogger("chronary.mcp")


async def serve(runtime: Runtime, base_url: str, key: str) -> None:
    """Serve the tools on stdio as `key`'s principal (Unauthorized for a bad key, before serving)."""
    principal = await runtime.db.read(lambda tx: keys.authenticate(tx, key))
    await ChronaryMCP(runtime, base_url, principal).run_stdio_async()


def endpoint_url(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith(PATH) else url + PATH


async def bridge(url: str, key: str) -> None:
    """Pass MCP messages between stdio and the server at `url` until stdin closes."""
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {key}"}) as http,
        streamable_http_client(endpoint_url(url), http_client=http) as (remote_read, remote_write),
        stdio_server() as (local_read, local_write),
    ):
        done = asyncio.Event()

        async def pump(source: Any, target: Any, what: str) -> None:
            try:
                async for message in source:
                    if isinstance(message, Exception):
                        print(f"chronary mcp: {what}: {message}", file=sys.stderr)
                        continue
                    await target.send(message)
            finally:
                done.set()

        tasks = [
            asyncio.create_task(pump(local_read, remote_write, "from the client")),
            asyncio.create_task(pump(remote_read, local_write, "from the server")),
        ]
        await done.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
