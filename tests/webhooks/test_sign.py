"""chronary.webhooks.verify: genuine requests pass; tampering, wrong secrets and replays do not."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from chronary.webhooks import WebhookVerificationError, signature_headers, verify

SECRET = "whsec_test-secret"
BODY = b'{"id":"whe_1","type":"agent.created","created_at":"2026-01-05T09:00:00.000Z","data":{"object":{}}}'
NOW = 1_767_603_600


def signed(body: bytes = BODY, ts: int = NOW, secret: str = SECRET) -> dict[str, str]:
    return signature_headers("whe_1", secret, ts, body)


def test_genuine_request_verifies_with_bytes_or_text_and_any_header_case():
    headers = signed()
    verify(BODY, headers, SECRET, now=NOW)
    verify(BODY.decode(), {k.lower(): v for k, v in headers.items()}, SECRET, now=NOW + 299)


def test_signature_is_hmac_sha256_over_timestamp_dot_body():
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signed()["Chronary-Webhook-Signature"] == f"v1={expected}"
    assert signed()["Chronary-Webhook-Timestamp"] == str(NOW)


@pytest.mark.parametrize(
    ("body", "headers", "secret", "now", "why"),
    [
        (BODY.replace(b"agent.created", b"agent.deleted"), signed(), SECRET, NOW, "does not match"),
        (BODY + b" ", signed(), SECRET, NOW, "does not match"),
        (BODY, signed(), "whsec_other", NOW, "does not match"),
        (BODY, signed(ts=NOW - 301), SECRET, NOW, "tolerance"),
        (BODY, signed(ts=NOW + 301), SECRET, NOW, "tolerance"),
        (BODY, {**signed(), "Chronary-Webhook-Timestamp": str(NOW + 1)}, SECRET, NOW, "does not match"),
        (BODY, {"Chronary-Webhook-Signature": signed()["Chronary-Webhook-Signature"]}, SECRET, NOW, "missing"),
        (BODY, {"Chronary-Webhook-Timestamp": str(NOW)}, SECRET, NOW, "missing"),
        (BODY, {**signed(), "Chronary-Webhook-Timestamp": "soon"}, SECRET, NOW, "unix seconds"),
        (BODY, {**signed(), "Chronary-Webhook-Signature": "v0=abc"}, SECRET, NOW, "no v1="),
        (BODY, signed(), "", NOW, "no webhook secret"),
    ],
    ids=[
        "tampered-body",
        "trailing-space",
        "wrong-secret",
        "stale",
        "future",
        "timestamp-swapped",
        "no-timestamp",
        "no-signature",
        "bad-timestamp",
        "other-scheme",
        "empty-secret",
    ],
)
def test_rejected(body, headers, secret, now, why):
    with pytest.raises(WebhookVerificationError, match=why):
        verify(body, headers, secret, now=now)


def test_tolerance_is_adjustable_and_several_signatures_are_accepted():
    old = signed(ts=NOW - 600)
    verify(BODY, old, SECRET, tolerance_seconds=900, now=NOW)
    both = {**signed(), "Chronary-Webhook-Signature": "v1=" + "0" * 64 + " " + signed()["Chronary-Webhook-Signature"]}
    verify(BODY, both, SECRET, now=NOW)


def test_receivers_can_import_the_helper_without_server_dependencies():
    import subprocess
    import sys

    code = (
        "import sys, chronary.webhooks as w; w.verify; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'apsw', 'litestar', 'httpx', 'msgspec', 'uvicorn'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip() == "[]"


def test_the_senders_precomputed_key_signs_like_signature_headers():
    from chronary.webhooks.sign import Signer, signature_headers

    signer = Signer("whsec_abc")
    for ts, body in ((1_700_000_000, b'{"a": 1}'), (1_700_000_001, b""), (5, "é".encode())):
        assert signer.headers("whe_1", ts, body) == signature_headers("whe_1", "whsec_abc", ts, body)
        verify(body, signer.headers("whe_1", ts, body), "whsec_abc", now=ts)
