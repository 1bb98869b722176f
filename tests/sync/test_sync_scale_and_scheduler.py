"""1,000-event initial sync, occurrence exceptions made in Chronary, and the scheduler worker
inside the app (picks up due connections, pushes local bookings within seconds, refresh)."""

from __future__ import annotations

from typing import Any

import icalendar

from tests.conftest import Api, wait_until
from tests.sync.conftest import Radicale, connect, enable, events, sync, vevent


def _wait(check, timeout: float = 15.0):
    """Radicale PUTs are slow under load: a longer default than wait_until's."""
    return wait_until(check, timeout)


def write_bulk(radicale: Radicale, user: str, count: int) -> None:
    """Put `count` events straight into Radicale's storage (much faster than PUT by PUT)."""
    folder = radicale.collection_dir(user)
    for i in range(count):
        day, hour = divmod(i, 10)
        start = f"2026{1 + day // 28:02d}{1 + day % 28:02d}T{8 + hour:02d}0000Z"
        end = f"{start[:9]}{8 + hour:02d}3000Z"
        (folder / f"bulk-{i:04d}.ics").write_text(vevent(f"bulk-{i:04d}", f"Bulk {i}", start, end), newline="")


def test_initial_sync_of_1000_events(api: Api, radicale: Radicale) -> None:
    user = radicale.new_user()
    radicale.make_calendar(user)
    write_bulk(radicale, user, 1000)
    con = connect(api, api.agent()["id"], user, radicale.url)
    mapped = enable(api, con, f"/{user}/work/")
    summary = sync(api, con["id"])
    assert summary and summary["pulled"] == 1000 and summary["error"] is None
    page = api.get(f"/v1/calendars/{mapped['calendar_id']}/events", params={"limit": 1}).json()
    assert page["total"] == 1000
    uids = api.runtime.db.read_sync(
        lambda tx: list(
            tx.conn.execute(
                "SELECT count(DISTINCT ical_uid) AS n, count(*) AS rows FROM events WHERE calendar_id = ?",
                (mapped["calendar_id"],),
            )
        )
    )[0]
    assert uids == {"n": 1000, "rows": 1000}
    summary = sync(api, con["id"])
    assert summary and (summary["pulled"], summary["pushed"]) == (0, 0)


def test_occurrence_changes_made_in_chronary_go_up_as_overrides(api: Api, radicale: Radicale) -> None:
    user = radicale.new_user()
    cal = radicale.make_calendar(user)
    con = connect(api, api.agent()["id"], user, radicale.url)
    cal_id = enable(api, con, f"/{user}/work/")["calendar_id"]
    series = api.event(
        cal_id, "2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z", title="Weekly", recurrence=["RRULE:FREQ=WEEKLY;COUNT=4"]
    )
    sync(api, con["id"])
    occ = f"{series['id']}_20260309T090000Z"
    r = api.patch(
        f"/v1/calendars/{cal_id}/events/{occ}",
        json={"title": "Weekly (moved)", "start_time": "2026-03-09T13:00:00Z", "end_time": "2026-03-09T14:00:00Z"},
    )
    assert r.status_code == 200, r.text
    summary = sync(api, con["id"])
    assert summary and summary["pushed"] == 1
    (remote,) = cal.get_events()
    comps = icalendar.Calendar.from_ical(remote.data).walk("VEVENT")
    assert len(comps) == 2
    override = next(c for c in comps if "RECURRENCE-ID" in c)
    assert str(override["SUMMARY"]) == "Weekly (moved)"
    assert override.decoded("RECURRENCE-ID").strftime("%Y%m%dT%H%M") == "20260309T0900"
    assert override.decoded("DTSTART").strftime("%Y%m%dT%H%M") == "20260309T1300"
    summary = sync(api, con["id"])
    assert summary and (summary["pulled"], summary["pushed"]) == (0, 0)
    rows = api.runtime.db.read_sync(
        lambda tx: list(tx.conn.execute("SELECT id FROM events WHERE calendar_id = ? ORDER BY id", (cal_id,)))
    )
    assert [r["id"] for r in rows] == [series["id"], occ]


def test_scheduler_runs_rounds_pushes_bookings_and_refreshes(make_api: Any, radicale: Radicale) -> None:
    api: Api = make_api(workers=True)
    user = radicale.new_user()
    cal = radicale.make_calendar(user)
    cal.save_event(vevent("sched-1", "On the phone"))
    con = connect(api, api.agent()["id"], user, radicale.url)
    cal_id = enable(api, con, f"/{user}/work/")["calendar_id"]
    _wait(lambda: [e for e in events(api, cal_id) if e["ical_uid"] == "sched-1"])
    first = _wait(lambda: api.get(f"/v1/connections/{con['id']}").json()["last_synced_at"])
    # an agent's booking reaches the phone without anyone asking for a sync
    booked = api.event(cal_id, "2026-04-01T09:00:00Z", "2026-04-01T10:00:00Z", title="Booked by agent")
    _wait(lambda: any(str(e.icalendar_component["UID"]) == booked["ical_uid"] for e in cal.get_events()))
    got = _wait(lambda: (lambda c: c if c["pending_pushes"] == 0 else None)(api.get(f"/v1/connections/{con['id']}").json()))
    assert got["status"] == "active" and got["last_synced_at"] >= first
    # the round after a success is scheduled an interval (plus jitter) away
    row = api.runtime.db.read_sync(
        lambda tx: list(tx.conn.execute("SELECT next_sync_at, lease_owner FROM connections WHERE id = ?", (con["id"],)))
    )[0]
    from chronary.timeutil import to_ts

    assert 5 * 60 <= row["next_sync_at"] - to_ts(api.runtime.clock.now()) <= 5 * 60 + 61
    # refresh: a full resync happens now
    before = got["last_sync"]["finished_at"]
    assert api.post(f"/v1/connections/{con['id']}/refresh").status_code == 202
    _wait(lambda: api.get(f"/v1/connections/{con['id']}").json()["last_sync"]["finished_at"] not in (before, None))
    flag = api.runtime.db.read_sync(
        lambda tx: list(tx.conn.execute("SELECT full_resync FROM connections WHERE id = ?", (con["id"],)))
    )[0]["full_resync"]
    assert flag == 0
    assert sorted(e["title"] for e in events(api, cal_id)) == ["Booked by agent", "On the phone"]


def test_queued_pushes_survive_a_restart_and_a_dead_processes_lease(make_api: Any, radicale: Radicale) -> None:
    first: Api = make_api()
    user = radicale.new_user()
    cal = radicale.make_calendar(user)
    con = connect(first, first.agent()["id"], user, radicale.url)
    cal_id = enable(first, con, f"/{user}/work/")["calendar_id"]
    sync(first, con["id"])
    booked = first.event(cal_id, "2026-04-02T09:00:00Z", "2026-04-02T10:00:00Z", title="Queued before the crash")
    from chronary.timeutil import to_ts

    now = to_ts(first.runtime.clock.now())
    # the old process "died" mid-round: its lease is still there for two more seconds
    first.runtime.db.write_sync(
        lambda tx: tx.conn.execute(
            "UPDATE connections SET lease_owner = 'proc-dead', lease_until = ? WHERE id = ?", (now + 2, con["id"])
        )
    )
    second: Api = make_api(workers=True).as_key(first.key)  # a new server on the same data dir
    _wait(lambda: any(str(e.icalendar_component["UID"]) == booked["ical_uid"] for e in cal.get_events()), 20)
    got = _wait(
        lambda: (lambda c: c if c["pending_pushes"] == 0 else None)(second.get(f"/v1/connections/{con['id']}").json())
    )
    assert got["status"] == "active" and len(cal.get_events()) == 1
