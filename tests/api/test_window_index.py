"""The bounded window queries (event_spans + the start index) answer exactly what a plain scan of
every event answers, on random calendars, events, edits and windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import apsw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chronary.store import events as event_store
from chronary.store.db import open_connection
from chronary.store.migrate import migrate

NOW = "2026-12-01T00:00:00.000Z"
DAY = 86_400

_events = st.lists(
    st.tuples(
        st.sampled_from(["cal_a", "cal_b"]),
        st.integers(0, 60 * DAY),  # start
        st.integers(0, 20 * DAY),  # duration (0: an instant)
        st.sampled_from(["confirmed", "hold", "cancelled"]),
    ),
    max_size=40,
)
_windows = st.lists(st.tuples(st.integers(-5 * DAY, 70 * DAY), st.integers(1, 14 * DAY)), min_size=1, max_size=6)
_edits = st.lists(st.tuples(st.integers(0, 39), st.integers(0, 60 * DAY), st.integers(0, 3 * DAY)), max_size=5)


def _db(path: Path) -> apsw.Connection:
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
            "updated_at) VALUES (?, 'org_1', 'agt_1', ?, 'UTC', 'active', ?, ?, ?)",
            (cal, cal, f"tok_{cal}", NOW, NOW),
        )
    return conn


def _row(i: int, cal: str, start: int, length: int, status: str) -> dict[str, Any]:
    return {
        "id": f"evt_{i:04d}",
        "calendar_id": cal,
        "ical_uid": f"u{i}",
        "title": "x",
        "start_ts": start,
        "end_ts": start + length,
        "all_day": False,
        "status": status,
        "attendees": [],
        "metadata": {},
        "source": "internal",
        "read_only": False,
        "created_at": NOW,
        "updated_at": NOW,
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=_events, windows=_windows, edits=_edits)
def test_window_queries_match_a_plain_scan(tmp_path_factory: Any, events: list, windows: list, edits: list) -> None:
    conn = _db(tmp_path_factory.mktemp("w") / "chronary.db")
    for i, (cal, start, length, status) in enumerate(events):
        event_store.create(conn, _row(i, cal, start, length, status))
    for index, start, length in edits:  # moves and resizes (the span only grows: still an upper bound)
        if index < len(events):
            event_store.patch(conn, f"evt_{index:04d}", {"start_ts": start, "end_ts": start + length})
    everything = list(conn.execute("SELECT * FROM events"))
    for start, length in windows:
        end = start + length
        for scope in (event_store.EventFilter(calendar_id="cal_a"), event_store.EventFilter(agent_id="agt_1")):
            singles, _, _ = event_store.in_window(conn, scope, start, end)
            want = sorted(
                r["id"]
                for r in everything
                if (scope.calendar_id is None or r["calendar_id"] == scope.calendar_id)
                and r["start_ts"] < end
                and r["end_ts"] > start
            )
            assert sorted(r["id"] for r in singles) == want
            busy = event_store.overlapping(conn, scope, start, end, ("confirmed", "hold"), None)
            want_busy = sorted(r["id"] for r in everything if r["id"] in want and r["status"] in ("confirmed", "hold"))
            assert sorted(r["id"] for r in busy) == want_busy
    conn.close()


_filters = st.lists(
    st.tuples(
        st.sampled_from([None, "confirmed", "hold", "cancelled"]),
        st.one_of(st.none(), st.integers(0, 60 * DAY)),  # start_after
        st.one_of(st.none(), st.integers(0, 60 * DAY)),  # start_before
        st.integers(1, 12),  # limit
        st.integers(0, 45),  # offset
    ),
    min_size=1,
    max_size=6,
)
_changes = st.lists(
    st.tuples(st.integers(0, 39), st.sampled_from(["delete", "status", "move"]), st.sampled_from(["confirmed", "hold"])),
    max_size=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=_events, changes=_changes, filters=_filters)
def test_list_pages_and_totals_match_a_plain_query(
    tmp_path_factory: Any, events: list, changes: list, filters: list
) -> None:
    """Pages and totals of event lists (per-calendar counts kept by triggers, a last page's own
    count, an agent's calendars merged page by page) are those of one plain ORDER BY and count(*)."""
    conn = _db(tmp_path_factory.mktemp("l") / "chronary.db")
    for i, (cal, start, length, status) in enumerate(events):
        event_store.create(conn, _row(i, cal, start, length, status) | {"source": "google" if i % 4 == 0 else "internal"})
    for index, change, status in changes:
        ident = f"evt_{index:04d}"
        if event_store.get(conn, ident) is None:
            continue
        if change == "delete":
            event_store.delete(conn, ident)
        elif change == "status":
            event_store.patch(conn, ident, {"status": status})
        else:
            event_store.patch(conn, ident, {"calendar_id": "cal_b"})
    for status, after, before, limit, offset in filters:
        for scope in ({"calendar_id": "cal_a"}, {"agent_id": "agt_1"}, {"agent_id": "agt_nobody"}):
            for source in (None, "google"):
                f = event_store.EventFilter(**scope, status=status, source=source, start_after=after, start_before=before)
                where, params = event_store._where(f)
                clause = " WHERE " + " AND ".join(where) if where else ""
                want = [r["id"] for r in conn.execute(f"SELECT id FROM events{clause} ORDER BY start_ts, id", params)]
                rows, total = event_store.list_(conn, f, limit, offset)
                assert [r["id"] for r in rows] == want[offset : offset + limit]
                assert total == len(want)
    conn.close()
