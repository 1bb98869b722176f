"""Outbound HTTP for the providers that speak JSON over HTTPS (Google Calendar, Microsoft Graph).

`ApiClient` wraps one `httpx.AsyncClient` on `chronary.outbound.GuardedTransport` (connections
that would reach this server itself are refused at connect time; `outbound.ssl_context()` honours
SSL_CERT_FILE / REQUESTS_CA_BUNDLE, so a private CA works; environment proxies are off) and adds:

- a request budget per account (`Budget`, a token bucket: N requests a minute on average, bursts
  of N/6), shared by every provider object of one account (`budget_for`), so a sync round, a
  push renewal and a webhook-triggered round together stay inside the provider's per-user quota;
- retries of 429, 5xx and provider-declared rate-limit answers (Google's 403 rateLimitExceeded)
  with exponential backoff and jitter, honouring Retry-After (seconds or an HTTP date): at most
  `MAX_RETRIES` retries and `MAX_SLEEP` seconds of sleeping in one call. When it still fails the
  call raises `ProviderError(reason, retry_after=…)`, and the engine waits at least that long;
- network failures as `Unreachable`, a refused target as a non-retryable `ProviderError`;
- optionally, a limit on requests in flight per account (`Limit`, `limit_for`; Graph allows four
  concurrent requests per mailbox), also shared by every provider object of one account.

Nothing here logs a header or a body: tokens travel in Authorization headers and form bodies.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from chronary.outbound import BlockedTarget, GuardedTransport, OutboundError
from chronary.providers.base import Account, ProviderError, Unreachable

log = logging.getLogger("chronary.providers.http")

TIMEOUT = 30.0
MAX_RETRIES = 3  # retries within one call (so at most 4 attempts)
MAX_SLEEP = 30.0  # seconds one call may spend sleeping between attempts
BACKOFF_BASE = 1.0  # first backoff step, seconds: 1, 2, 4 (+ up to one step of jitter)
BUDGET_MAX_WAIT = 60.0  # a longer wait for the budget fails the call instead (retry_after says when)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})

Sleep = Callable[[float], Awaitable[None]]


class Budget:
    """A token bucket: `per_minute` requests a minute on average, at most `burst` at once.

    Thread-safe and not bound to an event loop (a reservation is computed under a lock, the wait
    happens outside it), so provider objects in different loops or threads can share one.
    """

    def __init__(self, per_minute: int, *, burst: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = max(1, int(per_minute))
        self.rate = self.per_minute / 60.0  # tokens a second
        self.capacity = float(burst if burst is not None else max(1, self.per_minute // 6))
        self.clock = clock
        self._tokens = self.capacity
        self._last = clock()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take one token now; the seconds the caller must wait before using it (0: none)."""
        with self._lock:
            now = self.clock()
            self._tokens = min(self.capacity, self._tokens + max(0.0, now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def refund(self) -> None:
        """Give back a reserved token that was not used."""
        with self._lock:
            self._tokens = min(self.capacity, self._tokens + 1.0)

    async def acquire(self, sleep: Sleep = asyncio.sleep, max_wait: float = BUDGET_MAX_WAIT) -> float:
        """Wait for a token; returns the seconds waited. Raises ProviderError(retry_after) when
        the wait would exceed `max_wait` (many rounds of one account at once)."""
        wait = self.reserve()
        if wait > max_wait:
            self.refund()
            raise ProviderError("the request budget for this account is used up for now", retry_after=wait)
        if wait > 0:
            await sleep(wait)
        return wait


_budgets: dict[tuple[str, str], Budget] = {}
_budgets_lock = threading.Lock()


def budget_for(provider: str, account_key: str, per_minute: int) -> Budget:
    """The one budget of (provider, account), created on first use; a changed setting replaces it."""
    key = (provider, account_key)
    with _budgets_lock:
        budget = _budgets.get(key)
        if budget is None or budget.per_minute != max(1, int(per_minute)):
            budget = _budgets[key] = Budget(per_minute)
        return budget


class Limit:
    """At most `size` requests in flight at once. Thread-safe and not bound to an event loop (a
    waiter is woken in its own loop), so provider objects in different loops can share one; a
    freed slot passes to the longest waiter first."""

    def __init__(self, size: int) -> None:
        self.size = max(1, int(size))
        self.active = 0
        self._lock = threading.Lock()
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self.active < self.size and not self._waiters:
                self.active += 1
                return
            fut: asyncio.Future[None] = loop.create_future()
            waiter = (loop, fut)
            self._waiters.append(waiter)
        try:
            await fut
        except asyncio.CancelledError:
            with self._lock:
                if waiter in self._waiters:  # still waiting: just leave the queue
                    self._waiters.remove(waiter)
                    raise
            if fut.done() and not fut.cancelled():  # the slot was handed over just before the cancel
                self.release()
            raise  # (a hand-over still on its way sees the cancelled future and passes the slot on)

    def release(self) -> None:
        with self._lock:
            while self._waiters:
                loop, fut = self._waiters.popleft()
                try:
                    loop.call_soon_threadsafe(self._hand_over, fut)
                except RuntimeError:  # that waiter's loop is closed
                    continue
                return  # the slot passes to the waiter: `active` stays
            self.active -= 1

    def _hand_over(self, fut: asyncio.Future[None]) -> None:
        if fut.cancelled():
            self.release()
        else:
            fut.set_result(None)


_limits: dict[tuple[str, str], Limit] = {}


def limit_for(provider: str, account_key: str, size: int) -> Limit:
    """The one in-flight limit of (provider, account), created on first use."""
    key = (provider, account_key)
    with _budgets_lock:
        limit = _limits.get(key)
        if limit is None or limit.size != max(1, int(size)):
            limit = _limits[key] = Limit(size)
        return limit


def account_key(account: Account, secret_name: str = "refresh_token") -> str:
    """A stable key for an account's budget: its username, else a digest of a secret (never the
    secret itself), else "anonymous"."""
    if account.username:
        return account.username.strip().lower()
    secret = account.secrets.get(secret_name) or account.secrets.get("access_token")
    if secret:
        return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:24]
    return "anonymous"


def retry_after(headers: Mapping[str, str], now: Callable[[], datetime] | None = None) -> float | None:
    """Retry-After as seconds from now (delta-seconds or an HTTP date); None when absent/invalid."""
    raw = (headers.get("retry-after") or "").strip()
    if not raw:
        return None
    if raw.isdigit():
        return float(raw)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now() if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def requests_verify() -> str | bool:
    """What to give `requests` as `verify` (OAuth token endpoints through google-auth/oauthlib):
    the same trust store `outbound.ssl_context()` uses, so a private CA works for both."""
    return os.environ.get("SSL_CERT_FILE") or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_DIR") or True


def _where(url: str) -> str:
    """host/path of a URL for logs and reasons: never the query (page and sync tokens)."""
    parts = urlsplit(url)
    return f"{parts.hostname or ''}{parts.path}"


class ApiClient:
    """One provider account's HTTP client: budget, retries and error mapping (module doc).

    `limit` caps the requests in flight (held while a request is on the wire, never while
    sleeping). `rate_limited(response)` says whether a non-429 answer is the provider's way of saying
    "slow down" (Google answers 403 rateLimitExceeded). `sleep`, `wall` and `jitter` are
    injectable for tests.
    """

    def __init__(
        self,
        settings: Any,
        *,
        name: str,
        budget: Budget | None = None,
        limit: Limit | None = None,
        rate_limited: Callable[[httpx.Response], bool] | None = None,
        sleep: Sleep = asyncio.sleep,
        wall: Callable[[], datetime] | None = None,
        jitter: Callable[[], float] = random.random,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.budget = budget
        self.limit = limit
        self.rate_limited = rate_limited
        self.sleep = sleep
        self.wall = wall
        self.jitter = jitter
        self.requests = 0  # requests sent (attempts included): telemetry and tests
        self.slept = 0.0  # seconds spent in backoff sleeps
        self._client = httpx.AsyncClient(
            transport=transport or GuardedTransport(settings), trust_env=False, timeout=TIMEOUT, follow_redirects=False
        )

    def backoff(self, attempt: int) -> float:
        step = BACKOFF_BASE * (2**attempt)
        return step + step * self.jitter()

    def _retryable(self, resp: httpx.Response) -> bool:
        if resp.status_code in RETRY_STATUSES:
            return True
        return self.rate_limited is not None and self.rate_limited(resp)

    async def _attempt(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None,
        json: Any,
        data: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        """One request on the wire, inside the in-flight limit when there is one."""
        if self.limit is not None:
            await self.limit.acquire()
        try:
            return await self._client.request(method, url, params=params, json=json, data=data, headers=dict(headers or {}))
        finally:
            if self.limit is not None:
                self.limit.release()

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        budget: bool = True,
    ) -> httpx.Response:
        """One logical request; answers the final response (any status but the retried ones),
        or raises ProviderError/Unreachable (module doc)."""
        slept = 0.0
        attempt = 0
        while True:
            if budget and self.budget is not None:
                await self.budget.acquire(self.sleep)
            self.requests += 1
            try:
                resp = await self._attempt(method, url, params=params, json=json, data=data, headers=headers)
            except BlockedTarget as exc:
                raise ProviderError(f"{self.name}: {exc.reason}", retryable=False) from None
            except OutboundError as exc:
                raise Unreachable(f"{self.name}: cannot reach {_where(url)} ({exc.reason})") from None
            except httpx.TimeoutException:
                raise Unreachable(f"{self.name}: {_where(url)} timed out after {TIMEOUT:g} s") from None
            except httpx.TransportError as exc:
                delay = self.backoff(attempt)
                if method.upper() in IDEMPOTENT and attempt < MAX_RETRIES and slept + delay <= MAX_SLEEP:
                    log.info("%s: %s %s failed (%s); retrying", self.name, method, _where(url), type(exc).__name__)
                    await self.sleep(delay)
                    slept += delay
                    self.slept += delay
                    attempt += 1
                    continue
                raise Unreachable(f"{self.name}: cannot reach {_where(url)} ({type(exc).__name__})") from None
            if not self._retryable(resp):
                return resp
            hint = retry_after(resp.headers, self.wall)
            delay = hint if hint is not None else self.backoff(attempt)
            if attempt >= MAX_RETRIES or slept + delay > MAX_SLEEP:
                what = "is rate limiting us" if resp.status_code in (403, 429) else "is unavailable"
                raise ProviderError(
                    f"{self.name} {what} (HTTP {resp.status_code} for {method} {_where(url)})",
                    retry_after=max(delay, hint or 0.0),
                )
            log.info(
                "%s: HTTP %d for %s %s; retry %d in %.1f s",
                self.name,
                resp.status_code,
                method,
                _where(url),
                attempt + 1,
                delay,
            )
            await self.sleep(delay)
            slept += delay
            self.slept += delay
            attempt += 1

    async def close(self) -> None:
        await self._client.aclose()
