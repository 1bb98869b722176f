"""Retry timing rules: the spec's schedule, ± 10 % jitter, Retry-After, and what is retried."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from chronary.webhooks import policy


def test_schedule_jitter_and_give_up():
    rng = random.Random(7)
    for attempt, base in enumerate((30, 120, 600, 1800, 3600, 10800, 21600, 43200), start=1):
        delays = [policy.retry_delay(attempt, rng=rng) for _ in range(200)]
        assert all(base * 0.9 <= d <= base * 1.1 for d in delays)
        assert max(delays) - min(delays) > base * 0.1  # really jittered
    assert policy.retry_delay(9) is None
    assert policy.retry_delay(1, retry_after=600, jitter=0) == 600
    assert policy.retry_delay(3, retry_after=5, jitter=0) == 600  # a smaller Retry-After does not shorten


def test_retry_after_forms():
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert policy.parse_retry_after("120", now) == 120
    assert policy.parse_retry_after(format_datetime(now + timedelta(minutes=5), usegmt=True), now) == 300
    assert policy.parse_retry_after("soon", now) is None and policy.parse_retry_after(None, now) is None
    assert policy.parse_retry_after("99999999", now) == policy.MAX_RETRY_AFTER


def test_what_is_retried_and_body_truncation():
    assert [s for s in (200, 204, 301, 400, 404, 408, 410, 429, 500, 503) if policy.retryable_status(s)] == [
        408,
        429,
        500,
        503,
    ]
    assert policy.truncate_body("é".encode() * 600) == "é" * 512
    assert len(policy.truncate_body(b"x" * 5000).encode()) == 1024
