"""TRANSP through iCal: feeds write it, subscriptions import it (and follow changes), and
migration 0007 backfills it for events imported before the column existed."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chronary.clock import ManualClock
from chronary.store import migrate as migrations
from chronary.store import rules as rule_store
from chronary.store.db import open_connection
from tests.ical.conftest import feed_path, parse, vevents
from tests.ical.feedserver import vcalendar, vevent
from tests.ical.subsync import run_subscription_worker

MON = "2026-03-23"


def _transp(api: Any, cal: dict[str, Any]) -> dict[str, str]:
    r = api.client.get(feed_path(cal))
    assert r.status_code == 200, r.text
    return {str(ev["SUMMARY"]): str(ev["TRANSP"]) for ev in vevents(parse(r.content))}


def test_feed_writes_transp_and_follows_changes(make_api: Any) -> None:
    api = make_api(clock=ManualClock(datetime(2026, 3, 20, 6, tzinfo=UTC)))
    cal = api.calendar(api.agent()["id"])
    cid = cal["id"]
    api.event(cid, f"{MON}T10:00:00Z", f"{MON}T11:00:00Z", title="Busy")
    wfh = api.event(cid, f"{MON}T09:00:00Z", f"{MON}T17:00:00Z", title="WFH", transparency="transparent")
    api.event(cid, MON, "2026-03-24", title="Holiday", all_day=True, transparency="transparent")
    api.event(cid, f"{MON}T12:00:00Z", f"{MON}T13:00:00Z", title="Held", status="hold")
    series = api.event(
        cid,
        f"{MON}T15:00:00Z",
        f"{MON}T15:30:00Z",
        title="Daily free",
        recurrence=["RRULE:FREQ=DAILY;COUNT=3"],
        transparency="transparent",
    )
    r = api.patch(
        f"/v1/calendars/{cid}/events/{series['id']}_20260324T150000Z", json={"title": "Daily busy", "transparency": "opaque"}
    )
    assert r.status_code == 200, r.text
    assert _transp(api, cal) == {
        "Busy": "OPAQUE",
        "WFH": "TRANSPARENT",
        "Holiday": "TRANSPARENT",
        "Held": "OPAQUE",
        "Daily free": "TRANSPARENT",
        "Daily busy": "OPAQUE",
    }
    # a change of transparency alone reaches the (cached) feed
    assert api.patch(f"/v1/calendars/{cid}/events/{wfh['id']}", json={"transparency": "opaque"}).status_code == 200
    assert _transp(api, cal)["WFH"] == "OPAQUE"


def _holidays(transp: str) -> str:
    return (
        vcalendar(
            vevent("easter-monday@holidays", "20260406", "20260407", "Easter Monday", f"TRANSP:{transp}"),
            vevent("may-day@holidays", "20260501", "20260502", "May Day", "TRANSP:TRANSPARENT"),
            name="Holidays",
        )
        .replace("DTSTART:2026", "DTSTART;VALUE=DATE:2026")
        .replace("DTEND:2026", "DTEND;VALUE=DATE:2026")
    )


def _busy(api: Any, agent_id: str, start: str, end: str) -> list[dict[str, Any]]:
    r = api.get(f"/v1/agents/{agent_id}/availability", params={"start": start, "end": end})
    assert r.status_code == 200, r.text
    return r.json()["busy"]


def _slots(api: Any, agent_ids: list[str], start: str, end: str) -> list[str]:
    r = api.post(
        "/v1/availability/find-meeting-time",
        json={
            "agent_ids": agent_ids,
            "start": start,
            "end": end,
            "duration_minutes": 60,
            "slot_step_minutes": 60,
            "limit": 100,
        },
    )
    assert r.status_code == 200, r.text
    return [s["start"] for s in r.json()["slots"]]


def test_imported_transparent_holidays_do_not_block_until_the_feed_makes_them_opaque(
    make_api: Any, feed_server: Any
) -> None:
    clock = ManualClock(datetime(2026, 3, 20, 6, tzinfo=UTC))
    api = make_api(clock=clock)
    feed_server.serve("/holidays.ics", _holidays("TRANSPARENT"))
    agent, other = api.agent("A"), api.agent("B")
    cal = api.calendar(agent["id"], name="Holidays", timezone="Europe/Berlin")
    r = api.post(
        f"/v1/agents/{agent['id']}/ical-subscriptions",
        json={"calendar_id": cal["id"], "url": feed_server.url("/holidays.ics")},
    )
    assert r.status_code == 201, r.text
    sub = r.json()
    run_subscription_worker(api)  # the request marked it due; the worker syncs it
    events = {e["title"]: e for e in api.get(f"/v1/calendars/{cal['id']}/events").json()["data"]}
    assert {t: e["transparency"] for t, e in events.items()} == {"Easter Monday": "transparent", "May Day": "transparent"}
    assert all(e["all_day"] and e["transparency"] == "transparent" for e in events.values())
    day = ("2026-04-06T00:00:00+02:00", "2026-04-07T00:00:00+02:00")
    assert _busy(api, agent["id"], *day) == []
    assert len(_slots(api, [agent["id"], other["id"]], *day)) == 24
    # a hold on the holiday is not an overlap
    hold = api.post(
        f"/v1/calendars/{api.calendar(agent['id'])['id']}/events",
        json={
            "title": "Hold",
            "start_time": "2026-04-06T10:00:00+02:00",
            "end_time": "2026-04-06T11:00:00+02:00",
            "status": "hold",
        },
    )
    assert hold.status_code == 201, hold.text
    # re-exported through Chronary's own feed, still transparent
    assert _transp(api, cal) == {"Easter Monday": "TRANSPARENT", "May Day": "TRANSPARENT"}

    feed_server.serve("/holidays.ics", _holidays("OPAQUE"))
    clock.advance(minutes=1)
    assert api.post(f"/v1/ical-subscriptions/{sub['id']}/sync").status_code == 202
    run_subscription_worker(api)
    after = {e["title"]: e for e in api.get(f"/v1/calendars/{cal['id']}/events").json()["data"]}
    assert after["Easter Monday"]["transparency"] == "opaque" and after["May Day"]["transparency"] == "transparent"
    assert after["Easter Monday"]["id"] == events["Easter Monday"]["id"]
    busy = _busy(api, agent["id"], *day)
    assert [(b["start"], b["end"]) for b in busy] == [("2026-04-05T22:00:00Z", "2026-04-06T22:00:00Z")]
    assert _slots(api, [agent["id"], other["id"]], *day) == []
    assert _busy(api, agent["id"], "2026-05-01T00:00:00+02:00", "2026-05-02T00:00:00+02:00") == []
    assert _transp(api, cal)["Easter Monday"] == "OPAQUE"


def test_migration_0007_backfills_imported_transparency(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = open_connection(path)
    conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    old = [(name, sql) for name, sql in migrations.available() if name < "0007"]
    assert [name for name, _ in old][-1] == "0006_outbox_audience"
    for i, (name, sql) in enumerate(old, start=1):  # the database as Chronary left it at 0006
        with conn:
            conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations VALUES (?, '2026-01-01T00:00:00.000Z')", (name,))
            conn.execute(f"PRAGMA user_version = {i}")
    now = "2026-01-01T00:00:00.000Z"
    with conn:
        conn.execute("INSERT INTO orgs (id, name, created_at) VALUES ('org_1', 'Org', ?)", (now,))
        conn.execute(
            """INSERT INTO agents (id, org_id, name, type, status, timezone, created_at, updated_at)
                        VALUES ('agt_1', 'org_1', 'A', 'assistant', 'active', 'UTC', ?, ?)""",
            (now, now),
        )
        conn.execute(
            """INSERT INTO calendars (id, org_id, agent_id, name, timezone, agent_status, feed_token,
                        created_at, updated_at) VALUES ('cal_1', 'org_1', 'agt_1', 'Hol', 'UTC', 'idle', 't1', ?, ?)""",
            (now, now),
        )
        remotes = {
            "evt_transparent": {"type": "ical_subscription", "subscription_id": "sub_1", "tzid": None, "transparent": True},
            "evt_opaque": {"type": "ical_subscription", "subscription_id": "sub_1", "tzid": None, "transparent": False},
            "evt_synced": {"connection_id": "con_1", "uid": "x"},
            "evt_native": None,
        }
        for i, (ident, remote) in enumerate(remotes.items()):
            start = 1_775_433_600 + i * 86_400
            conn.execute(
                """INSERT INTO events (id, calendar_id, ical_uid, title, start_ts, end_ts, all_day, status,
                            remote, created_at, updated_at) VALUES (?, 'cal_1', ?, ?, ?, ?, 1, 'confirmed', ?, ?, ?)""",
                (ident, ident, ident, start, start + 86_400, None if remote is None else json.dumps(remote), now, now),
            )
    assert migrations.migrate(conn)[0] == "0007_event_transparency"  # and the migrations after it
    got = {r["id"]: r["transparency"] for r in conn.execute("SELECT id, transparency FROM events")}
    assert got == {"evt_transparent": "transparent", "evt_opaque": "opaque", "evt_synced": "opaque", "evt_native": "opaque"}
    singles, *_ = rule_store.busy_sources(conn, ["agt_1"], 1_775_433_600, 1_775_433_600 + 4 * 86_400, 0)
    assert sorted(s[1] for s in singles) == [1_775_433_600 + i * 86_400 for i in (1, 2, 3)]
    assert migrations.migrate(conn) == []
    conn.close()
    # the system SQLite (3.40 here) reads the migrated schema, in its own process
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
            "print(c.execute(\"SELECT count(*) FROM events WHERE transparency = 'transparent'\").fetchone()[0]); "
            "print(c.execute('PRAGMA integrity_check').fetchone()[0])",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert out.stdout.split() == ["1", "ok"]
