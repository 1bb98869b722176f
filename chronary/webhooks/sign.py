"""Signing and verifying webhook requests: HMAC-SHA256 over "{timestamp}.{body}".

The server signs with `signature_headers`; receivers check with `verify`, which compares in
constant time and refuses timestamps outside a tolerance so a captured request cannot be
replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

ID_HEADER = "Chronary-Webhook-Id"
TIMESTAMP_HEADER = "Chronary-Webhook-Timestamp"
SIGNATURE_HEADER = "Chronary-Webhook-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE = 300


class WebhookVerificationError(Exception):
    """The request is not a genuine, fresh Chronary webhook; `str(exc)` says why."""


def _bytes(value: bytes | bytearray | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def compute_signature(secret: str, timestamp: int | str, body: bytes | str) -> str:
    """Hex HMAC-SHA256(secret, "{timestamp}.{body}")."""
    message = str(timestamp).encode("ascii") + b"." + _bytes(body)
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_headers(event_id: str, secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"{SCHEME}={compute_signature(secret, timestamp, body)}",
        "Content-Type": "application/json",
    }


class Signer:
    """`signature_headers` for one secret with the HMAC key set up once (the sender signs every
    delivery of an endpoint with the same secret)."""

    def __init__(self, secret: str) -> None:
        self._mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)

    def signature(self, timestamp: int, body: bytes) -> str:
        mac = self._mac.copy()
        mac.update(b"%d." % timestamp)
        mac.update(body)
        return mac.hexdigest()

    def headers(self, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        return {
            ID_HEADER: event_id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: f"{SCHEME}={self.signature(timestamp, body)}",
            "Content-Type": "application/json",
        }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that works for plain dicts as well as framework header objects."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        for key, item in headers.items():
            if key.lower() == lowered:
                return item
    return value


def verify(
    payload: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    tolerance_seconds: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Raise WebhookVerificationError unless `payload` was signed by `secret` within tolerance.

    `payload` must be the raw request body exactly as received (not re-serialized JSON).
    The signature header may carry several space-separated `v1=` values; one match is enough.
    """
    if not secret:
        raise WebhookVerificationError("no webhook secret given")
    raw_ts = _header(headers, TIMESTAMP_HEADER)
    raw_sig = _header(headers, SIGNATURE_HEADER)
    if not raw_ts:
        raise WebhookVerificationError(f"missing {TIMESTAMP_HEADER} header")
    if not raw_sig:
        raise WebhookVerificationError(f"missing {SIGNATURE_HEADER} header")
    try:
        timestamp = int(raw_ts.strip())
    except ValueError:
        raise WebhookVerificationError(f"{TIMESTAMP_HEADER} is not unix seconds: {raw_ts!r}") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise WebhookVerificationError(
            f"timestamp {timestamp} is outside the {tolerance_seconds} s tolerance (possible replay)"
        )
    expected = compute_signature(secret, timestamp, payload)
    candidates = [part.split("=", 1)[1] for part in raw_sig.replace(",", " ").split() if part.startswith(SCHEME + "=")]
    if not candidates:
        raise WebhookVerificationError(f"{SIGNATURE_HEADER} has no {SCHEME}= signature")
    # compare every candidate so timing does not depend on which one matched
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(candidate.encode("ascii", "replace"), expected.encode("ascii"))
    if not matched:
        raise WebhookVerificationError("signature does not match (wrong secret or modified body)")
