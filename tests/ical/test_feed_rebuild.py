"""Rebuilding a feed from its previous build (issue 20, item 3): after any sequence of writes, the
feed served over HTTP is byte for byte what a build from nothing gives, whether the rebuild went
through `feed_build.update` (only the changed rows) or `feed_build.full` (every row's version).

Chunks are made tiny here (a few events each) so a hundred events span many of them.
"""

from __future__ import annotations

import random
from array import array
from datetime import UTC, datetime, timedelta

import pytest

from chronary.clock import ManualClock
from chronary.services import feed_body, feeds
from chronary.services.occurrences import occurrence_id
from chronary.store import calendars as cal_store
from chronary.timeutil import to_ts
from tests.ical.conftest import feed_path, parse, vevents

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feed_body, "BOUNDARY_MASK", 3)
    monkeypatch.setattr(feed_body, "MIN_EVENTS", 2)
    monkeypatch.setattr(feed_body, "MAX_EVENTS", 6)


def _fresh(api, cal_id: str) -> bytes:
    """The feed built from nothing (no previous build to reuse)."""
    runtime = api.client.app.state.runtime

    def work(tx):
        window = feeds.window_start(tx.now, runtime.settings.feed_past_days)
        return feeds.build(tx, cal_store.get(tx.conn, cal_id), window, feeds.FeedCache()).body

    return runtime.db.read_sync(work)


class Writer:
    """Random writes through the API: creates, edits (with and without the clock moving, so
    some land in the same millisecond as the previous newest row), moves, deletions, occurrence
    edits and deletions, series cancelled and restored, the calendar's default reminders
    changed, a day passing (the window moves)."""

    def __init__(self, api, clock: ManualClock, cal_id: str, rng: random.Random) -> None:
        self.api, self.clock, self.cal_id, self.rng = api, clock, cal_id, rng
        self.singles: list[str] = []  # timed single events (the ones moved)
        self.days: list[str] = []
        self.series: list[tuple[str, datetime]] = []
        self.n = 0

    def url(self, event_id: str = "") -> str:
        return f"/v1/calendars/{self.cal_id}/events" + (f"/{event_id}" if event_id else "")

    def create(self) -> None:
        self.n += 1
        begin = START + timedelta(hours=self.rng.randrange(0, 24 * 60))
        kind = self.rng.random()
        if kind < 0.15:
            body = {"title": f"Weekly {self.n}", "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=6"], "reminders": [10]}
        elif kind < 0.3:
            day = begin.date()
            body = {"title": f"Day {self.n}", "all_day": True, "start_time": str(day), "end_time": str(day + timedelta(1))}
        else:
            body = {"title": f"Meeting {self.n} — café", "description": "a, b; c" * self.rng.randrange(0, 4)}
        body.setdefault("start_time", begin.isoformat())
        body.setdefault("end_time", (begin + timedelta(minutes=30)).isoformat())
        r = self.api.post(self.url(), json=body)
        assert r.status_code == 201, r.text
        if "recurrence" in body:
            self.series.append((r.json()["id"], begin))
        else:
            (self.days if body.get("all_day") else self.singles).append(r.json()["id"])

    def step(self) -> None:
        if self.rng.random() < 0.7:
            self.clock.advance(milliseconds=self.rng.choice([1, 250, 60_000]))
        action = self.rng.random()
        if action < 0.02:
            self.clock.advance(days=1)  # the feed window moves on
        elif action < 0.04:
            reminders = self.rng.choice([[15], [5, 30], None])
            self._ok(self.api.patch(f"/v1/calendars/{self.cal_id}", json={"default_reminders": reminders}))
        elif action < 0.25 or not self.singles:
            self.create()
        elif action < 0.45:
            eid = self.rng.choice(self.singles + self.days)
            self._ok(self.api.patch(self.url(eid), json={"title": f"edited {self.n}"}))
        elif action < 0.55:
            eid = self.rng.choice(self.singles + self.days)
            transparency = self.rng.choice(["opaque", "transparent"])
            self._ok(self.api.patch(self.url(eid), json={"transparency": transparency}))
        elif action < 0.62:
            eid = self.rng.choice(self.singles)
            begin = START + timedelta(hours=self.rng.randrange(0, 24 * 60))
            move = {"start_time": begin.isoformat(), "end_time": (begin + timedelta(hours=1)).isoformat()}
            self._ok(self.api.patch(self.url(eid), json=move))
        elif action < 0.72:
            pool = self.days if self.days and self.rng.random() < 0.2 else self.singles
            eid = pool.pop(self.rng.randrange(len(pool)))
            assert self.api.delete(self.url(eid)).status_code == 204
        elif self.series:
            series_id, begin = self.rng.choice(self.series)
            occ = occurrence_id(series_id, to_ts(begin + timedelta(weeks=self.rng.randrange(1, 6))))
            which = self.rng.random()
            if which < 0.4:
                self._ok(self.api.patch(self.url(occ), json={"title": f"moved {self.n}"}), missing_ok=True)
            elif which < 0.7:
                assert self.api.delete(self.url(occ)).status_code in (204, 404)
            elif which < 0.85:
                self._ok(self.api.patch(self.url(series_id), json={"title": f"series {self.n}"}))
            else:
                status = self.rng.choice(["cancelled", "confirmed"])
                self._ok(self.api.patch(self.url(series_id), json={"status": status}))

    @staticmethod
    def _ok(r, missing_ok: bool = False) -> None:
        assert r.status_code == 200 or (missing_ok and r.status_code == 404), r.text


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rebuilds_equal_a_build_from_nothing(make_api, tiny_chunks, seed) -> None:
    clock = ManualClock(START - timedelta(days=1))
    api = make_api(clock=clock, feed_rate_limit_per_minute=10**6)
    cal = api.calendar(name="Rebuilt", timezone="UTC", default_reminders=[15])
    rng = random.Random(seed)
    writer = Writer(api, clock, cal["id"], rng)
    for _ in range(60):
        writer.create()
    path = feed_path(cal)
    assert api.client.get(path).content == _fresh(api, cal["id"])
    updates = 0
    for _ in range(120):
        for _ in range(rng.choice([1, 1, 1, 2, 5])):
            writer.step()
        served = api.client.get(path)
        assert served.status_code == 200
        assert served.content == _fresh(api, cal["id"])
        assert int(served.headers["content-length"]) == len(served.content)
        updates += feeds.CACHE.previous(cal["id"]).updates > 0
    assert updates >= 30  # most rebuilds went through the changed rows only
    assert len(feeds.CACHE.previous(cal["id"]).chunks) > 5
    parse(served.content)  # and what is served is still a calendar icalendar reads
    assert vevents(parse(served.content))


def test_an_edit_rerenders_one_chunk(make_api) -> None:
    """One edit in a feed of many chunks: the other chunks are the same objects as before, but
    for the one holding the newest stored row (always looked at again: its rowid may be reused)."""
    clock = ManualClock(START - timedelta(days=1))
    api = make_api(clock=clock)
    cal = api.calendar(name="Big", timezone="Europe/Berlin")
    ids = [
        api.event(cal["id"], (START + timedelta(hours=i)).isoformat(), (START + timedelta(hours=i, minutes=30)).isoformat())[
            "id"
        ]
        for i in range(1500)
    ]
    path = feed_path(cal)
    assert api.client.get(path).status_code == 200
    before = feeds.CACHE.previous(cal["id"]).chunks
    clock.advance(seconds=1)
    api.patch(f"/v1/calendars/{cal['id']}/events/{ids[700]}", json={"title": "Edited"})
    assert b"SUMMARY:Edited" in api.client.get(path).content
    after = feeds.CACHE.previous(cal["id"])
    assert after.updates == 1
    assert len(before) > 5 and sum(1 for c in after.chunks if not any(c is b for b in before)) <= 2
    assert api.client.get(path).content == _fresh(api, cal["id"])


def test_boundaries_match_a_plain_loop() -> None:
    """The byte-scanning cut gives the chunks a plain loop over the versions gives."""
    rng = random.Random(7)

    def plain(versions: array) -> list[tuple[int, int]]:
        out, start = [], 0
        for i, v in enumerate(versions):
            n = i - start + 1
            if n >= feed_body.MAX_EVENTS or (n >= feed_body.MIN_EVENTS and not v & feed_body.BOUNDARY_MASK):
                out.append((start, i + 1))
                start = i + 1
        return out + ([(start, len(versions))] if start < len(versions) else [])

    for _ in range(200):
        low = rng.choice([[0, 128, 5], [1, 3], [0]])
        versions = array("q", [(rng.getrandbits(54) << 8) | rng.choice(low) for _ in range(rng.randrange(0, 4000))])
        assert feed_body.boundaries(versions) == plain(versions)


def test_chunk_keeps_its_events() -> None:
    """A chunk gives back each event's start, id, version and text, and its first and last keys."""
    texts = [b"BEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\n", b"BEGIN:VEVENT\r\nUID:b\r\nEND:VEVENT\r\n"]
    chunk = feed_body.make_chunk(array("q", [5, -7]), texts, [(100, "evt_a"), (200, "evt_b")])
    assert chunk.entries() == [(100, "evt_a", 5, texts[0]), (200, "evt_b", -7, texts[1])]
    assert (chunk.first, chunk.last, chunk.length, chunk.raw()) == ((100, "evt_a"), (200, "evt_b"), 66, b"".join(texts))
    one = feed_body.make_chunk(array("q", [1]), texts[:1], [(100, "evt_a")])
    assert one.first == one.last == (100, "evt_a")
