"""Raw ASGI middleware: a request id on every response, and JSON-only request bodies.

Both run before routing so that even 404s and 405s carry `X-Request-Id`, and a body sent as
text/plain is refused with 415 instead of being parsed as JSON by accident.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Message, Receive, Scope, Send

from chronary import ids

_BODY_METHODS = {"POST", "PUT", "PATCH"}


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, on_request: Callable[[], None] | None = None) -> None:
        self.app = app
        self.on_request = on_request  # runtime.ApiActivity.seen: background work yields to requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:  # the enum (a str) lets mypy narrow Scope to HTTPScope
            await self.app(scope, receive, send)
            return
        if self.on_request is not None:
            self.on_request()
        request_id = ids.new_id("req")
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        if _json_only(scope):
            content_type = _body_type(scope)
            if content_type is not None and content_type != "application/json" and not content_type.endswith("+json"):
                await _reject_media_type(send_with_id, request_id, content_type)
                return
        await self.app(scope, receive, send_with_id)


def _json_only(scope: Scope) -> bool:
    """API bodies are JSON; what providers push to Connect's inbound URLs is theirs to shape."""
    if scope.get("method") not in _BODY_METHODS:  # GETs (most requests) stop here
        return False
    path = scope["path"]
    return path.startswith(("/v1/", "/connect/v1/")) and not path.startswith("/connect/v1/inbound/")


def _body_type(scope: Scope) -> str | None:
    """The media type of the request's body (lowercase; "" when not given), or None when there is
    no body (content-length 0, or neither a content-length nor a transfer-encoding). One pass
    over the headers: this runs for every POST, PUT and PATCH."""
    length = encoding = content_type = b""
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            length = length or value
        elif key == b"transfer-encoding":
            encoding = encoding or value
        elif key == b"content-type":
            content_type = content_type or value
    if length:
        if length.strip() == b"0":
            return None
    elif not encoding:
        return None
    return content_type.decode("latin-1").split(";")[0].strip().lower()


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return ""


async def _reject_media_type(send: Send, request_id: str, content_type: str) -> None:
    body = json.dumps(
        {
            "error": {
                "type": "unsupported_media_type",
                "message": f"Request bodies must be application/json (got {content_type or 'no content type'})",
                "param": None,
                "request_id": request_id,
            }
        }
    ).encode()
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": 415,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(start)
    await send(end)


def header_value(scope: Any, name: str) -> str:
    return _header(scope, name.lower().encode())
