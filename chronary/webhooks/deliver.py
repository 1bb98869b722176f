"""One HTTP attempt: sign the stored payload, POST it through the guarded client, classify.

No database here — the worker claims before and records after, so no transaction is ever
held across the request.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import httpx

from chronary.config import Settings
from chronary.outbound import BlockedTarget, OutboundError, fetch
from chronary.webhooks import policy
from chronary.webhooks.dispatch import Outcome
from chronary.webhooks.sign import signature_headers

DEFAULT_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 1024 * 1024


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


async def send(
    url: str,
    settings: Settings,
    *,
    event_id: str,
    payload: str,
    secret: str,
    now: datetime,
    timeout: float = DEFAULT_TIMEOUT,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Outcome:
    body = payload.encode("utf-8")
    started = time.monotonic()
    headers = signature_headers(event_id, secret, int(now.timestamp()), body)
    try:
        # httpx's timeout is per phase; this bounds the whole attempt, so a receiver that trickles
        # its answer cannot hold the endpoint's queue longer than `timeout` either
        async with asyncio.timeout(timeout):
            resp = await fetch(
                url,
                settings,
                method="POST",
                headers=headers,
                content=body,
                timeout=timeout,
                max_bytes=MAX_RESPONSE_BYTES,
                max_redirects=0,
                transport=transport,
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
