"""What every connector test does: run one connector call on the guarded client, then close it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from chronary.config import Settings
from chronary.connectors import client
from chronary.connectors.base import Connector

T = TypeVar("T")
C = TypeVar("C", bound=Connector)


def run_connector(kind: type[C], settings: Settings, credentials: dict[str, str], fn: Callable[[C], Awaitable[T]]) -> T:
    async def main() -> T:
        http = client(settings)
        try:
            return await fn(kind(credentials, settings, http))
        finally:
            await http.aclose()

    return asyncio.run(main())
