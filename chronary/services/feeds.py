"""Published iCal feeds: build a calendar's body once per revision and answer from a cache.

A feed request costs one indexed lookup of the token; when the calendar's `revision` (bumped on
every event change and calendar update) and the feed window are unchanged the cached body and
strong ETag are reused, so a 304 costs next to nothing. A rebuild reuses each unchanged event's
rendered VEVENT text, so one edit in a 10k-event calendar re-renders one event.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chronary.errors import NotFound
from chronary.ical import render
from chronary.schemas.calendars import Calendar
from chronary.services import changes
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
MAX_CACHED_BYTES = 64 * 1024 * 1024  # bodies kept; a 10k-event feed is ≈ 5 MB
MAX_CACHED_VEVENTS = 100_000


@dataclass(frozen=True)
class Feed:
    calendar_id: str
    revision: int
    window_start_ts: int
    body: bytes
    etag: str
    last_modified: datetime


class FeedCache:
    """Thread-safe: feeds are built on reader threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.feeds: OrderedDict[str, Feed] = OrderedDict()
        self.bytes = 0
        self.vevents: dict[tuple[Any, ...], str] = {}

    def feed(self, calendar_id: str, revision: int, window_start_ts: int) -> Feed | None:
        with self._lock:
            feed = self.feeds.get(calendar_id)
            if feed is None or feed.revision != revision or feed.window_start_ts != window_start_ts:
                return None
            self.feeds.move_to_end(calendar_id)
            return feed

    def store(self, feed: Feed) -> None:
        with self._lock:
            old = self.feeds.pop(feed.calendar_id, None)
            if old is not None:
                self.bytes -= len(old.body)
            self.feeds[feed.calendar_id] = feed
            self.bytes += len(feed.body)
            while len(self.feeds) > 1 and (len(self.feeds) > MAX_CACHED_FEEDS or self.bytes > MAX_CACHED_BYTES):
                _, evicted = self.feeds.popitem(last=False)
                self.bytes -= len(evicted.body)

    def vevent(self, key: tuple[Any, ...], build: Any) -> str:
        text = self.vevents.get(key)
        if text is None:
            text = build()
            if len(self.vevents) >= MAX_CACHED_VEVENTS:
                self.vevents.clear()  # crude but bounded; a rebuild is well under a second anyway
            self.vevents[key] = text
        return text


CACHE = FeedCache()


def window_start(now: datetime, past_days: int) -> int:
    """Start of the feed window, at a whole UTC day so the cache key moves once a day."""
    day = (now - timedelta(days=past_days)).astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return to_ts(day)


def _vevents(calendar: dict[str, Any], rows: list[dict[str, Any]], cache: FeedCache) -> tuple[list[str], set[str]]:
    tz = calendar["timezone"]
    defaults = calendar["default_reminders"]
    defaults_key = None if defaults is None else tuple(defaults)
    masters = {r["id"]: r for r in rows if r["recurrence"] and not r["recurring_event_id"]}
    exdates: dict[str, list[int]] = {}
    for r in rows:
        if r["recurring_event_id"] and r["status"] == "cancelled" and r["recurrence_id_ts"] is not None:
            exdates.setdefault(r["recurring_event_id"], []).append(r["recurrence_id_ts"])
    out: list[str] = []
    tzids: set[str] = set()
    for r in rows:
        if r["status"] == "cancelled":
            continue  # cancelled events are omitted; cancelled occurrences became EXDATEs above
        master = masters.get(r["recurring_event_id"]) if r["recurring_event_id"] else None
        if r["recurring_event_id"] and (master is None or master["status"] == "cancelled"):
            continue  # an exception whose series is gone or cancelled has nothing to override
        ex = tuple(sorted(exdates.get(r["id"], ()))) if r["recurrence"] else ()
        uid = master["ical_uid"] if master else r["ical_uid"]
        key = (
            r["id"],
            r["updated_at"],
            r["sequence"],
            r.get("transparency"),
            tz,
            defaults_key,
            uid,
            ex,
            master["updated_at"] if master else None,
        )
        out.append(
            cache.vevent(
                key,
                lambda r=r, uid=uid, ex=ex, master=master: render.render_vevent(
                    r, tz, defaults, uid=uid, exdates=list(ex), master=master
                ),
            )
        )
        if not r["all_day"]:
            tzids.add(render.event_tzid(master or r, tz))
    return out, tzids


def build(tx: Tx, calendar: dict[str, Any], window_ts: int, cache: FeedCache | None = None) -> Feed:
    cache = cache or CACHE
    rows = feed_store.feed_rows(tx.conn, calendar["id"], window_ts)
    vevents, tzids = _vevents(calendar, rows, cache)
    first = min([window_ts, *(r["start_ts"] for r in rows)]) if rows else window_ts
    body = render.render_calendar(calendar["name"], calendar["timezone"], tzids, render.first_year(first), vevents).encode(
        "utf-8"
    )
    etag = '"' + hashlib.sha256(body).hexdigest()[:40] + '"'
    # feed_state moves on every event change recorded through services/changes (deletions
    # included); the newest updated_at also covers writers that only bump the revision
    newest = max((r["updated_at"] for r in rows), default=None)
    stamps = [
        parse_stored(calendar["updated_at"]),
        parse_stored(feed_store.changed_at(tx.conn, calendar["id"])),
        parse_stored(newest),
    ]
    last_modified = max(s for s in stamps if s is not None).replace(microsecond=0)
    return Feed(calendar["id"], calendar["revision"], window_ts, body, etag, last_modified)


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
