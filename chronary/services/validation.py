"""Rules shared by several resources: metadata size, reminders, emails, URLs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from chronary import limits
from chronary.config import Settings
from chronary.errors import PayloadTooLarge, ValidationError
from chronary.outbound import HTTP_SCHEMES, InvalidUrl, OutboundError, check_target, parse_url
from chronary.store.rows import json_bytes

METADATA_MAX_BYTES = 16 * 1024
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")  # fullmatch: `$` would accept a trailing newline


def check_metadata(value: Any, param: str = "metadata") -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"{param} must be a JSON object", param)
    size = len(json_bytes(value))  # as stored
    if size > METADATA_MAX_BYTES:
        raise PayloadTooLarge(f"{param} is {size} bytes; the limit is {METADATA_MAX_BYTES} bytes (16 KB)", param)
    return value


def check_reminders(value: list[int] | None, param: str) -> list[int] | None:
    if value is None:
        return None
    if len(value) > limits.REMINDERS_MAX:
        raise ValidationError(f"{param} allows at most {limits.REMINDERS_MAX} entries", param)
    for i, minutes in enumerate(value):
        if (
            isinstance(minutes, bool)
            or not isinstance(minutes, int)
            or not limits.REMINDER_MINUTES_MIN <= minutes <= limits.REMINDER_MINUTES_MAX
        ):
            raise ValidationError(f"{param}[{i}] must be a whole number of minutes from 1 to 40320", f"{param}[{i}]")
    return sorted(set(value))


def check_email(value: str | None, param: str) -> str | None:
    if value is None:
        return None
    if len(value) > 254 or not _EMAIL.fullmatch(value):
        raise ValidationError(f"{param} is not a valid email address", param)
    return value


def check_url(value: str, param: str, schemes: Iterable[str] = HTTP_SCHEMES) -> str:
    """The one syntax check for every URL field (webhooks, subscriptions, connections, providers).

    Strict on purpose: a URL that different parsers read differently (control characters,
    spaces, backslashes, userinfo, numeric host shorthands) is how guards get bypassed. Whether
    the URL may be *called* (DNS, this server's own addresses) is `outbound.check_target`.
    """
    try:
        parse_url(value, schemes)
    except InvalidUrl as exc:
        raise ValidationError(f"{param}: {exc.reason}", param) from None
    return value


def check_callable_url(value: str, param: str, settings: Settings, schemes: Iterable[str] = HTTP_SCHEMES) -> str:
    """`check_url` plus the outbound guard (resolves the host: call it off the event loop, before
    the write transaction). Refuses this server's own addresses, aliases included, with a 400."""
    check_url(value, param, schemes)
    try:
        check_target(value, settings, schemes=schemes)
    except OutboundError as exc:
        raise ValidationError(f"{param}: {exc.reason}", param) from None
    return value
