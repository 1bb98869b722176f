"""Helpers for the MCP tests: the SDK's own client over Streamable HTTP against a live server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from mcp import ClientSession
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client


@asynccontextmanager
async def mcp_session(base_url: str, key: str | None, headers: dict[str, str] | None = None) -> AsyncIterator[ClientSession]:
    sent = dict(headers or {})
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    async with (
        create_mcp_http_client(headers=sent) as http,
        streamable_http_client(f"{base_url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def rest(base_url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def setup_org(server: Any) -> dict[str, Any]:
    """Two agents with a calendar each and an agent key for the first, made over REST."""
    with rest(server.base_url, server.key) as c:
        ada = c.post("/v1/agents", json={"name": "Ada"}).json()
        bob = c.post("/v1/agents", json={"name": "Bob"}).json()
        cal_a = c.post(f"/v1/agents/{ada['id']}/calendars", json={"name": "Ada work", "timezone": "UTC"}).json()
        cal_b = c.post(f"/v1/agents/{bob['id']}/calendars", json={"name": "Bob work", "timezone": "UTC"}).json()
        r = c.post("/v1/keys", json={"name": "ada mcp", "agent_id": ada["id"]})
        assert r.status_code == 201, r.text
        return {"ada": ada, "bob": bob, "cal_a": cal_a, "cal_b": cal_b, "ada_key": r.json()["secret"]}
