"""When to retry a delivery, when to give up, and when to disable an endpoint.

Schedule from spec/webhooks.md: after the first attempt fails, retry after 30 s, 2 min, 10 min,
30 min, 1 h, 3 h, 6 h, 12 h (each ± 10 % jitter), then the delivery is failed. A larger
`Retry-After` from the receiver wins. An endpoint whose attempts have only failed for 3 days
is disabled.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

RETRY_SCHEDULE: tuple[float, ...] = (30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600)
JITTER = 0.10
DISABLE_AFTER = timedelta(days=3)
RESPONSE_BODY_LIMIT = 1024
MAX_RETRY_AFTER = 24 * 3600
LOG_RETENTION = timedelta(days=30)  # finished deliveries stay in the log this long


def retryable_status(status: int) -> bool:
    return status in (408, 429) or 500 <= status <= 599


def succeeded(status: int) -> bool:
    return 200 <= status <= 299


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - now).total_seconds()), MAX_RETRY_AFTER)


def retry_delay(
    attempts_made: int,
    retry_after: float | None = None,
    schedule: Sequence[float] = RETRY_SCHEDULE,
    jitter: float = JITTER,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds until the next attempt after `attempts_made` attempts, or None to give up."""
    if attempts_made < 1 or attempts_made > len(schedule):
        return None
    base = schedule[attempts_made - 1]
    spread = (rng or random).uniform(-jitter, jitter) if jitter else 0.0
    delay = base * (1 + spread)
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return delay


def truncate_body(body: bytes, limit: int = RESPONSE_BODY_LIMIT) -> str:
    """The first `limit` bytes of a response body as text (never split inside a character)."""
    return body[:limit].decode("utf-8", errors="ignore")
