"""One HTTP attempt: sign the stored payload, POST it through the guarded session, classify.

The session (webhooks/http.WebhookSession, one per sender thread) checks every request like
`outbound.fetch` and keeps connections alive per checked address; redirects are never followed. No database here — the
worker claims before and records after, so no transaction is ever held across the request.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from chronary.config import Settings
from chronary.outbound import BlockedTarget, OutboundError
from chronary.webhooks import policy
from chronary.webhooks.dispatch import Outcome
from chronary.webhooks.http import WebhookSession
from chronary.webhooks.sign import Signer

DEFAULT_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 1024 * 1024


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


async def send(
    session: WebhookSession,
    url: str,
    settings: Settings,
    *,
    event_id: str,
    payload: str,
    signer: Signer,
    now: datetime,
    timeout: float = DEFAULT_TIMEOUT,
) -> Outcome:
    body = payload.encode("utf-8")
    started = time.monotonic()
    headers = signer.headers(event_id, int(now.timestamp()), body)
    try:
        # httpx's timeout is per phase; this bounds the whole attempt, so a receiver that trickles
        # its answer cannot hold the endpoint's queue longer than `timeout` either
        async with asyncio.timeout(timeout):
            resp = await session.post(
                url, settings, headers=headers, content=body, timeout=timeout, max_bytes=MAX_RESPONSE_BYTES
            )
    except TimeoutError:
        return Outcome(error=f"timed out after {timeout:g} s", retryable=True, duration_ms=_ms(started))
    except BlockedTarget as exc:
        return Outcome(error=f"refused: {exc.reason}", retryable=False, duration_ms=_ms(started))
    except OutboundError as exc:
        return Outcome(error=exc.reason, retryable=exc.retryable, duration_ms=_ms(started))
    status = resp.status
    outcome = Outcome(status_code=status, body=policy.truncate_body(resp.body), duration_ms=_ms(started))
    if policy.succeeded(status):
        return outcome
    outcome.retryable = policy.retryable_status(status)
    outcome.retry_after = policy.parse_retry_after(resp.headers.get("retry-after"), now)
    if 300 <= status < 400:
        outcome.error = f"HTTP {status}: redirects are not followed for webhooks; use the final URL"
    else:
        outcome.error = f"HTTP {status}" + ("" if outcome.retryable else " (not retried: only 408, 429 and 5xx are)")
    return outcome
