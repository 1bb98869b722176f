"""Published iCal feeds: build a calendar's body once per revision and answer from a cache.

A feed request costs one indexed lookup of the token; when the calendar's `revision` (bumped on
every event change and calendar update) and the feed window are unchanged the cached body and
strong ETag are reused, so a 304 costs next to nothing. A rebuild reuses each unchanged event's
rendered VEVENT text from the previous build (kept compressed in chunks, see `feed_body`), so one
edit in a 100k-event calendar re-renders one event and recompresses one chunk; bodies are
streamed, never joined into one string.
"""

from __future__ import annotations

import hmac
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chronary.errors import NotFound
from chronary.ical import render
from chronary.schemas.calendars import Calendar
from chronary.services import changes, feed_body, feed_build
from chronary.services.calendars import load as load_calendar
from chronary.services.calendars import new_feed_token
from chronary.services.calendars import present as present_calendar
from chronary.services.calendars import to_struct as calendar_struct
from chronary.services.changes import Change, changed_fields
from chronary.services.context import Ctx
from chronary.store import calendars as cal_store
from chronary.store import feeds as feed_store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms, parse_stored, to_ts

MAX_CACHED_FEEDS = 256
MAX_CACHED_BYTES = 32 * 1024 * 1024  # compressed bodies kept; a 100k-event feed is ≈ 5 MB


@dataclass(frozen=True)
class Feed:
    calendar_id: str
    revision: int
    window_start_ts: int
    etag: str
    last_modified: datetime
    head: bytes
    chunks: tuple[feed_body.Chunk, ...]
    tail: bytes
    context: tuple[Any, ...]  # what every VEVENT depends on besides its own rows: reuse needs it equal
    length: int  # of the body, in bytes
    newest: str | None  # the newest updated_at and the largest events rowid it was built from:
    rowid: int  # the next build looks for rows changed after them
    updates: int  # builds since the last full one (feed_build.FULL_EVERY)
    tied: frozenset[str]  # the rows at `newest` as store.feeds.feed_tie shows them

    def parts(self) -> Iterator[bytes]:
        """The body in pieces (one compressed chunk of VEVENTs at a time): stream it."""
        return feed_body.parts(self.head, self.chunks, self.tail)

    @property
    def body(self) -> bytes:
        return b"".join(self.parts())

    @property
    def size(self) -> int:
        """Bytes kept for this feed (what the cache bounds), roughly."""
        return len(self.head) + len(self.tail) + sum(c.size for c in self.chunks) + sum(len(t) + 80 for t in self.tied)


class FeedCache:
    """Thread-safe: feeds are built on reader threads. A calendar's cached feed answers while its
    revision and window are unchanged, and is what its next build reuses VEVENTs from."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.feeds: OrderedDict[str, Feed] = OrderedDict()
        self.bytes = 0

    def feed(self, calendar_id: str, revision: int, window_start_ts: int) -> Feed | None:
        with self._lock:
            feed = self.feeds.get(calendar_id)
            if feed is None or feed.revision != revision or feed.window_start_ts != window_start_ts:
                return None
            self.feeds.move_to_end(calendar_id)
            return feed

    def previous(self, calendar_id: str) -> Feed | None:
        with self._lock:
            return self.feeds.get(calendar_id)

    def store(self, feed: Feed) -> None:
        with self._lock:
            old = self.feeds.pop(feed.calendar_id, None)
            if old is not None:
                self.bytes -= old.size
            self.feeds[feed.calendar_id] = feed
            self.bytes += feed.size
            while len(self.feeds) > 1 and (len(self.feeds) > MAX_CACHED_FEEDS or self.bytes > MAX_CACHED_BYTES):
                _, evicted = self.feeds.popitem(last=False)
                self.bytes -= evicted.size


CACHE = FeedCache()


def window_start(now: datetime, past_days: int) -> int:
    """Start of the feed window, at a whole UTC day so the cache key moves once a day."""
    day = (now - timedelta(days=past_days)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return to_ts(day)


def build(tx: Tx, calendar: dict[str, Any], window_ts: int, cache: FeedCache | None = None) -> Feed:
    """The calendar's feed, from what its previous build rendered.

    One aggregate pass (no Python-level loop) gives what the head needs and which rows changed
    since the previous build; when those are few, only their chunks are remade
    (`feed_build.update`), else every row's version is read and unchanged chunks are reused whole
    (`feed_build.full`). Either way only new or changed events are rendered, and no list of all
    rows is held.
    """
    cache = cache or CACHE
    conn = tx.conn
    cal_id = calendar["id"]
    tz = calendar["timezone"]
    defaults = calendar["default_reminders"]
    context = (tz, None if defaults is None else tuple(defaults))
    old = cache.previous(cal_id)
    if old is not None and (old.context != context or old.newest is None):
        old = None
    same_window = old is not None and old.window_start_ts == window_ts
    stats = feed_store.feed_stats(
        conn, cal_id, window_ts, old.newest if old and same_window else None, old.rowid if old and same_window else None
    )
    chunks = None
    updates = 0
    if old is not None and same_window and old.updates < feed_build.FULL_EVERY:
        # rows written in the very millisecond of the previous build's newest row show as ties
        # that differ from the ones it saw (what a row was is in `_TIE`, the id first)
        also = {tie.partition(":")[0] for tie in stats.tied - old.tied}
        chunks = feed_build.update(tx, calendar, window_ts, old.chunks, stats, also)
        updates = old.updates + 1
    if chunks is None:
        chunks = feed_build.full(tx, calendar, window_ts, old.chunks if old is not None else None)
        updates = 0
    tied: frozenset[str] = frozenset()
    if stats.newest is not None:
        # what the next build compares: the rows at the newest updated_at are the changed ones
        # when it moved past the previous build's, else the ones it already compared
        if updates and old is not None and stats.newest == old.newest:
            tied = stats.tied
        else:
            known = stats.changed if updates else None
            tied = feed_store.feed_tie(conn, cal_id, window_ts, stats.newest, known)
    zones = {zone if isinstance(zone, str) else tz for zone in stats.zones}
    first = render.first_year(min(window_ts, stats.first if stats.first is not None else window_ts))
    head = render.calendar_head(calendar["name"], tz, zones, first).encode("utf-8")
    tail = render.CALENDAR_END.encode("utf-8")
    # feed_state moves on every event change recorded through services/changes (deletions
    # included); the newest updated_at also covers writers that only bump the revision
    stamps = [
        parse_stored(calendar["updated_at"]),
        parse_stored(feed_store.changed_at(conn, cal_id)),
        parse_stored(stats.newest),
    ]
    last_modified = max(s for s in stamps if s is not None).replace(microsecond=0)
    return Feed(
        cal_id,
        calendar["revision"],
        window_ts,
        feed_body.etag(head, chunks, tail),
        last_modified,
        head,
        chunks,
        tail,
        context,
        len(head) + len(tail) + sum(c.length for c in chunks),
        stats.newest,
        stats.rowid,
        updates,
        tied,
    )


def load(tx: Tx, token: str, past_days: int, cache: FeedCache | None = None) -> Feed:
    """The feed behind `token`, from the cache when the calendar has not changed; 404 otherwise.

    The token is found through the unique index (no scan over calendars) and compared with
    `hmac.compare_digest`, so unknown tokens answer in the same time as known ones.
    """
    calendar = cal_store.by_feed_token(tx.conn, token) if 16 <= len(token) <= 128 else None
    if calendar is None or not hmac.compare_digest(calendar["feed_token"].encode(), token.encode()):
        raise NotFound("No feed at this address", None)
    cache = cache or CACHE
    window_ts = window_start(tx.now, past_days)
    feed = cache.feed(calendar["id"], calendar["revision"], window_ts)
    if feed is None:
        feed = build(tx, calendar, window_ts, cache)
        cache.store(feed)
    return feed


def rotate(tx: Tx, ctx: Ctx, calendar_id: str) -> Calendar:
    """A new feed token; the old URL answers 404 from the moment this commits. The calendar.updated
    payload carries the calendar's dict form (as always); the answer is its Calendar struct."""
    row = load_calendar(tx, ctx.principal, calendar_id)
    before = present_calendar(row, ctx.base_url)
    token = new_feed_token()
    feed_store.set_token(tx.conn, calendar_id, token)
    now = iso_ms(tx.now)
    cal_store.patch(tx.conn, calendar_id, {"updated_at": now})
    cal_store.bump_revision(tx.conn, calendar_id)
    after_row = {**row, "feed_token": token, "updated_at": now}
    after = present_calendar(after_row, ctx.base_url)
    changes.record(tx, Change("calendar.updated", after, previous=changed_fields(before, after), agent_id=row["agent_id"]))
    return calendar_struct(after_row, ctx.base_url)


def on_change(tx: Tx, change: Change) -> None:
    """In-transaction listener (registered by chronary.runtime): an event change marks its
    calendar's feed as changed now (its Last-Modified), once per calendar and transaction. The
    feed body itself is keyed on the calendar revision, which `changes.record` moves."""
    if change.kind is None or change.calendar is None:
        return
    touched: set[str] = tx.scratch.setdefault("feeds.touched", set())
    if change.calendar["id"] not in touched:  # a sync or an import changes many in one transaction
        touched.add(change.calendar["id"])
        feed_store.touch(tx.conn, change.calendar["id"], iso_ms(tx.now))
