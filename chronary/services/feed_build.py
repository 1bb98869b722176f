"""Building a feed's chunks of VEVENTs (services/feeds.py keeps and serves them).

Two ways, both rendering only new or changed events and holding no list of all rows:

- `update`: the rows changed since the previous build (updated after its newest `updated_at`,
  or in that very millisecond, or stored after its largest rowid; plus the series and
  exceptions they affect) are few: each
  is taken out of the chunk it was in and put, re-rendered, where its (start_ts, id) now falls;
  only those chunks are remade. The shown count checks the result: a row deleted or changed
  some other way makes it differ, and the build is done in full instead.
- `full`: every shown row's version is read in feed order (one array, hashed in C), cut into
  content-defined chunks; a chunk whose events are the previous build's, in the same order, is
  reused whole, and the others take what texts they can from the previous build.
"""

from __future__ import annotations

import bisect
import itertools
from array import array
from collections.abc import Iterator
from typing import Any

from chronary.ical import render
from chronary.services import feed_body
from chronary.store import feeds as feed_store
from chronary.store.db import Tx

MAX_CHANGED = 500  # more changed rows than this: a full build
FULL_EVERY = 64  # updates in a row before a full build (whatever an update cannot see is mended)


def render_events(tx: Tx, calendar: dict[str, Any], ids: list[str]) -> dict[str, bytes]:
    """VEVENT bytes of these shown events, their rows (and series masters) fetched by id."""
    tz = calendar["timezone"]
    rows = feed_store.feed_rows(tx.conn, ids)
    series = sorted({r["recurring_event_id"] for r in rows.values() if r["recurring_event_id"]})
    masters = feed_store.feed_rows(tx.conn, series) if series else {}
    with_rules = [r["id"] for r in rows.values() if r["recurrence"]]
    exdates = feed_store.feed_exdates(tx.conn, calendar["id"], with_rules) if with_rules else {}
    out = {}
    for event_id, row in rows.items():
        master = masters.get(row["recurring_event_id"]) if row["recurring_event_id"] else None
        text = render.render_vevent(
            row,
            tz,
            calendar["default_reminders"],
            uid=master["ical_uid"] if master else row["ical_uid"],
            exdates=sorted(exdates.get(event_id, ())) if row["recurrence"] else [],
            master=master,
        )
        out[event_id] = text.encode("utf-8")
    return out


def full(
    tx: Tx, calendar: dict[str, Any], window_ts: int, old: tuple[feed_body.Chunk, ...] | None
) -> tuple[feed_body.Chunk, ...]:
    """Every chunk, reusing the previous build's (`old`) where they are unchanged."""
    previous = feed_body.Previous(old) if old else None
    versions = feed_store.feed_versions(tx.conn, calendar["id"], window_ts)
    plan: list[feed_body.Chunk | tuple[int, int]] = []
    for a, b in feed_body.boundaries(versions):
        same = previous.same_chunk(versions[a:b]) if previous is not None else None
        plan.append(same if same is not None else (a, b))
    try:
        return tuple(_assemble(tx, calendar, window_ts, versions, plan, previous, by_position=False))
    except _Drifted:
        return tuple(_assemble(tx, calendar, window_ts, versions, plan, previous, by_position=True))


def update(
    tx: Tx,
    calendar: dict[str, Any],
    window_ts: int,
    old: tuple[feed_body.Chunk, ...],
    stats: feed_store.FeedStats,
    also: set[str],
) -> tuple[feed_body.Chunk, ...] | None:
    """The previous build's chunks with the changed rows (`stats.changed` and `also`) moved,
    re-rendered or taken out; None when a full build is needed (too many changes, none seen,
    or the counts disagree)."""
    changed = set(stats.changed) | also
    if not old or not changed or len(changed) > MAX_CHANGED:
        return None  # nothing seen although the revision moved: a writer this cannot follow
    conn, cal_id = tx.conn, calendar["id"]
    changed |= feed_store.feed_related(conn, cal_id, sorted(changed))
    if len(changed) > MAX_CHANGED:
        return None
    current = feed_store.feed_current(conn, cal_id, window_ts, sorted(changed))
    # where each changed row was: its id in the chunks' id lists
    joined = "\n" + "".join(c.ids for c in old)
    offsets = list(itertools.accumulate((len(c.ids) for c in old), initial=1))
    touched: set[int] = set()
    was_shown = 0
    for eid in changed:
        at = joined.find("\n" + eid + "\n")
        if at >= 0:
            touched.add(bisect.bisect_right(offsets, at + 1) - 1)
            was_shown += 1
    if sum(len(c.versions) for c in old) - was_shown + len(current) != stats.shown:
        return None  # a row deleted, or shown or hidden, without a change this can see
    firsts = [c.first for c in old]
    placed: dict[int, list[tuple[Any, ...]]] = {}
    for row in current:
        k = max(0, bisect.bisect_right(firsts, (row[1], row[0])) - 1)
        placed.setdefault(k, []).append(row)
        touched.add(k)
    rendered = render_events(tx, calendar, [row[0] for row in current])
    chunks: list[feed_body.Chunk] = []
    for k, chunk in enumerate(old):
        if k not in touched:
            chunks.append(chunk)
            continue
        entries = [e for e in chunk.entries() if e[1] not in changed]
        entries += [(row[1], row[0], hash(row[2:]), rendered[row[0]]) for row in placed.get(k, [])]
        entries.sort(key=lambda e: (e[0], e[1]))
        for a in range(0, len(entries), feed_body.MAX_EVENTS):
            part = entries[a : a + feed_body.MAX_EVENTS]
            chunks.append(
                feed_body.make_chunk(array("q", [e[2] for e in part]), [e[3] for e in part], [(e[0], e[1]) for e in part])
            )
    return tuple(chunks)


class _Drifted(Exception):
    """The rows between two reused chunks are not the ones the versions say (an event moved
    without a new version): the build counts positions instead."""


def _assemble(
    tx: Tx,
    calendar: dict[str, Any],
    window_ts: int,
    versions: array[int],
    plan: list[feed_body.Chunk | tuple[int, int]],
    previous: feed_body.Previous | None,
    *,
    by_position: bool,
) -> Iterator[feed_body.Chunk]:
    """The planned chunks: the reused ones as they are, each run of changed ones made from the
    rows between its neighbours (found through the start index, checked against the versions),
    or, `by_position`, from one pass counting every row."""
    conn, cal_id = tx.conn, calendar["id"]
    changed = [p for p in plan if isinstance(p, tuple)]
    counted = feed_store.feed_positions(conn, cal_id, window_ts, changed) if by_position and changed else iter(())
    i = 0
    while i < len(plan):
        item = plan[i]
        if isinstance(item, feed_body.Chunk):
            yield item
            i += 1
            continue
        j = i
        while j < len(plan) and isinstance(plan[j], tuple):
            j += 1
        ranges = [r for r in plan[i:j] if isinstance(r, tuple)]
        before = plan[i - 1] if i and isinstance(plan[i - 1], feed_body.Chunk) else None
        after = plan[j] if j < len(plan) and isinstance(plan[j], feed_body.Chunk) else None
        assert before is None or isinstance(before, feed_body.Chunk)
        assert after is None or isinstance(after, feed_body.Chunk)
        if by_position:
            groups: Iterator[list[tuple[Any, ...]]] = (next(counted) for _ in ranges)
        else:
            rows = feed_store.feed_span(
                conn, cal_id, window_ts, before.last if before else None, after.first if after else None
            )
            groups = _checked(rows, ranges, versions)
        old = previous.between(before, after) if previous is not None else {}
        for (a, b), group in zip(ranges, groups, strict=True):
            yield _chunk(tx, calendar, versions[a:b], group, previous, old)
        i = j


def _checked(
    rows: Iterator[tuple[Any, ...]], ranges: list[tuple[int, int]], versions: array[int]
) -> Iterator[list[tuple[Any, ...]]]:
    """The rows cut at the ranges, each row's version checked: raises _Drifted on a mismatch."""
    for a, b in ranges:
        group = list(itertools.islice(rows, b - a))
        if len(group) != b - a or any(hash(row[2:]) != versions[a + k] for k, row in enumerate(group)):
            raise _Drifted
        yield group
    if next(rows, None) is not None:
        raise _Drifted


def _chunk(
    tx: Tx,
    calendar: dict[str, Any],
    versions: array[int],
    rows: list[tuple[Any, ...]],
    previous: feed_body.Previous | None,
    old: dict[int, tuple[int, int]],
) -> feed_body.Chunk:
    """One chunk of these rows ((id, start_ts, ...) in feed order): the previous build's text of
    every event it has (`old`: where, by version), the others rendered."""
    places = [old.get(v) for v in versions]
    texts = [previous.text(p) if previous is not None and p is not None else None for p in places]
    missing = [row[0] for row, text in zip(rows, texts, strict=True) if text is None]
    rendered = render_events(tx, calendar, missing) if missing else {}
    return feed_body.make_chunk(
        versions,
        [text if text is not None else rendered[row[0]] for row, text in zip(rows, texts, strict=True)],
        [(row[1], row[0]) for row in rows],
    )
