"""Every failure leaves as the one error envelope, with the request id; never a traceback."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from chronary.errors import ChronaryError

log = logging.getLogger("chronary.api")

_TYPES = {
    400: "validation_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}
_BACKTICK = re.compile(r"`([^`]*)`")  # `*`: an empty key (`{"": 0}`) is a field name too
_AT_PATH = re.compile(r" - at `\$\.?([^`]*)`$")


def request_id_of(scope: Any) -> str:
    state = scope.get("state") or {}
    return state.get("request_id", "req_unknown")


def envelope(
    status: int,
    type_: str,
    message: str,
    param: str | None,
    request_id: str,
    headers: dict[str, str] | None = None,
    details: dict[str, Any] | None = None,
) -> Response[Any]:
    """The one error envelope; `details` adds documented extra keys (never replacing the four)."""
    error: dict[str, Any] = {"type": type_, "message": message, "param": param, "request_id": request_id}
    error.update((k, v) for k, v in (details or {}).items() if k not in error)
    return Response(content={"error": error}, status_code=status, media_type=MediaType.JSON, headers=headers or {})


def _query_alias(request: Request[Any, Any, Any], kwarg: str) -> str:
    """The name the client sent: a handler kwarg declared `Parameter(query="type")` is `type`."""
    try:
        param = request.route_handler.parsed_fn_signature.parameters.get(kwarg)
    except (AttributeError, KeyError):  # no handler (routing failed): keep the kwarg name
        return kwarg
    alias = getattr(getattr(param, "kwarg_definition", None), "query", None)
    return alias if isinstance(alias, str) and alias else kwarg


def _validation_detail(exc: ValidationException, request: Request[Any, Any, Any] | None = None) -> tuple[str, str | None]:
    """Turn Litestar/msgspec's validation detail into (message, param)."""
    extra = exc.extra if isinstance(exc.extra, list) else []
    if (
        extra
        and isinstance(extra[0], dict)
        and request is not None
        and str(extra[0].get("source")) in ("query", "ParamType.QUERY")
        and isinstance(extra[0].get("key"), str)
    ):
        extra = [{**extra[0], "key": _query_alias(request, extra[0]["key"])}, *extra[1:]]
    if not extra:
        detail = str(exc.detail)
        if "JSON is malformed" in detail or "malformed" in detail.lower():
            return f"Request body is not valid JSON ({detail})", None
        return detail, None
    first = extra[0] if isinstance(extra[0], dict) else {"message": str(extra[0])}
    message = str(first.get("message", "invalid value"))
    key = first.get("key")
    nested = _AT_PATH.search(message)
    if nested:
        message = message[: nested.start()]
        key = nested.group(1) if key in (None, "data") else f"{key}.{nested.group(1)}"
    if key in (None, "data"):
        if "unknown field" in message:
            field = _BACKTICK.search(message)
            name = field.group(1) if field else None
            return f"Unknown field {name!r} in request body", name
        if "missing required field" in message:
            field = _BACKTICK.search(message)
            name = field.group(1) if field else None
            return f"{name} is required", name
        if key == "data":
            if message.strip("'\"") == "data":  # Litestar's KeyError text for a missing body
                return "A JSON object request body is required", None
            return f"Request body: {message}", None
    key = str(key).replace(".[", "[")
    if "unknown field" in message:
        field = _BACKTICK.search(message)
        name = f"{key}.{field.group(1)}" if field else key
        return f"Unknown field {name!r} in request body", name
    if "missing required field" in message:
        field = _BACKTICK.search(message)
        name = f"{key}.{field.group(1)}" if field else key
        return f"{name} is required", name
    return f"Invalid {key}: {message[0].lower() + message[1:] if message else 'invalid value'}", key


def handle_chronary(request: Request[Any, Any, Any], exc: ChronaryError) -> Response[Any]:
    if exc.status >= 500:
        log.error("request %s failed: %s", request_id_of(request.scope), exc.message)
    rid = request_id_of(request.scope)
    return envelope(exc.status, exc.type, exc.message, exc.param, rid, exc.headers, exc.details)


def handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    rid = request_id_of(request.scope)
    status = exc.status_code
    if isinstance(exc, ValidationException) or status == 400:
        message, param = (
            _validation_detail(exc, request) if isinstance(exc, ValidationException) else (str(exc.detail), None)
        )
        return envelope(400, "validation_error", message, param, rid)
    if status == 404:
        return envelope(404, "not_found", f"No route for {request.method} {request.url.path}", None, rid)
    if status == 405:
        return envelope(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed on {request.url.path}",
            None,
            rid,
            dict(exc.headers or {}),
        )
    if status == 413:
        return envelope(413, "payload_too_large", "Request body is larger than 1 MiB", None, rid)
    if status >= 500:
        log.error("request %s failed with %s: %s", rid, status, exc.detail)
        return envelope(500, "internal_error", f"Internal error; quote request id {rid}", None, rid)
    return envelope(status, _TYPES.get(status, "error"), str(exc.detail), None, rid, dict(exc.headers or {}))


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    rid = request_id_of(request.scope)
    if isinstance(exc, RecursionError) and "deserializ" in str(exc):
        # msgspec gives up on absurdly deep JSON nesting: the client's fault, not ours
        return envelope(400, "validation_error", "Request body is nested too deeply", None, rid)
    log.exception("request %s: unhandled %s", rid, type(exc).__name__)
    return envelope(500, "internal_error", f"Internal error; quote request id {rid}", None, rid)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ChronaryError: handle_chronary,
    HTTPException: handle_http,
    Exception: handle_unexpected,
}
