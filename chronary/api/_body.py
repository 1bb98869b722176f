"""Reading a request body ahead of the app, and handing it on as if it had not been read.

The Idempotency-Key middleware (it fingerprints the body) and the hot routes (api/_hot.py:
they answer from it, or pass the request on to the Litestar route) both read a body first.
"""

from __future__ import annotations

from typing import Any

from litestar.types import Receive

MAX_BODY_BYTES = 1024 * 1024  # the app's own limit (Litestar answers 413 above it)


async def read_body(receive: Receive, limit: int = MAX_BODY_BYTES) -> tuple[bytes, bool]:
    """The request body, and whether it was read whole (False: over `limit`, or a disconnect)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks), False
        if not message.get("more_body", False):
            return b"".join(chunks), True


def replaying(body: bytes, rest: Receive | None) -> Receive:
    """A receive that hands the app the body already read, then the rest of the stream (if any)."""
    sent = False

    async def receive() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": rest is not None}
        if rest is not None:
            return await rest()
        return {"type": "http.disconnect"}

    return receive
