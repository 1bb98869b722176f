"""Signed webhooks: what the server sends, and how a receiver checks it.

The server side lives in `dispatch` (fan-out, claim, record), `deliver` (one signed POST),
`policy` (retry schedule, endpoint disabling) and `chronary/workers/webhooks.py`. This package's
top level is safe for receivers to import: it needs only the standard library.

Receiving Chronary webhooks
---------------------------
Every delivery is an HTTP POST with a JSON body
``{"id": "whe_…", "type": "event.updated", "created_at": "…Z", "data": {"object": {…},
"previous": {…}}}`` (``data.object`` is the resource as the API returns it; ``previous`` holds
the old values of changed fields on updates) and three headers:

- ``Chronary-Webhook-Id``: the payload id. Retries of the same change carry the same id, and a
  delivery can arrive more than once (at-least-once), so store ids you have processed and skip
  repeats.
- ``Chronary-Webhook-Timestamp``: unix seconds when this attempt was signed.
- ``Chronary-Webhook-Signature``: ``v1=<hex HMAC-SHA256(secret, "{timestamp}.{raw body}")>``.

Recipe (any framework; verify the *raw* body bytes before parsing JSON)::

    from chronary.webhooks import verify, WebhookVerificationError

    def handle(raw_body: bytes, headers) -> int:
        try:
            verify(raw_body, headers, secret="whsec_…")   # constant-time, 5-minute tolerance
        except WebhookVerificationError:
            return 400                                     # forged, modified or replayed
        event = json.loads(raw_body)
        if already_seen(event["id"]):
            return 200                                     # duplicate: acknowledge, do nothing
        enqueue(event)                                     # do slow work later
        return 200                                         # answer 2xx within 10 s

Without Chronary installed: compute ``hmac.new(secret.encode(), f"{ts}.".encode() + raw_body,
sha256).hexdigest()``, compare it to the ``v1=`` value with ``hmac.compare_digest``, and reject
timestamps more than 300 s from your clock.

Chronary treats any 2xx as delivered. Network errors, timeouts (10 s), 408, 429 and 5xx are
retried after 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, 6 h and 12 h (± 10 % jitter; a larger
``Retry-After`` wins), then the delivery is marked failed; other 4xx and 3xx fail at once.
An endpoint whose attempts only fail for 3 days is disabled (``disabled_reason`` says why);
PATCH its status back to ``active`` once the receiver is fixed. Deliveries of one resource reach
an endpoint in order; different resources and different endpoints do not wait for each other.
"""

from chronary.webhooks.sign import (
    DEFAULT_TOLERANCE,
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookVerificationError,
    compute_signature,
    signature_headers,
    verify,
)
from chronary.webhooks.types import EVENT_TYPES, TEST_TYPE

__all__ = [
    "DEFAULT_TOLERANCE",
    "EVENT_TYPES",
    "ID_HEADER",
    "SIGNATURE_HEADER",
    "TEST_TYPE",
    "TIMESTAMP_HEADER",
    "WebhookVerificationError",
    "compute_signature",
    "signature_headers",
    "verify",
]
