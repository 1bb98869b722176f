"""One error hierarchy for the whole server; the API layer maps it to the one error envelope.

Services and the store raise these; nothing below `api/` knows about HTTP, only about the
`status` each kind of failure is documented to answer with.
"""

from __future__ import annotations

from typing import Any


class ChronaryError(Exception):
    """`details`: extra keys for the error object of the few errors documented to carry them
    (a 409 of if_free lists its `conflicts`); every other error stays the four keys."""

    status = 500
    type = "internal_error"

    def __init__(
        self,
        message: str,
        param: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers or {}
        self.details = details or {}


class ValidationError(ChronaryError):
    status = 400
    type = "validation_error"


class Unauthorized(ChronaryError):
    status = 401
    type = "unauthorized"


class Forbidden(ChronaryError):
    status = 403
    type = "forbidden"


class NotFound(ChronaryError):
    status = 404
    type = "not_found"


class MethodNotAllowed(ChronaryError):
    status = 405
    type = "method_not_allowed"


class Conflict(ChronaryError):
    status = 409
    type = "conflict"


class IdempotencyInProgress(Conflict):
    """A request with this Idempotency-Key is still running; retry shortly."""

    type = "idempotency_in_progress"


class PreconditionFailed(ChronaryError):
    """If-Match named a version that is no longer current: nothing was written; the answer
    carries the current ETag so the client can re-read and retry."""

    status = 412
    type = "precondition_failed"

    def __init__(self, message: str, current_etag: str, param: str | None = "If-Match"):
        super().__init__(message, param, headers={"ETag": current_etag})
        self.current_etag = current_etag


class PayloadTooLarge(ChronaryError):
    status = 413
    type = "payload_too_large"


class UnsupportedMediaType(ChronaryError):
    status = 415
    type = "unsupported_media_type"


class IdempotencyMismatch(ChronaryError):
    """An Idempotency-Key reused for a different request (method, path or body)."""

    status = 422
    type = "idempotency_mismatch"


class RateLimited(ChronaryError):
    status = 429
    type = "rate_limited"

    def __init__(self, message: str, retry_after: int, param: str | None = None):
        super().__init__(message, param, headers={"Retry-After": str(max(1, int(retry_after)))})
        self.retry_after = max(1, int(retry_after))


class UpstreamError(ChronaryError):
    """A provider or remote server failed in a way the caller should see (bad credentials, 5xx)."""

    status = 502
    type = "upstream_error"


class SchemaTooNew(RuntimeError):
    """The database was written by a newer Chronary; starting would risk corrupting it."""


def not_found(kind: str, ident: str) -> NotFound:
    return NotFound(f"No {kind} with id {ident!r}", None)
