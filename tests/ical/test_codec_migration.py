"""Migration 0009 (one VEVENT codec, one merge): a database written by the two old import paths
is normalized, and the next subscription sync finds every event it had imported (same ids, no
duplicates) on the shared merge."""

from __future__ import annotations

from typing import Any

import pytest

from chronary.store import events as event_store
from chronary.store import migrate
from chronary.store.db import Tx
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


def _old_import(tx: Tx, calendar_id: str, sub_id: str) -> None:
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
    tx.conn.execute("UPDATE ical_subscriptions SET last_synced_at = ?, next_sync_ts = 1 << 40", (iso_ms(tx.now),))


def test_0009_normalizes_old_rows_and_the_next_sync_keeps_their_ids(
    make_api: Any, feed_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = migrate.available()
    monkeypatch.setattr(migrate, "available", lambda: [m for m in shipped if m[0] < "0009"])
    old = make_api()  # a database at 0008, as the previous release left it
    agent = old.agent()
    cal = old.calendar(agent["id"], timezone="Europe/Berlin")
    feed_server.serve("/cal.ics", f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n{BINS}\r\n{ORPHANS}\r\nEND:VCALENDAR\r\n")
    sub = old.post(
        f"/v1/agents/{agent['id']}/ical-subscriptions", json={"calendar_id": cal["id"], "url": feed_server.url("/cal.ics")}
    ).json()
    old.runtime.db.write_sync(lambda tx: _old_import(tx, cal["id"], sub["id"]))
    monkeypatch.undo()

    api = make_api().as_key(old.key)  # the new release opens it: 0009 runs
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
