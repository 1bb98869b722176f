"""GET /ical/{token}.ics (public: the token is the key) and POST /v1/calendars/{id}/rotate-feed.

Conditional GET is done here because Litestar has no automatic 304: If-None-Match against the
strong ETag first, then If-Modified-Since. Each client IP gets `feed_rate_limit_per_minute`
requests a minute (a sliding one-minute window) and then 429 with Retry-After.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from litestar import HttpMethod, Request, Response, post, route
from litestar.params import Parameter
from litestar.response import Stream

from chronary.api import feed_tokens
from chronary.api._common import ERRORS
from chronary.config import Settings
from chronary.errors import NotFound, RateLimited
from chronary.schemas.calendars import Calendar
from chronary.services import feeds as svc
from chronary.services.context import Ctx
from chronary.store.db import Database

CACHE_CONTROL = "max-age=300"
SEND_BYTES = 512 * 1024
MAX_TRACKED_IPS = 50_000


class RateLimiter:
    """Sliding one-minute window per key; memory is bounded by forgetting idle keys."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}

    def check(self, key: str, per_minute: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= MAX_TRACKED_IPS:
                    self._forget_idle(now)
                hits = self._hits[key] = deque()
            while hits and hits[0] <= now - 60:
                hits.popleft()
            if len(hits) >= per_minute:
                retry = math.ceil(hits[0] + 60 - now)
                raise RateLimited(f"Too many feed requests; retry in {retry} s", retry)
            hits.append(now)

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - 60]:
            del self._hits[key]


def _limiter(request: Request[Any, Any, Any]) -> RateLimiter:
    state = request.app.state
    if not hasattr(state, "feed_rate_limiter"):
        state.feed_rate_limiter = RateLimiter()
    return state.feed_rate_limiter


def _not_modified(request: Request[Any, Any, Any], feed: svc.Feed) -> bool:
    inm = request.headers.get("if-none-match")
    if inm is not None:
        tags = {t.strip() for t in inm.split(",")}
        return "*" in tags or feed.etag in tags
    ims = request.headers.get("if-modified-since")
    if ims:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
        return since.tzinfo is not None and feed.last_modified <= since
    return False


@route(
    "/ical/{segment:str}",
    http_method=[HttpMethod.GET, HttpMethod.HEAD],  # calendar apps probe feeds with HEAD
    tags=["feeds"],
    summary="A calendar as an iCalendar feed (no API key; the token is the access control)",
    description=(
        "Path: `/ical/{token}.ics` as shown in a calendar's `ical_url` or a feed token's (POST "
        "/v1/calendars/{id}/feed-tokens, scoped full, busy or to a window). RFC 5545 body with "
        "REFRESH-INTERVAL and X-PUBLISHED-TTL (PT5M) and a strong "
        "ETag (If-None-Match → 304), Last-Modified (If-Modified-Since → 304) and "
        "Cache-Control: max-age=300. HEAD answers the same headers without the body. "
        "Unknown or rotated token, or deleted calendar → 404. "
        "Too many requests from one address → 429 with Retry-After."
    ),
    responses={404: ERRORS[404], 429: ERRORS[429]},
    media_type="text/calendar",
)
async def ical_feed(
    segment: str, request: Request[Any, Any, Any], db: Database, settings: Settings
) -> Response[bytes] | Stream:
    client = request.client.host if request.client else "unknown"
    _limiter(request).check(client, settings.feed_rate_limit_per_minute)
    if not segment.endswith(".ics"):
        raise NotFound("No feed at this address", None)
    token = segment[:-4]
    # feeds per device (issue 21): the calendar's own token as before, else a feed_tokens one
    feed = await feed_tokens.lookup(request, db, token, settings.feed_past_days)
    headers = {
        "ETag": feed.etag,
        "Last-Modified": format_datetime(feed.last_modified, usegmt=True),
        "Cache-Control": CACHE_CONTROL,
    }
    if _not_modified(request, feed):
        return Response(content=b"", status_code=304, headers=headers, media_type="text/calendar")
    headers["Content-Disposition"] = 'inline; filename="calendar.ics"'
    headers["Content-Length"] = str(feed.length)
    if request.method == HttpMethod.HEAD:
        return Response(content=b"", status_code=200, headers=headers, media_type="text/calendar")
    return Stream(_body(feed), status_code=200, headers=headers, media_type="text/calendar")


async def _body(feed: svc.Feed) -> AsyncIterator[bytes]:
    """The body in pieces of about SEND_BYTES: a 50 MB feed is never one string in memory, and
    the server does not pay a send per ~60 KB chunk."""
    pending: list[bytes] = []
    size = 0
    for part in feed.parts():
        pending.append(part)
        size += len(part)
        if size >= SEND_BYTES:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


@post(
    "/calendars/{calendar_id:str}/rotate-feed",
    status_code=200,
    tags=["feeds"],
    summary="Issue a new feed token (the old feed URL answers 404 at once)",
    description="Returns the calendar with its new `ical_url`.",
    responses=ERRORS,
)
async def rotate_feed(db: Database, ctx: Ctx, calendar_id: str = Parameter(description="cal_ id")) -> Calendar:
    return await db.write(lambda tx: svc.rotate(tx, ctx, calendar_id))


PUBLIC_ROUTES = [ical_feed]
ROUTES = [rotate_feed]
