"""A scoped feed (busy-only, a window of days) derived from the calendar's full feed.

The full feed is built and cached as it always was (services/feeds.py); a scoped one is made
from its chunks *after* that cache, never inside it, so no cached rendering of a full event can
reach a busy token: busy text is made here, by keeping only a whitelist of properties of each
VEVENT. Derived feeds are cached under their scope and the full feed's ETag (plus the window's
days), and a rebuild reuses every derived chunk whose source chunk (its sha256) and kept events
are unchanged, so a feed poll that changed nothing costs a dictionary lookup.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from array import array
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from chronary.ical.text import CRLF, fold
from chronary.services import feed_body

if TYPE_CHECKING:  # services.feeds imports nothing from here; the type only
    from chronary.services.feeds import Feed

BUSY_TITLE = "Busy"
# the properties a busy VEVENT keeps: when it is, how it repeats, whether it blocks time, and
# what clients need to update it; everything else (SUMMARY, DESCRIPTION, LOCATION, ATTENDEE,
# ORGANIZER, URL, CATEGORIES, CONTACT, COMMENT, ATTACH, GEO, CREATED, X-…, VALARMs) goes
KEEP = frozenset(
    {
        "UID",
        "DTSTAMP",
        "DTSTART",
        "DTEND",
        "DURATION",
        "RRULE",
        "RDATE",
        "EXDATE",
        "RECURRENCE-ID",
        "TRANSP",
        "STATUS",
        "SEQUENCE",
    }
)
_NAME = re.compile(rb"[A-Za-z0-9-]+")
MAX_CACHED = 256
MAX_CACHED_BYTES = 16 * 1024 * 1024


def _logical_lines(text: bytes) -> Iterable[bytes]:
    """Each content line with its folded continuations (CRLF and the fold's space kept)."""
    current = b""
    for line in text.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            current += b"\r\n" + line
            continue
        if current:
            yield current
        current = line
    if current:
        yield current


def _name(line: bytes) -> bytes:
    match = _NAME.match(line)
    return match.group(0).upper() if match else b""


def busy_vevent(text: bytes) -> bytes:
    """A VEVENT (or several) with only the `KEEP` properties and SUMMARY:Busy; nested components
    (VALARM) dropped whole."""
    out: list[bytes] = []
    depth = 0  # 1 inside a VEVENT, more inside a component nested in it
    for line in _logical_lines(text):
        name = _name(line)
        if name in (b"BEGIN", b"END"):
            value = line.partition(b":")[2].strip().upper()
            if name == b"BEGIN":
                depth += 1
                if depth == 1:
                    out.append(b"BEGIN:" + value)
            else:
                if depth == 1:
                    if value == b"VEVENT":
                        out.append(b"SUMMARY:" + BUSY_TITLE.encode())
                    out.append(b"END:" + value)
                depth = max(0, depth - 1)
            continue
        if depth == 1 and name.decode() in KEEP:
            out.append(line)
    return b"".join(line + b"\r\n" for line in out)


def busy_head(head: bytes) -> bytes:
    """The calendar's head with its name replaced: a busy feed does not say whose calendar it is."""
    out = []
    for line in _logical_lines(head):
        if _name(line) == b"X-WR-CALNAME":
            out.append(fold(f"X-WR-CALNAME:{BUSY_TITLE}").encode())
        else:
            out.append(line + CRLF.encode())
    return b"".join(out)


def window_bounds(now: datetime, timezone: str, past_days: int, future_days: int) -> tuple[int, int]:
    """[start, end) unix seconds: local midnight `past_days` before today to the end of the day
    `future_days` after it, today being the calendar's; moves once a day."""
    try:
        tz = ZoneInfo(timezone)
    except (KeyError, ValueError):
        tz = ZoneInfo("UTC")
    today = now.astimezone(tz).date()

    def midnight(day: date) -> int:
        return int(datetime.combine(day, time(0), tz).astimezone(UTC).timestamp())

    return midnight(today - timedelta(days=past_days)), midnight(today + timedelta(days=future_days + 1))


@dataclass(frozen=True)
class Scoped:
    """One scope's derived feed, and what it was made from."""

    source_etag: str
    window: tuple[int, int] | None
    feed: Feed
    made: dict[tuple[bytes, str], feed_body.Chunk]  # (source chunk digest, kept ids) → derived chunk
    size: int


class ScopedCache:
    """Derived feeds by (calendar id, scope key); thread-safe (feeds are built on reader threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: OrderedDict[tuple[str, tuple[object, ...]], Scoped] = OrderedDict()
        self.bytes = 0

    def get(self, key: tuple[str, tuple[object, ...]]) -> Scoped | None:
        with self._lock:
            entry = self.entries.get(key)
            if entry is not None:
                self.entries.move_to_end(key)
            return entry

    def put(self, key: tuple[str, tuple[object, ...]], entry: Scoped) -> None:
        with self._lock:
            old = self.entries.pop(key, None)
            if old is not None:
                self.bytes -= old.size
            self.entries[key] = entry
            self.bytes += entry.size
            while len(self.entries) > 1 and (len(self.entries) > MAX_CACHED or self.bytes > MAX_CACHED_BYTES):
                _, evicted = self.entries.popitem(last=False)
                self.bytes -= evicted.size


CACHE = ScopedCache()


def derive(
    full: Feed,
    key: tuple[str, tuple[object, ...]],
    *,
    busy: bool,
    window: tuple[int, int] | None,
    keep: Iterable[str] | None,
    cache: ScopedCache | None = None,
) -> Feed:
    """The feed of a scope from the calendar's full feed: only the events in `keep` (None: all),
    busy-only when `busy`. Answered from the cache while the full feed and the window hold."""
    cache = cache or CACHE
    entry = cache.get(key)
    if entry is not None and entry.source_etag == full.etag and entry.window == window:
        return entry.feed
    kept_ids = None if keep is None else set(keep)
    previous = entry.made if entry is not None else {}
    made: dict[tuple[bytes, str], feed_body.Chunk] = {}
    chunks: list[feed_body.Chunk] = []
    for chunk in full.chunks:
        ids = chunk.ids.split("\n")[:-1]
        picked = ids if kept_ids is None else [i for i in ids if i in kept_ids]
        if not picked:
            continue
        if not busy and len(picked) == len(ids):
            chunks.append(chunk)  # nothing to change: the full feed's own chunk
            continue
        mark = (chunk.digest, "\n".join(picked))
        derived = previous.get(mark) or _derive_chunk(chunk, set(picked), busy)
        made[mark] = derived
        chunks.append(derived)
    head = busy_head(full.head) if busy else full.head
    last_modified = full.last_modified
    if window is not None:  # the window moves each day: so does what it shows
        last_modified = max(last_modified, datetime.fromtimestamp(window[0], UTC))
    feed = dataclasses.replace(
        full,
        etag=feed_body.etag(head, tuple(chunks), full.tail),
        last_modified=last_modified,
        head=head,
        chunks=tuple(chunks),
        length=len(head) + len(full.tail) + sum(c.length for c in chunks),
    )
    size = sum(c.size for c in made.values()) + len(head) + 200
    cache.put(key, Scoped(full.etag, window, feed, made, size))
    return feed


def _derive_chunk(chunk: feed_body.Chunk, picked: set[str], busy: bool) -> feed_body.Chunk:
    entries = [e for e in chunk.entries() if e[1] in picked]
    texts = [busy_vevent(e[3]) if busy else e[3] for e in entries]
    return feed_body.make_chunk(array("q", [e[2] for e in entries]), texts, [(e[0], e[1]) for e in entries])
