"""Migration 0009 (one VEVENT codec, one merge): a database written by the two old import paths
is normalized, and the next subscription sync finds every event it had imported (same ids, no
duplicates) on the shared merge."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apsw

from chronary.services.keys import digest
from chronary.store import events as event_store
from chronary.store import migrate
from chronary.timeutil import iso_ms
from tests.ical.subsync import run_subscription_worker

STAMP = "DTSTAMP:20260101T000000Z"
BINS = (
    f"BEGIN:VEVENT\r\nUID:bins\r\n{STAMP}\r\nDTSTART;VALUE=DATE:20270105\r\nDTEND;VALUE=DATE:20270106\r\n"
    "SUMMARY:Bins out\r\nRRULE:FREQ=WEEKLY;COUNT=4\r\nEXDATE;VALUE=DATE:20270112\r\nTRANSP:TRANSPARENT\r\nEND:VEVENT"
)
# invited to two occurrences of someone else's series: the feed has overrides but no master
ORPHANS = (
    f"BEGIN:VEVENT\r\nUID:orphan\r\n{STAMP}\r\nRECURRENCE-ID:20270201T090000Z\r\nDTSTART:20270201T090000Z\r\n"
    "DTEND:20270201T100000Z\r\nSUMMARY:Review\r\nEND:VEVENT\r\n"
    f"BEGIN:VEVENT\r\nUID:orphan\r\n{STAMP}\r\nRECURRENCE-ID:20270208T090000Z\r\nDTSTART:20270208T090000Z\r\n"
    "DTEND:20270208T100000Z\r\nSUMMARY:Review\r\nEND:VEVENT"
)


def _row(event_id: str, calendar_id: str, uid: str, sub_id: str, **fields: Any) -> dict[str, Any]:
    now = "2026-12-01T00:00:00.000Z"
    return {
        "id": event_id,
        "calendar_id": calendar_id,
        "ical_uid": uid,
        "title": "x",
        "description": None,
        "location": None,
        "start_ts": 0,
        "end_ts": 0,
        "all_day": False,
        "status": "confirmed",
        "hold_expires_at": None,
        "priority": None,
        "reminders": None,
        "recurrence": None,
        "attendees": [],
        "metadata": {},
        "source": "external_ical",
        "read_only": True,
        "recurring_event_id": None,
        "recurrence_id_ts": None,
        "sequence": 0,
        "transparency": "opaque",
        "remote": {"type": "ical_subscription", "subscription_id": sub_id, "tzid": None, "transparent": False},
        "created_at": now,
        "updated_at": now,
        **fields,
    }


def _old_import(tx: Any, calendar_id: str, sub_id: str) -> None:
    """What the pre-0009 subscription import stored for BINS and ORPHANS."""
    bins = _row(
        "evt_bins",
        calendar_id,
        "bins",
        sub_id,
        title="Bins out",
        all_day=True,
        start_ts=1799103600,  # 2027-01-05 in Berlin
        end_ts=1799190000,
        recurrence=["RRULE:FREQ=WEEKLY;COUNT=4", "EXDATE:20270112T000000"],  # floating midnights
        transparency="transparent",
        remote={"type": "ical_subscription", "subscription_id": sub_id, "tzid": None, "transparent": True},
    )
    first = _row("evt_o1", calendar_id, "orphan", sub_id, title="Review", start_ts=1801472400, end_ts=1801476000)
    second = _row("evt_o2", calendar_id, "orphan", sub_id, title="Review", start_ts=1802077200, end_ts=1802080800)
    for row in (bins, first, second):
        event_store.create(tx.conn, row)
    links = [("evt_bins", "bins", 0), ("evt_o1", "orphan", 1801472400), ("evt_o2", "orphan", 1802077200)]
    for event_id, uid, rid in links:
        tx.conn.execute(
            "INSERT INTO ical_subscription_events (event_id, subscription_id, uid, recurrence_id_ts, digest)"
            " VALUES (?, ?, ?, ?, 'old')",
            (event_id, sub_id, uid, rid),
        )
    tx.conn.execute("UPDATE ical_subscriptions SET last_synced_at = ?", (iso_ms(tx.now),))


def _database_at_0008(data_dir: Path, feed_url: str) -> tuple[str, dict[str, str]]:
    """A database exactly as the release before 0009 left it, written with plain SQL (today's
    code cannot run on that schema): an org, an org key, an agent, a calendar, a subscription."""
    data_dir.mkdir(parents=True)
    conn = apsw.Connection(str(data_dir / "chronary.db"))
    conn.row_trace = lambda cursor, row: {d[0]: v for d, v in zip(cursor.getdescription(), row, strict=True)}
    shipped = migrate.available
    try:
        migrate.available = lambda: [m for m in shipped() if m[0] < "0009"]  # type: ignore[assignment]
        migrate.migrate(conn)
    finally:
        migrate.available = shipped  # type: ignore[assignment]
    now = "2026-12-01T00:00:00.000Z"
    ids = {"org": "org_old", "agent": "agt_old", "calendar": "cal_old", "sub": "isub_old"}
    secret = "chr_sk_" + "o" * 43
    conn.execute("INSERT INTO orgs (id, name, created_at) VALUES (?, 'default', ?)", (ids["org"], now))
    conn.execute(
        "INSERT INTO api_keys (id, org_id, agent_id, name, prefix, last4, hash, created_at)"
        " VALUES ('key_old', ?, NULL, 'first org key', 'chr_sk_', ?, ?, ?)",
        (ids["org"], secret[-4:], digest(secret), now),
    )
    conn.execute(
        "INSERT INTO agents (id, org_id, name, type, status, timezone, created_at, updated_at)"
        " VALUES (?, ?, 'Ada', 'ai', 'active', 'Europe/Berlin', ?, ?)",
        (ids["agent"], ids["org"], now, now),
    )
    conn.execute(
        "INSERT INTO calendars (id, org_id, agent_id, name, timezone, agent_status, feed_token, created_at, updated_at)"
        " VALUES (?, ?, ?, 'Work', 'Europe/Berlin', 'active', 'feedtoken-old', ?, ?)",
        (ids["calendar"], ids["org"], ids["agent"], now, now),
    )
    conn.execute(
        "INSERT INTO ical_subscriptions (id, org_id, agent_id, calendar_id, url, refresh_interval_minutes, status,"
        " event_count, next_sync_ts, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 60, 'active', 3, 1 << 40, ?, ?)",
        (ids["sub"], ids["org"], ids["agent"], ids["calendar"], feed_url, now, now),
    )
    conn.execute("BEGIN")
    _old_import(_RawTx(conn), ids["calendar"], ids["sub"])
    conn.execute("COMMIT")
    conn.close()
    return secret, ids


class _RawTx:
    """Just enough of a transaction for the store helpers, on a bare connection."""

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn
        self.now = datetime(2026, 12, 1, tzinfo=UTC)


def test_0009_normalizes_old_rows_and_the_next_sync_keeps_their_ids(make_api: Any, feed_server: Any, data_dir: Path) -> None:
    feed_server.serve("/cal.ics", f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n{BINS}\r\n{ORPHANS}\r\nEND:VCALENDAR\r\n")
    secret, ids = _database_at_0008(data_dir, feed_server.url("/cal.ics"))
    cal, sub = {"id": ids["calendar"]}, {"id": ids["sub"]}
    api = make_api().as_key(secret)  # the new release opens it: 0009 and later run
    r = api.get(f"/v1/calendars/{cal['id']}/events", params={"limit": 50})
    assert r.status_code == 200, r.text
    rows = {e["id"]: e for e in r.json()["data"]}
    assert set(rows) == {"evt_bins", "evt_o1"}  # the second orphan waits to come back as an exception
    assert rows["evt_bins"]["recurrence"] == ["RRULE:FREQ=WEEKLY;COUNT=4", "EXDATE;VALUE=DATE:20270112"]
    assert "transparent" not in rows["evt_bins"]["remote"] and rows["evt_bins"]["transparency"] == "transparent"
    links = api.runtime.db.read_sync(
        lambda tx: list(tx.conn.execute("SELECT owner_id, remote_id, uid, event_id FROM sync_links ORDER BY uid"))
    )
    assert [(r["owner_id"], r["remote_id"], r["uid"], r["event_id"]) for r in links] == [
        (sub["id"], "feed", "bins", "evt_bins"),
        (sub["id"], "feed", "orphan", "evt_o1"),
    ]

    assert api.post(f"/v1/ical-subscriptions/{sub['id']}/sync").status_code == 202
    run_subscription_worker(api)
    assert api.get(f"/v1/ical-subscriptions/{sub['id']}").json()["status"] == "active"
    after = {e["id"]: e for e in api.get(f"/v1/calendars/{cal['id']}/events", params={"limit": 50}).json()["data"]}
    assert set(after) == {"evt_bins", "evt_o1", "evt_o1_20270208T090000Z"}  # same ids, nothing doubled
    assert after["evt_o1_20270208T090000Z"]["recurring_event_id"] == "evt_o1"
    assert after["evt_bins"]["recurrence"] == rows["evt_bins"]["recurrence"]
    # deleting the subscription takes every imported event with it, the links too
    assert api.delete(f"/v1/ical-subscriptions/{sub['id']}").status_code == 204
    assert api.get(f"/v1/calendars/{cal['id']}/events").json()["data"] == []
    assert api.runtime.db.read_sync(lambda tx: list(tx.conn.execute("SELECT * FROM sync_links"))) == []
