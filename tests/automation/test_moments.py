"""event.started, event.ended and event.reminder: fired once at their instants, from the real app
on a real SQLite file with a ManualClock, the scanner driven by hand (services/moments.fire_due)
or through its worker's ticks (workers/moments.MomentWorker)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chronary.clock import ManualClock
from chronary.services import changes, moments
from chronary.services.event_present import present
from chronary.store import calendars as cal_store
from chronary.timeutil import from_ts, iso, to_ts
from chronary.webhooks import verify
from chronary.workers.moments import MomentWorker
from tests.conftest import Api
from tests.webhooks.conftest import Driver
from tests.webhooks.receiver import Receiver

MOMENT_TYPES = ("event.started", "event.ended", "event.reminder")
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def fire(api: Api, clock: ManualClock, when: datetime | str, grace_minutes: int = 60) -> moments.FireResult:
    """One scan at `when` (the clock is set there first, as the worker would see it)."""
    instant = at(when) if isinstance(when, str) else when
    clock.set(instant)
    return api.runtime.db.write_sync(lambda tx: moments.fire_due(tx, to_ts(instant), grace_minutes * 60))


def fired(result: moments.FireResult) -> list[tuple[str, str, int, str]]:
    """(type, occurrence id, reminder minutes, instant) of what one scan fired."""
    return [(m.kind, m.event_id, m.minutes, iso(from_ts(m.at_ts)) or "") for m in result.fired]


def sweep(api: Api, clock: ManualClock, start: datetime, end: datetime, step: timedelta) -> list[tuple[str, str, int, str]]:
    """Scan from `start` to `end` in steps (shorter than the grace: nothing is skipped)."""
    out: list[tuple[str, str, int, str]] = []
    when = start
    while when <= end:
        result = fire(api, clock, when)
        assert result.skipped == 0
        out += fired(result)
        when += step
    return out


def logged(api: Api) -> list[dict[str, Any]]:
    """The moment changes in the change log, oldest first."""
    marks = ",".join("?" for _ in MOMENT_TYPES)
    rows = api.runtime.db.read_sync(
        lambda tx: list(
            tx.conn.execute(
                f"SELECT type, resource_id, agent_id, calendar_id, origin, webhook, payload FROM changes "
                f"WHERE type IN ({marks}) ORDER BY seq",
                MOMENT_TYPES,
            )
        )
    )
    for row in rows:
        row["payload"] = json.loads(row["payload"])
    return rows


def setup(api: Api, timezone: str = "UTC", **calendar: Any) -> tuple[dict[str, Any], dict[str, Any], str]:
    agent = api.agent("Ada")
    cal = api.calendar(agent["id"], timezone=timezone, **calendar)
    return agent, cal, f"/v1/calendars/{cal['id']}/events"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def app(make_api: Any, clock: ManualClock) -> Api:
    api = make_api(clock=clock)
    api.receive_webhooks()  # moment changes are logged with the payloads an endpoint gets
    assert fire(api, clock, T0).first_scan  # the first scan only sets the cursor
    return api


def test_single_event_starts_and_ends_once_at_its_instants(app: Api, clock: ManualClock) -> None:
    agent, cal, base = setup(app)
    ev = app.event(cal["id"], "2026-01-05T10:00:00Z", "2026-01-05T11:00:00Z", title="Standup")

    assert fired(fire(app, clock, "2026-01-05T09:59:59Z")) == []
    first = fire(app, clock, "2026-01-05T10:00:00Z")
    assert first.scanned == (to_ts(at("2026-01-05T09:59:59Z")), to_ts(at("2026-01-05T10:00:00Z")))
    assert fired(first) == [("event.started", ev["id"], 0, "2026-01-05T10:00:00Z")]
    assert fired(fire(app, clock, "2026-01-05T10:00:00Z")) == []  # scanned again: nothing new
    assert fired(fire(app, clock, "2026-01-05T10:59:59Z")) == []
    assert fired(fire(app, clock, "2026-01-05T11:00:00Z")) == [("event.ended", ev["id"], 0, "2026-01-05T11:00:00Z")]

    # a re-scan of the same instants (a crash before the cursor moved on) fires nothing twice
    app.runtime.db.write_sync(
        lambda tx: tx.conn.execute("UPDATE moments_state SET value = ?", (to_ts(at("2026-01-05T09:30:00Z")),))
    )
    again = fire(app, clock, "2026-01-05T11:00:05Z", grace_minutes=120)
    assert again.scanned is not None and again.scanned[0] == to_ts(at("2026-01-05T09:30:00Z"))
    assert again.fired == [] and again.skipped == 0

    rows = logged(app)
    assert [(r["type"], r["resource_id"]) for r in rows] == [("event.started", ev["id"]), ("event.ended", ev["id"])]
    current = app.get(f"{base}/{ev['id']}").json()
    for row in rows:
        assert row["agent_id"] == agent["id"] and row["calendar_id"] == cal["id"]
        assert row["origin"] == "system" and row["webhook"] == 1
        assert row["payload"]["data"] == {"object": current}  # the event as the API shows it
    assert rows[0]["payload"]["created_at"] == "2026-01-05T10:00:00.000Z"


def test_moments_do_not_move_the_calendar_revision(app: Api, clock: ManualClock) -> None:
    _, cal, _ = setup(app)
    app.event(cal["id"], "2026-01-05T10:00:00Z", "2026-01-05T11:00:00Z", reminders=[5])
    revision = app.runtime.db.read_sync(
        lambda tx: next(iter(tx.conn.execute("SELECT revision FROM calendars WHERE id = ?", (cal["id"],))))["revision"]
    )
    got = sweep(app, clock, at("2026-01-05T09:30:00Z"), at("2026-01-05T11:30:00Z"), timedelta(minutes=5))
    assert [k for k, *_ in got] == ["event.reminder", "event.started", "event.ended"]
    after = app.runtime.db.read_sync(
        lambda tx: next(iter(tx.conn.execute("SELECT revision FROM calendars WHERE id = ?", (cal["id"],))))["revision"]
    )
    assert after == revision


def test_two_reminders_fire_at_their_minutes_before_the_start(app: Api, clock: ManualClock) -> None:
    _, cal, base = setup(app, default_reminders=[30])
    ev = app.event(cal["id"], "2026-01-05T12:00:00Z", "2026-01-05T13:00:00Z", title="Review", reminders=[60, 10])
    assert ev["reminders"] == [10, 60]
    defaulted = app.event(cal["id"], "2026-01-05T12:00:00Z", "2026-01-05T12:30:00Z", title="Defaults")
    silent = app.event(cal["id"], "2026-01-05T12:00:00Z", "2026-01-05T12:30:00Z", title="None", reminders=[])
    assert defaulted["reminders"] is None and silent["reminders"] == []

    assert fired(fire(app, clock, "2026-01-05T10:59:59Z")) == []
    assert fired(fire(app, clock, "2026-01-05T11:00:00Z")) == [("event.reminder", ev["id"], 60, "2026-01-05T11:00:00Z")]
    assert fired(fire(app, clock, "2026-01-05T11:29:59Z")) == []
    # a null `reminders` takes the calendar's default_reminders, as feeds render VALARMs
    assert fired(fire(app, clock, "2026-01-05T11:30:00Z")) == [
        ("event.reminder", defaulted["id"], 30, "2026-01-05T11:30:00Z")
    ]
    assert fired(fire(app, clock, "2026-01-05T11:49:59Z")) == []
    assert fired(fire(app, clock, "2026-01-05T11:50:00Z")) == [("event.reminder", ev["id"], 10, "2026-01-05T11:50:00Z")]
    assert fired(fire(app, clock, "2026-01-05T11:50:30Z")) == []

    reminders = [r for r in logged(app) if r["type"] == "event.reminder"]
    assert [(r["resource_id"], r["payload"]["data"]["object"]["reminder_minutes"]) for r in reminders] == [
        (ev["id"], 60),
        (defaulted["id"], 30),
        (ev["id"], 10),
    ]
    current = app.get(f"{base}/{ev['id']}").json()
    assert reminders[0]["payload"]["data"]["object"] == {**current, "reminder_minutes": 60}
    assert silent["id"] not in {r["resource_id"] for r in reminders}

    got = app.runtime.db.read_sync(
        lambda tx: moments.reminder_moments(tx, to_ts(at("2026-01-05T11:00:00Z")), to_ts(at("2026-01-05T12:00:00Z")))
    )
    assert [(e["id"], m, iso(from_ts(ts))) for e, m, ts in got] == [
        (defaulted["id"], 30, "2026-01-05T11:30:00Z"),
        (ev["id"], 10, "2026-01-05T11:50:00Z"),
    ]  # (after, until]: the 60-minute reminder at 11:00 is not after 11:00


def test_daily_series_at_nine_berlin_across_both_dst_changes(app: Api, clock: ManualClock) -> None:
    _, cal, _ = setup(app, timezone="Europe/Berlin")
    autumn = app.event(
        cal["id"],
        "2026-10-23T09:00:00+02:00",
        "2026-10-23T09:30:00+02:00",
        title="Daily",
        recurrence=["RRULE:FREQ=DAILY;COUNT=5"],
    )
    spring = app.event(
        cal["id"],
        "2026-03-27T09:00:00+01:00",
        "2026-03-27T09:30:00+01:00",
        title="Daily",
        recurrence=["RRULE:FREQ=DAILY;COUNT=4"],
    )

    def starts(after: str, until: str) -> list[tuple[str, str]]:
        got = app.runtime.db.read_sync(lambda tx: moments.occurrences_at(tx, "start", 0, to_ts(at(after)), to_ts(at(until))))
        return [(e["id"], iso(from_ts(ts)) or "") for e, ts in got]

    # 09:00 CET is 08:00Z until 29 March, 09:00 CEST 07:00Z from then on
    assert starts("2026-03-26T00:00:00Z", "2026-04-01T00:00:00Z") == [
        (f"{spring['id']}_20260327T080000Z", "2026-03-27T08:00:00Z"),
        (f"{spring['id']}_20260328T080000Z", "2026-03-28T08:00:00Z"),
        (f"{spring['id']}_20260329T070000Z", "2026-03-29T07:00:00Z"),
        (f"{spring['id']}_20260330T070000Z", "2026-03-30T07:00:00Z"),
    ]

    # and back on 25 October: 07:00Z (CEST) before, 08:00Z (CET) after; fired by scans an hour apart
    got = sweep(app, clock, at("2026-10-23T00:00:00Z"), at("2026-10-28T00:00:00Z"), timedelta(hours=1))
    assert [(k, i, ts) for k, i, _, ts in got if k == "event.started"] == [
        ("event.started", f"{autumn['id']}_20261023T070000Z", "2026-10-23T07:00:00Z"),
        ("event.started", f"{autumn['id']}_20261024T070000Z", "2026-10-24T07:00:00Z"),
        ("event.started", f"{autumn['id']}_20261025T080000Z", "2026-10-25T08:00:00Z"),
        ("event.started", f"{autumn['id']}_20261026T080000Z", "2026-10-26T08:00:00Z"),
        ("event.started", f"{autumn['id']}_20261027T080000Z", "2026-10-27T08:00:00Z"),
    ]
    assert [ts for k, _, _, ts in got if k == "event.ended"] == [
        "2026-10-23T07:30:00Z",
        "2026-10-24T07:30:00Z",
        "2026-10-25T08:30:00Z",
        "2026-10-26T08:30:00Z",
        "2026-10-27T08:30:00Z",
    ]
    started = [r for r in logged(app) if r["type"] == "event.started"]
    first = started[0]["payload"]["data"]["object"]
    assert first["recurring_event_id"] == autumn["id"] and first["recurrence"] is None
    assert (first["start_time"], first["end_time"]) == ("2026-10-23T07:00:00Z", "2026-10-23T07:30:00Z")


def test_the_changed_hour_fires_at_the_new_utc_instant_not_the_old(make_api: Any) -> None:
    clock = ManualClock(at("2026-10-25T06:00:00Z"))
    api = make_api(clock=clock)
    fire(api, clock, at("2026-10-25T06:00:00Z"))
    _, cal, _ = setup(api, timezone="Europe/Berlin")
    series = api.event(
        cal["id"],
        "2026-10-24T09:00:00+02:00",
        "2026-10-24T09:30:00+02:00",
        recurrence=["RRULE:FREQ=DAILY;COUNT=3"],
    )
    assert fired(fire(api, clock, "2026-10-25T07:00:00Z")) == []  # 09:00 CEST would have been now
    assert fired(fire(api, clock, "2026-10-25T07:59:59Z")) == []
    assert fired(fire(api, clock, "2026-10-25T08:00:00Z")) == [
        ("event.started", f"{series['id']}_20261025T080000Z", 0, "2026-10-25T08:00:00Z")
    ]


def test_moved_occurrence_fires_at_its_new_time_cancelled_and_deleted_ones_never(app: Api, clock: ManualClock) -> None:
    _, cal, base = setup(app)
    series = app.event(
        cal["id"], "2026-01-06T10:00:00Z", "2026-01-06T10:30:00Z", title="Daily", recurrence=["RRULE:FREQ=DAILY;COUNT=4"]
    )
    sid = series["id"]
    moved = app.patch(
        f"{base}/{sid}_20260107T100000Z", json={"start_time": "2026-01-07T14:00:00Z", "end_time": "2026-01-07T14:30:00Z"}
    )
    assert moved.status_code == 200 and moved.json()["start_time"] == "2026-01-07T14:00:00Z"
    assert app.post(f"{base}/{sid}_20260108T100000Z/cancel").json()["status"] == "cancelled"
    assert app.delete(f"{base}/{sid}_20260109T100000Z").status_code == 204

    got = app.runtime.db.read_sync(
        lambda tx: moments.occurrences_at(
            tx, "start", 0, to_ts(at("2026-01-06T00:00:00Z")), to_ts(at("2026-01-10T00:00:00Z"))
        )
    )
    assert [(e["id"], iso(from_ts(ts))) for e, ts in got] == [
        (f"{sid}_20260106T100000Z", "2026-01-06T10:00:00Z"),
        (f"{sid}_20260107T100000Z", "2026-01-07T14:00:00Z"),
    ]
    # cancelled ones fire only when asked for (statuses)
    cancelled = app.runtime.db.read_sync(
        lambda tx: moments.occurrences_at(
            tx, "start", 0, to_ts(at("2026-01-06T00:00:00Z")), to_ts(at("2026-01-10T00:00:00Z")), statuses=("cancelled",)
        )
    )
    assert [e["id"] for e, _ in cancelled] == [f"{sid}_20260108T100000Z"]

    assert fired(fire(app, clock, "2026-01-07T09:30:00Z", grace_minutes=24 * 60)) == [
        ("event.started", f"{sid}_20260106T100000Z", 0, "2026-01-06T10:00:00Z"),
        ("event.ended", f"{sid}_20260106T100000Z", 0, "2026-01-06T10:30:00Z"),
    ]
    got_moves = sweep(app, clock, at("2026-01-07T10:00:00Z"), at("2026-01-10T00:00:00Z"), timedelta(minutes=30))
    assert got_moves == [
        ("event.started", f"{sid}_20260107T100000Z", 0, "2026-01-07T14:00:00Z"),
        ("event.ended", f"{sid}_20260107T100000Z", 0, "2026-01-07T14:30:00Z"),
    ]
    obj = next(r for r in logged(app) if r["resource_id"] == f"{sid}_20260107T100000Z")["payload"]["data"]["object"]
    assert obj == app.get(f"{base}/{sid}_20260107T100000Z").json()


def test_all_day_event_moments_are_local_midnights(app: Api, clock: ManualClock) -> None:
    _, cal, _ = setup(app, timezone="Europe/Berlin")
    day = app.event(cal["id"], "2026-01-10", "2026-01-11", title="Offsite", all_day=True, reminders=[15])
    got = sweep(app, clock, at("2026-01-09T20:00:00Z"), at("2026-01-11T00:00:00Z"), timedelta(minutes=15))
    # 00:00 Berlin (CET) is 23:00Z the day before; the 15-minute reminder is 23:45 local the evening before
    assert got == [
        ("event.reminder", day["id"], 15, "2026-01-09T22:45:00Z"),
        ("event.started", day["id"], 0, "2026-01-09T23:00:00Z"),
        ("event.ended", day["id"], 0, "2026-01-10T23:00:00Z"),
    ]
    obj = logged(app)[1]["payload"]["data"]["object"]
    assert (obj["all_day"], obj["start_date"], obj["end_date"]) == (True, "2026-01-10", "2026-01-11")


def test_holds_and_cancelled_events_do_not_fire_tentative_ones_do(app: Api, clock: ManualClock) -> None:
    _, cal, base = setup(app)
    hold = app.event(cal["id"], "2026-01-05T09:30:00Z", "2026-01-05T10:00:00Z", status="hold", reminders=[5])
    tentative = app.event(cal["id"], "2026-01-05T09:30:00Z", "2026-01-05T10:00:00Z", status="tentative")
    gone = app.event(cal["id"], "2026-01-05T09:30:00Z", "2026-01-05T10:00:00Z")
    assert app.post(f"{base}/{gone['id']}/cancel").json()["status"] == "cancelled"
    got = sweep(app, clock, at("2026-01-05T09:05:00Z"), at("2026-01-05T10:05:00Z"), timedelta(minutes=5))
    assert got == [
        ("event.started", tentative["id"], 0, "2026-01-05T09:30:00Z"),
        ("event.ended", tentative["id"], 0, "2026-01-05T10:00:00Z"),
    ]
    holds = app.runtime.db.read_sync(
        lambda tx: moments.occurrences_at(
            tx, "start", 5, to_ts(at("2026-01-05T09:00:00Z")), to_ts(at("2026-01-05T10:00:00Z")), statuses=("hold",)
        )
    )
    assert [(e["id"], iso(from_ts(ts))) for e, ts in holds] == [(hold["id"], "2026-01-05T09:25:00Z")]


def test_occurrences_at_minutes_before_start_and_end(app: Api, clock: ManualClock) -> None:
    _, cal, _ = setup(app)
    ev = app.event(cal["id"], "2026-01-05T10:00:00Z", "2026-01-05T11:00:00Z")
    weekly = app.event(cal["id"], "2026-01-05T10:00:00Z", "2026-01-05T10:20:00Z", recurrence=["RRULE:FREQ=WEEKLY;COUNT=3"])

    def query(edge: Any, minutes: int, after: str, until: str) -> list[tuple[str, str]]:
        got = app.runtime.db.read_sync(
            lambda tx: moments.occurrences_at(tx, edge, minutes, to_ts(at(after)), to_ts(at(until)))
        )
        return [(e["id"], iso(from_ts(ts)) or "") for e, ts in got]

    # the other engineer's event.starting trigger: 15 minutes before the start
    assert query("start", 15, "2026-01-05T09:44:00Z", "2026-01-05T09:45:00Z") == [
        (ev["id"], "2026-01-05T09:45:00Z"),
        (f"{weekly['id']}_20260105T100000Z", "2026-01-05T09:45:00Z"),
    ]
    assert query("start", 15, "2026-01-05T09:45:00Z", "2026-01-05T09:46:00Z") == []  # (after, until]
    assert query("start", 15, "2026-01-05T09:00:00Z", "2026-01-05T09:44:59Z") == []
    assert query("start", 15, "2026-01-12T09:00:00Z", "2026-01-12T10:00:00Z") == [
        (f"{weekly['id']}_20260112T100000Z", "2026-01-12T09:45:00Z")
    ]
    assert query("end", 5, "2026-01-05T10:00:00Z", "2026-01-05T11:00:00Z") == [
        (f"{weekly['id']}_20260105T100000Z", "2026-01-05T10:15:00Z"),
        (ev["id"], "2026-01-05T10:55:00Z"),
    ]
    assert query("end", 0, "2026-01-05T10:20:00Z", "2026-01-05T11:00:00Z") == [(ev["id"], "2026-01-05T11:00:00Z")]
    # rows in the store shape (what a trigger presents itself, with its calendar)
    (row, moment), _ = app.runtime.db.read_sync(
        lambda tx: moments.occurrences_at(
            tx, "start", 15, to_ts(at("2026-01-05T09:00:00Z")), to_ts(at("2026-01-05T10:00:00Z"))
        )
    )
    assert (row["id"], row["start_ts"], moment) == (ev["id"], to_ts(at("2026-01-05T10:00:00Z")), row["start_ts"] - 900)
    calendar = app.runtime.db.read_sync(lambda tx: cal_store.get(tx.conn, cal["id"]))
    assert present(row, calendar) == app.get(f"/v1/calendars/{cal['id']}/events/{ev['id']}").json()
    with pytest.raises(ValueError, match="edge"):
        app.runtime.db.read_sync(lambda tx: moments.occurrences_at(tx, "middle", 0, 0, 1))  # type: ignore[arg-type]


def test_downtime_within_the_grace_fires_the_missed_moments_once(app: Api, clock: ManualClock) -> None:
    _, cal, _ = setup(app)
    ev = app.event(cal["id"], "2026-01-05T10:00:00Z", "2026-01-05T10:20:00Z", reminders=[30])
    fire(app, clock, "2026-01-05T09:20:00Z")
    # down from 09:20 to 10:15 (55 minutes, grace 60): the reminder and the start fire late, once
    back = fire(app, clock, "2026-01-05T10:15:00Z")
    assert back.skipped == 0
    assert fired(back) == [
        ("event.reminder", ev["id"], 30, "2026-01-05T09:30:00Z"),
        ("event.started", ev["id"], 0, "2026-01-05T10:00:00Z"),
    ]
    assert fired(fire(app, clock, "2026-01-05T10:15:01Z")) == []
    assert fired(fire(app, clock, "2026-01-05T10:20:00Z")) == [("event.ended", ev["id"], 0, "2026-01-05T10:20:00Z")]
    assert [r["type"] for r in logged(app)] == ["event.reminder", "event.started", "event.ended"]


def test_downtime_beyond_the_grace_skips_old_moments_and_fires_recent_ones(app: Api, clock: ManualClock) -> None:
    _, cal, _ = setup(app)
    old = app.event(cal["id"], "2026-01-05T09:10:00Z", "2026-01-05T09:40:00Z", title="Old")
    recent = app.event(cal["id"], "2026-01-05T11:10:00Z", "2026-01-05T12:30:00Z", title="Recent")
    fire(app, clock, "2026-01-05T09:05:00Z")
    # down from 09:05 to 11:30 with a 60-minute grace: only what happened after 10:30 still fires
    back = fire(app, clock, "2026-01-05T11:30:00Z")
    assert back.skipped == 2  # Old's start and end
    assert back.skipped_window == (to_ts(at("2026-01-05T09:05:00Z")), to_ts(at("2026-01-05T10:30:00Z")))
    assert fired(back) == [("event.started", recent["id"], 0, "2026-01-05T11:10:00Z")]
    again = fire(app, clock, "2026-01-05T11:30:01Z")
    assert again.fired == [] and again.skipped == 0
    assert old["id"] not in {r["resource_id"] for r in logged(app)}


def test_worker_restart_after_a_gap_fires_missed_moments_once_and_skips_older(
    make_api: Any, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    api = make_api(clock=clock, moments_grace_minutes=30)
    api.receive_webhooks()
    _, cal, _ = setup(api)
    early = api.event(cal["id"], "2026-01-05T09:10:00Z", "2026-01-05T09:20:00Z", title="Early")
    late = api.event(cal["id"], "2026-01-05T09:50:00Z", "2026-01-05T10:30:00Z", title="Late")
    worker = MomentWorker(api.runtime)
    assert asyncio.run(worker.tick()) is not None  # the first tick sets the cursor (a write)
    assert asyncio.run(worker.tick()) is None  # nothing due: no write
    clock.set(at("2026-01-05T09:10:00Z"))
    assert fired(asyncio.run(worker.tick()) or moments.FireResult()) == [
        ("event.started", early["id"], 0, "2026-01-05T09:10:00Z")
    ]

    # the server stops at 09:10 and a new process starts at 10:00: 50 minutes, grace 30
    clock.set(at("2026-01-05T10:00:00Z"))
    restarted = MomentWorker(api.runtime)
    result = asyncio.run(restarted.tick())
    assert result is not None and result.skipped == 1  # Early's end at 09:20
    (warning,) = [r for r in caplog.records if r.name == "chronary.workers.moments" and r.levelname == "WARNING"]
    assert warning.getMessage() == (
        "skipped 1 event moment(s) between 2026-01-05T09:10:00Z and 2026-01-05T09:30:00Z: "
        "missed by more than the grace of 30 minute(s)"
    )
    assert fired(result) == [("event.started", late["id"], 0, "2026-01-05T09:50:00Z")]
    assert asyncio.run(restarted.tick()) is None
    # restarted again right away: nothing fires twice
    assert fired(asyncio.run(MomentWorker(api.runtime).tick()) or moments.FireResult()) == []
    assert [(r["type"], r["resource_id"]) for r in logged(api)] == [
        ("event.started", early["id"]),
        ("event.started", late["id"]),
    ]


def test_worker_writes_only_when_something_is_due(app: Api, clock: ManualClock) -> None:
    _, cal, _ = setup(app)
    commits: list[int] = []
    app.runtime.db.commit_listeners.append(lambda: commits.append(1))
    worker = MomentWorker(app.runtime)
    assert asyncio.run(worker.tick()) is not None  # catches up once on start
    n = len(commits)
    for _ in range(5):
        clock.advance(seconds=1)
        assert asyncio.run(worker.tick()) is None
    assert len(commits) == n  # idle ticks never write (every commit wakes every worker)

    # an event created between ticks is seen at the next one and fires on time
    ev = app.event(cal["id"], "2026-01-05T09:00:30Z", "2026-01-05T09:01:00Z")
    clock.set(at("2026-01-05T09:00:29Z"))
    assert asyncio.run(worker.tick()) is None
    clock.set(at("2026-01-05T09:00:30Z"))
    result = asyncio.run(worker.tick())
    assert result is not None and fired(result) == [("event.started", ev["id"], 0, "2026-01-05T09:00:30Z")]
    # idle again, but the cursor is still brought forward about once a minute
    clock.set(at("2026-01-05T09:00:45Z"))
    assert asyncio.run(worker.tick()) is None
    clock.set(at("2026-01-05T09:01:00Z"))
    assert fired(asyncio.run(worker.tick()) or moments.FireResult()) == [
        ("event.ended", ev["id"], 0, "2026-01-05T09:01:00Z")
    ]
    clock.set(at("2026-01-05T09:02:01Z"))
    refreshed = asyncio.run(worker.tick())
    assert refreshed is not None and refreshed.fired == []
    cursor = app.runtime.db.read_sync(lambda tx: next(iter(tx.conn.execute("SELECT value FROM moments_state")))["value"])
    assert cursor == to_ts(at("2026-01-05T09:02:01Z"))


def test_events_created_or_moved_after_a_scan(app: Api, clock: ManualClock) -> None:
    _, cal, base = setup(app)
    fire(app, clock, "2026-01-05T10:05:00Z")
    # created after the scan passed its start: it never fires (it started before it existed)
    past = app.event(cal["id"], "2026-01-05T10:00:00Z", "2026-01-05T10:30:00Z", title="Past")
    soon = app.event(cal["id"], "2026-01-05T10:10:00Z", "2026-01-05T10:20:00Z", title="Soon")
    later = app.event(cal["id"], "2026-01-05T12:00:00Z", "2026-01-05T12:30:00Z", title="Later")
    assert fired(fire(app, clock, "2026-01-05T10:10:00Z")) == [("event.started", soon["id"], 0, "2026-01-05T10:10:00Z")]
    # moved earlier: fires at its new time, not at the old one
    r = app.patch(f"{base}/{later['id']}", json={"start_time": "2026-01-05T10:40:00Z", "end_time": "2026-01-05T10:50:00Z"})
    assert r.status_code == 200
    # moved after it started: it starts again at the new time
    r = app.patch(f"{base}/{soon['id']}", json={"start_time": "2026-01-05T10:25:00Z", "end_time": "2026-01-05T10:35:00Z"})
    assert r.status_code == 200
    got = sweep(app, clock, at("2026-01-05T10:15:00Z"), at("2026-01-05T13:00:00Z"), timedelta(minutes=5))
    assert got == [
        ("event.started", soon["id"], 0, "2026-01-05T10:25:00Z"),
        ("event.ended", past["id"], 0, "2026-01-05T10:30:00Z"),
        ("event.ended", soon["id"], 0, "2026-01-05T10:35:00Z"),
        ("event.started", later["id"], 0, "2026-01-05T10:40:00Z"),
        ("event.ended", later["id"], 0, "2026-01-05T10:50:00Z"),
    ]


def test_fired_moments_are_pruned_once_no_scan_can_reach_them(app: Api, clock: ManualClock) -> None:
    _, cal, _ = setup(app)
    ev = app.event(cal["id"], "2026-01-05T09:30:00Z", "2026-01-05T10:00:00Z")

    def kept() -> list[tuple[str, str]]:
        return app.runtime.db.read_sync(
            lambda tx: [
                (r["kind"], r["event_id"]) for r in tx.conn.execute("SELECT kind, event_id FROM moments_fired ORDER BY kind")
            ]
        )

    sweep(app, clock, at("2026-01-05T09:30:00Z"), at("2026-01-05T10:00:00Z"), timedelta(minutes=30))
    assert kept() == [("event.ended", ev["id"]), ("event.started", ev["id"])]
    assert fire(app, clock, "2026-01-07T10:30:00Z").pruned == 0  # 2 days + the grace: not yet
    result = fire(app, clock, "2026-01-07T11:00:01Z")
    assert result.pruned == 2 and kept() == []


def test_bad_data_and_failing_listeners_do_not_stop_other_moments(
    app: Api, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    agent, cal, _ = setup(app)
    other = app.calendar(agent["id"], name="Other")
    broken = app.event(cal["id"], "2026-01-05T09:30:00Z", "2026-01-05T10:00:00Z", recurrence=["RRULE:FREQ=DAILY"])
    app.runtime.db.write_sync(
        lambda tx: tx.conn.execute("UPDATE events SET recurrence = ? WHERE id = ?", ('["RRULE:FREQ=NOPE"]', broken["id"]))
    )
    good = app.event(other["id"], "2026-01-05T09:30:00Z", "2026-01-05T10:00:00Z", title="Good")
    vetoed = app.event(other["id"], "2026-01-05T09:30:00Z", "2026-01-05T09:45:00Z", title="Vetoed")

    def boom(tx: Any, change: changes.Change) -> None:
        if change.type == "event.started" and isinstance(change.object, dict) and change.object["id"] == vetoed["id"]:
            tx.conn.execute("INSERT INTO moments_state (key, value) VALUES ('junk', 1)")  # undone with the moment
            raise RuntimeError("listener failed")

    app.runtime.db.changes.listen("boom", boom)
    result = fire(app, clock, "2026-01-05T09:30:00Z")
    assert result.failed == 1
    assert fired(result) == [("event.started", good["id"], 0, "2026-01-05T09:30:00Z")]
    assert fired(fire(app, clock, "2026-01-05T09:45:00Z")) == [("event.ended", vetoed["id"], 0, "2026-01-05T09:45:00Z")]
    keys = app.runtime.db.read_sync(lambda tx: [r["key"] for r in tx.conn.execute("SELECT key FROM moments_state")])
    assert keys == ["cursor"]
    # the broken calendar is reported once, not at every scan
    warned = [r for r in caplog.records if r.name == "chronary.moments" and cal["id"] in r.getMessage()]
    assert len(warned) == 1 and "cannot expand" in warned[0].getMessage()
    assert any("could not fire event.started of " + vetoed["id"] in r.getMessage() for r in caplog.records)

    # and the worker keeps ticking on the same data
    worker = MomentWorker(app.runtime)
    clock.set(at("2026-01-05T10:00:00Z"))
    ticked = asyncio.run(worker.tick())
    assert ticked is not None and fired(ticked) == [("event.ended", good["id"], 0, "2026-01-05T10:00:00Z")]


def test_webhook_endpoints_receive_the_new_types(app: Api, clock: ManualClock) -> None:
    agent, cal, base = setup(app)
    bob = app.agent("Bob")
    receivers = {name: Receiver().start() for name in ("reminders", "ada", "bob", "all")}
    driver = Driver(app.runtime, timeout=3.0, jitter=0.0, poll_seconds=0.05, shutdown_grace=0.2)
    try:

        def endpoint(name: str, events: list[str], **fields: Any) -> dict[str, Any]:
            r = app.post("/v1/webhooks", json={"url": receivers[name].url, "events": events, **fields})
            assert r.status_code == 201, r.text
            return r.json()

        hooks = {
            "reminders": endpoint("reminders", ["event.reminder"]),
            "ada": endpoint("ada", ["event.started"], agent_id=agent["id"]),  # agent-scoped: Ada's calendar
            "bob": endpoint("bob", ["*"], agent_id=bob["id"]),
            "all": endpoint("all", ["*"]),
        }
        ev = app.event(cal["id"], "2026-01-05T09:30:00Z", "2026-01-05T10:00:00Z", title="Sync", reminders=[20])
        got = sweep(app, clock, at("2026-01-05T09:10:00Z"), at("2026-01-05T10:00:00Z"), timedelta(minutes=10))
        assert [k for k, *_ in got] == ["event.reminder", "event.started", "event.ended"]
        driver.run()

        def types(name: str) -> list[str]:
            r = app.get(f"/v1/webhooks/{hooks[name]['id']}/deliveries", params={"limit": 50})
            assert r.status_code == 200, r.text
            return sorted(d["event_type"] for d in r.json()["data"])

        assert types("reminders") == ["event.reminder"]
        assert types("ada") == ["event.started"]
        assert types("bob") == []
        assert types("all") == ["event.created", "event.ended", "event.reminder", "event.started"]

        current = app.get(f"{base}/{ev['id']}").json()
        for name, count in (("reminders", 1), ("ada", 1), ("all", 4)):
            received = receivers[name].wait_for(count)
            for item in received:
                verify(item.body, item.headers, hooks[name]["secret"], now=clock.now().timestamp())
        (reminder,) = [r.json for r in receivers["reminders"].requests]
        assert reminder["type"] == "event.reminder"
        assert reminder["data"] == {"object": {**current, "reminder_minutes": 20}}
        (started,) = [r.json for r in receivers["ada"].requests]
        assert started["type"] == "event.started" and started["data"] == {"object": current}
        assert [r.json["type"] for r in receivers["all"].requests] == [
            "event.created",
            "event.reminder",
            "event.started",
            "event.ended",
        ]
        assert receivers["bob"].requests == []
    finally:
        driver.close()
        for receiver in receivers.values():
            receiver.close()
