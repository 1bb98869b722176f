"""Series that ended are skipped by window queries (migration 0023's `series_bounds`): on random
recurring series (UNTIL, COUNT, BYDAY, months, RDATE/EXDATE, zones far from UTC, all-day) with
random exceptions moved anywhere, the bounded window reads expand to exactly what expanding every
series that starts before the window gives, for one calendar, an agent and the busy query."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import apsw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chronary.services.availability import blocks
from chronary.services.occurrences import expand_series
from chronary.store import events as event_store
from chronary.store import rules as rule_store
from chronary.store.db import open_connection
from chronary.store.migrate import migrate

NOW = "2026-12-01T00:00:00.000Z"
HOUR, DAY = 3600, 86_400
BASE = 1_790_000_000  # 2026-09-21
ZONES = ["UTC", "Pacific/Kiritimati", "Etc/GMT+12", "America/New_York", "Australia/Lord_Howe"]


def _stamp(ts: int, all_day: bool) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y%m%d") if all_day else moment.strftime("%Y%m%dT%H%M%SZ")


@st.composite
def _series(draw: st.DrawFn) -> dict[str, Any]:
    all_day = draw(st.booleans())
    start = BASE + draw(st.integers(0, 200)) * DAY + (0 if all_day else draw(st.integers(0, 23)) * HOUR)
    length = DAY * draw(st.integers(1, 3)) if all_day else draw(st.sampled_from([0, 900, HOUR, 5 * HOUR, 2 * DAY]))
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY", "HOURLY"]))
    parts = [f"FREQ={freq}"]
    if draw(st.booleans()):
        parts.append(f"INTERVAL={draw(st.integers(1, 3))}")
    by = draw(st.sampled_from([None, "BYDAY=MO", "BYDAY=MO,WE", "BYDAY=FR", "BYMONTHDAY=31", "BYMONTH=2"]))
    if by and freq != "HOURLY":
        parts.append(by)
    end = draw(st.sampled_from(["count", "until", "open"]))
    if end == "count":
        parts.append(f"COUNT={draw(st.integers(0, 9))}")
    elif end == "until":
        parts.append(f"UNTIL={_stamp(start + draw(st.integers(-3, 120)) * DAY + HOUR * draw(st.integers(0, 23)), all_day)}")
    lines = ["RRULE:" + ";".join(parts)]
    if draw(st.booleans()):
        lines.append(f"EXDATE:{_stamp(start + 7 * DAY, all_day)}")
    if draw(st.integers(0, 5)) == 0:
        lines.append(f"RDATE:{_stamp(start + draw(st.integers(1, 300)) * DAY, all_day)}")
    return {"all_day": all_day, "start": start, "length": length, "lines": lines}


_exceptions = st.lists(
    st.tuples(
        st.integers(0, 11),  # which series
        st.integers(0, 40),  # which of its occurrences
        st.integers(-30 * DAY, 300 * DAY),  # moved by
        st.sampled_from(["confirmed", "cancelled", "hold"]),
    ),
    max_size=8,
)
_windows = st.lists(st.tuples(st.integers(-10 * DAY, 420 * DAY), st.integers(HOUR, 31 * DAY)), min_size=1, max_size=4)


def _db(path: Path, zone: str) -> apsw.Connection:
    conn = open_connection(path)
    migrate(conn)
    conn.execute("INSERT INTO orgs (id, name, created_at) VALUES ('org_1', 'o', ?)", (NOW,))
    conn.execute(
        "INSERT INTO agents (id, org_id, name, type, status, timezone, created_at, updated_at) "
        "VALUES ('agt_1', 'org_1', 'Ada', 'ai', 'active', 'UTC', ?, ?)",
        (NOW, NOW),
    )
    for cal in ("cal_a", "cal_b"):
        conn.execute(
            "INSERT INTO calendars (id, org_id, agent_id, name, timezone, agent_status, feed_token, created_at, "
            "updated_at) VALUES (?, 'org_1', 'agt_1', ?, ?, 'active', ?, ?, ?)",
            (cal, cal, zone, f"tok_{cal}", NOW, NOW),
        )
    return conn


def _row(ident: str, cal: str, start: int, end: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": ident,
        "calendar_id": cal,
        "ical_uid": ident,
        "title": "x",
        "start_ts": start,
        "end_ts": end,
        "all_day": False,
        "status": "confirmed",
        "attendees": [],
        "metadata": {},
        "source": "internal",
        "read_only": False,
        "created_at": NOW,
        "updated_at": NOW,
        **extra,
    }


def _expand(rows: list[dict[str, Any]], zone: str, exceptions: list[dict[str, Any]], a: int, b: int) -> list[Any]:
    out = []
    for m in rows:
        mine = [x for x in exceptions if x["recurring_event_id"] == m["id"]]
        out += expand_series(m, ZoneInfo(zone), a, b, mine)
    return out


def _key(rows: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    return sorted((r["id"], r["start_ts"], r["end_ts"]) for r in rows)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    series=st.lists(_series(), min_size=1, max_size=12),
    zone=st.sampled_from(ZONES),
    exceptions=_exceptions,
    windows=_windows,
    edit=st.booleans(),
)
def test_bounded_series_reads_expand_like_every_series(
    tmp_path_factory: Any, series: list, zone: str, exceptions: list, windows: list, edit: bool
) -> None:
    conn = _db(tmp_path_factory.mktemp("s") / "chronary.db", zone)
    tz = ZoneInfo(zone)
    for i, s in enumerate(series):
        cal = "cal_a" if i % 3 else "cal_b"
        event_store.create(
            conn,
            _row(f"evt_{i:04d}", cal, s["start"], s["start"] + s["length"], all_day=s["all_day"], recurrence=s["lines"]),
        )
        event_store.create(conn, _row(f"evt_s{i:03d}", cal, s["start"] + DAY, s["start"] + DAY + HOUR))  # a single
    if edit:  # a series made longer after it was written: its bound must follow
        master = event_store.get(conn, "evt_0000")
        assert master is not None
        event_store.patch(conn, "evt_0000", {"recurrence": ["RRULE:FREQ=WEEKLY;COUNT=60"]})
    for which, nth, moved, status in exceptions:
        if which >= len(series):
            continue
        master = event_store.get(conn, f"evt_{which:04d}")
        assert master is not None
        occurrences = expand_series(master, tz, master["start_ts"], master["start_ts"] + 800 * DAY, [])
        if nth >= len(occurrences):
            continue
        occ = occurrences[nth]
        if event_store.get(conn, occ["id"]) is not None:
            continue
        x = {**occ, "start_ts": occ["start_ts"] + moved, "end_ts": occ["end_ts"] + moved, "status": status}
        event_store.create(conn, x | {"recurrence": None})
    everything = [event_store.get(conn, r["id"]) for r in conn.execute("SELECT id FROM events")]
    rows = [r for r in everything if r is not None]
    for row in rows:  # the stored bound is past every occurrence of its series
        bound = conn.execute("SELECT until_ts FROM series_bounds WHERE event_id = ?", (row["id"],)).fetchall()
        if row["recurrence"] and bound and bound[0]["until_ts"] is not None:
            later = expand_series(row, tz, bound[0]["until_ts"], bound[0]["until_ts"] + 3000 * DAY, [])
            assert later == [], (row["recurrence"], bound)
    for offset, length in windows:
        a, b = BASE + offset, BASE + offset + length
        for scope in (event_store.EventFilter(calendar_id="cal_a"), event_store.EventFilter(agent_id="agt_1")):
            mine = [r for r in rows if scope.calendar_id is None or r["calendar_id"] == scope.calendar_id]
            masters = [r for r in mine if r["recurrence"] and r["start_ts"] < b]
            plain = [r for r in mine if not r["recurrence"] and not r["recurring_event_id"]]
            want = [r for r in plain if r["start_ts"] < b and r["end_ts"] > a]
            want += _expand(masters, zone, [r for r in mine if r["recurring_event_id"]], a, b)
            singles, got_masters, got_exceptions = event_store.in_window(conn, scope, a, b)
            got = singles + _expand(got_masters, zone, got_exceptions, a, b)
            assert _key(got) == _key(want)
        now_ts = BASE + 100 * DAY
        busy_singles, busy_masters, busy_exceptions, _ = rule_store.busy_sources(conn, ["agt_1"], a, b, now_ts)
        busy = [(s, e) for _, s, e in busy_singles]
        busy += [
            (r["start_ts"], r["end_ts"]) for r in _expand(busy_masters, zone, busy_exceptions, a, b) if blocks(r, now_ts)
        ]
        masters = [r for r in rows if r["recurrence"] and r["start_ts"] < b]
        want_busy = [(r["start_ts"], r["end_ts"]) for r in want_all(rows, masters, zone, a, b) if blocks(r, now_ts)]
        assert sorted(busy) == sorted(want_busy)
    conn.close()


def want_all(rows: list[dict[str, Any]], masters: list[dict[str, Any]], zone: str, a: int, b: int) -> list[dict[str, Any]]:
    plain = [
        r for r in rows if not r["recurrence"] and not r["recurring_event_id"] and r["start_ts"] < b and r["end_ts"] > a
    ]
    return plain + _expand(masters, zone, [r for r in rows if r["recurring_event_id"]], a, b)
