"""ETags and conditional requests on single events, calendars and agents (optimistic concurrency).

The ETag is a strong validator: a hash of the resource's JSON representation, so it moves with
every change a client could see, whoever made it (a PATCH, /cancel, /confirm, an occurrence
stored as an exception, an EXDATE on its series, a sync pull, a timezone re-anchoring), with no
version column for every writer to remember to bump. `If-Match` becomes a `check` the service
runs on the resource as it is now, inside the write transaction (the writer runs one
transaction at a time), so check and write are one step: of two clients that read the same
ETag, one writes and the other gets 412 `precondition_failed` with the current ETag.
Without If-Match the last write wins, as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from hashlib import blake2b
from typing import Any, TypeVar

import msgspec
from litestar import Response
from litestar.datastructures import ResponseHeader
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from chronary.api._common import ERRORS
from chronary.errors import PreconditionFailed, ValidationError
from chronary.schemas.common import ErrorEnvelope

S = TypeVar("S", bound=msgspec.Struct)

# one list element: an optional (possibly weak) entity tag, then a comma or the end (RFC 9110 §8.8.3)
_ELEMENT = re.compile(r'[ \t]*(?:((?:W/)?"[\x21\x23-\x7e\x80-\xff]*")[ \t]*)?(,|\Z)')

IF_MATCH = Parameter(
    header="If-Match",
    default=None,
    required=False,
    description=(
        "Optimistic concurrency: the ETag you read (or a comma-separated list of them, or `*` for any "
        "current version). The write happens only if the resource is still at that version; otherwise "
        "412 `precondition_failed`, nothing is written, and the answer's `ETag` header is the current "
        "version. Weak tags (`W/…`) never match. Without this header the last write wins."
    ),
)
IF_NONE_MATCH = Parameter(
    header="If-None-Match",
    default=None,
    required=False,
    description="An ETag you hold (or a list, or `*`): 304 Not Modified, no body, while it is still current.",
)
ETAG_HEADER = [
    ResponseHeader(
        name="ETag",
        documentation_only=True,
        value="",  # only its type is used: the header's schema is a string
        description="The resource's current version (a strong ETag): send it back as `If-Match` to change it safely.",
        example='"4886d8ecceef726a0d2e4d63178c0925"',
    )
]
PRECONDITION_FAILED = {
    412: ResponseSpec(
        data_container=ErrorEnvelope,
        description="precondition_failed: If-Match names a version that is no longer current; the `ETag` header has "
        "the current one",
        generate_examples=False,
    )
}
WRITE_ERRORS = {**ERRORS, **PRECONDITION_FAILED}  # a conditional write's documented errors
CONDITIONAL = (
    "Send `If-Match` with the ETag you read to change it only if nobody else has since (412 "
    "`precondition_failed` with the current `ETag` otherwise)."
)
NOT_MODIFIED = {304: ResponseSpec(data_container=None, description="Not modified: If-None-Match holds the current ETag")}


def etag_of(resource: msgspec.Struct) -> str:
    """A strong ETag: 128 bits of BLAKE2b over the canonical JSON (dict keys sorted) of what clients see."""
    return '"' + blake2b(msgspec.json.encode(resource, order="deterministic"), digest_size=16).hexdigest() + '"'


def _tags(value: str, header: str) -> list[str] | None:
    """The entity tags of an If-Match / If-None-Match value, as sent (`W/` kept); None for `*`."""
    text = value.strip(" \t")
    if text == "*":
        return None
    tags: list[str] = []
    pos = 0
    while True:
        m = _ELEMENT.match(text, pos)
        if m is None:
            break
        if m.group(1):
            tags.append(m.group(1))
        if not m.group(2):  # the end
            if tags:
                return tags
            break
        pos = m.end()
    raise ValidationError(f'{header} must be * or a comma-separated list of quoted ETags such as "3f2a…"', header)


def if_match(value: str | None) -> Callable[[Any], None] | None:
    """The service's `check` for an If-Match header (None without one). A malformed header is
    400 before anything runs; a mismatch, in the transaction, is 412 with the current ETag."""
    if value is None:
        return None
    tags = _tags(value, "If-Match")

    def check(current: msgspec.Struct) -> None:
        etag = etag_of(current)
        if tags is None or etag in tags:  # a weak tag starts W/ and so never equals ours
            return
        kind = type(current).__name__.lower()
        raise PreconditionFailed(
            f"The {kind} {getattr(current, 'id', '')} has changed: its current version is ETag {etag}, "
            f"not the one If-Match named. Nothing was written; read it again and retry.",
            etag,
        )

    return check


def _none_match(value: str, etag: str) -> bool:
    """If-None-Match uses weak comparison; a malformed value never matches (the GET answers in full)."""
    try:
        tags = _tags(value, "If-None-Match")
    except ValidationError:
        return False
    return tags is None or etag in {t.removeprefix("W/") for t in tags}


def tagged(resource: S, status_code: int | None = None) -> Response[S]:
    """The answer for a resource, with its ETag."""
    return Response(resource, status_code=status_code, headers={"ETag": etag_of(resource)})


def conditional(resource: S, if_none_match: str | None) -> Response[S]:
    """A GET answer: 304 with only the ETag when If-None-Match still holds it, else the resource."""
    etag = etag_of(resource)
    if if_none_match is not None and _none_match(if_none_match, etag):
        return Response(None, status_code=304, headers={"ETag": etag})  # type: ignore[arg-type]
    return Response(resource, headers={"ETag": etag})
