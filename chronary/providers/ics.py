"""The `ics` provider: a subscribed iCalendar feed (a .ics URL), read-only, one calendar.

Each round is one conditional GET (If-None-Match / If-Modified-Since from the cursor), through
chronary.outbound (timeout, size cap, bounded redirects, never this server). The whole body is
decoded strictly before anything is returned, so a broken feed fails the round and changes
nothing already imported. Every listing is full: each UID is one RemoteEvent whose remote id is
the UID and whose etag is a digest of its decoded fields, so the merge skips what did not change.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from dataclasses import astuple
from zoneinfo import ZoneInfo

from chronary.ical.decode import decode_feed
from chronary.ical.model import CodecError, Resource
from chronary.outbound import OutboundError, fetch
from chronary.providers.base import Changes, ProviderError, RemoteCalendar, RemoteEvent, Window
from chronary.providers.base import Provider as BaseProvider

FEED_CALENDAR = "feed"  # the one remote calendar of a feed
FETCH_TIMEOUT = 20.0
MAX_FEED_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5


class FeedUnreadable(ProviderError):
    """The body is not an importable feed; `__cause__` holds an unexpected parser error, if any."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, retryable=True)


def describe_status(status: int) -> str:
    if status in (401, 403):
        return f"the feed server refused access (HTTP {status}); check username and password"
    if status == 404:
        return "the feed server answered 404 Not Found; check the URL"
    return f"the feed server answered HTTP {status}"


def digest(resource: Resource) -> str:
    """A version tag of one decoded UID: equal exactly when every modeled field is."""
    pieces = [astuple(p) for p in (resource.master, *resource.overrides)]
    text = json.dumps([resource.uid, pieces], ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Provider(BaseProvider):
    name = "ics"

    @property
    def url(self) -> str:
        assert self.account.server_url is not None
        return self.account.server_url

    async def login(self) -> str:
        return self.account.username or ""

    async def list_calendars(self) -> list[RemoteCalendar]:
        return [RemoteCalendar(FEED_CALENDAR, "", read_only=True)]

    async def fetch_changes(
        self,
        calendar: RemoteCalendar,
        cursor: str | None,
        known: Mapping[str, str | None],
        window: Window | None = None,
        page: str | None = None,
    ) -> Changes:
        validators = json.loads(cursor) if cursor else {}
        headers = {"Accept": "text/calendar, */*;q=0.5"}
        if validators.get("etag"):
            headers["If-None-Match"] = validators["etag"]
        if validators.get("last_modified"):
            headers["If-Modified-Since"] = validators["last_modified"]
        secrets = self.account.secrets
        auth = (self.account.username, secrets.get("password") or "") if self.account.username else None
        try:
            resp = await fetch(
                self.url,
                self.settings,
                headers=headers,
                auth=auth,
                timeout=FETCH_TIMEOUT,
                max_bytes=MAX_FEED_BYTES,
                max_redirects=MAX_REDIRECTS,
            )
        except OutboundError as exc:
            raise ProviderError(f"cannot fetch the feed: {exc.reason}") from None
        if resp.status == 304:
            return Changes(cursor=cursor, unchanged=True)
        if not 200 <= resp.status < 300:
            raise ProviderError(describe_status(resp.status))
        try:  # in a thread: decoding a large feed takes a while
            resources = await asyncio.to_thread(decode_feed, resp.body, ZoneInfo(calendar.local_timezone), strict=True)
        except CodecError as exc:
            raise FeedUnreadable(f"the feed cannot be imported: {exc}") from None
        except Exception as exc:  # a parser bug on hostile input: a failed round, the cause logged
            raise FeedUnreadable(f"the feed cannot be imported: {type(exc).__name__}") from exc
        events = []
        for r in resources:
            tag = digest(r)
            if known.get(r.uid) != tag:
                events.append(RemoteEvent(r.uid, tag, r.uid, r.master, r.overrides))
        new_cursor = json.dumps({"etag": resp.headers.get("etag"), "last_modified": resp.headers.get("last-modified")})
        return Changes(events=events, present={r.uid for r in resources}, cursor=new_cursor, full=True)
