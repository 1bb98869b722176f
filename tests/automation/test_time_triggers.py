"""Time-driven flow triggers on the real app and a real SQLite file, with a ManualClock: the
automation worker's `tick()` (and the moments worker's, for event.started / ended / reminder)
driven by hand, so every firing is checked at its instant — `event.starting` for single and
recurring events across a DST week, moved and cancelled occurrences, restarts within and beyond
the grace, filters; the moments as flow triggers; cron schedules in a timezone across DST."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chronary.clock import ManualClock
from chronary.timeutil import to_ts
from chronary.workers.automation import AutomationWorker
from chronary.workers.moments import MomentWorker
from tests.conftest import Api
from tests.webhooks.receiver import Receiver

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Workers:
    """An app's automation worker (and moments worker) ticked by hand on one event-loop thread.

    `tick(when)` sets the clock, lets the moments worker record what is due (its changes queue
    the event-triggered runs in their transaction), fires the due time-driven triggers and runs
    every execution that queued to the end before answering."""

    def __init__(self, runtime: Any, clock: ManualClock) -> None:
        self.runtime = runtime
        self.clock = clock
        self.automation = AutomationWorker(runtime)
        self.moments = MomentWorker(runtime)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def _call(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def tick(self, when: datetime | str | None = None) -> None:
        if when is not None:
            self.clock.set(at(when) if isinstance(when, str) else when)

        async def go() -> None:
            await self.moments.tick()
            for _ in range(20):  # more runs than the worker takes at once: tick again
                await self.automation.tick()
                if not self.automation.tasks:
                    return
                await asyncio.gather(*self.automation.tasks.values())
            raise AssertionError("runs kept queueing")

        self._call(go())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def receiver() -> Any:
    r = Receiver().start()
    yield r
    r.close()


@pytest.fixture
def workers() -> Any:
    made: list[Workers] = []

    def factory(api: Api, clock: ManualClock) -> Workers:
        w = Workers(api.runtime, clock)
        made.append(w)
        return w

    yield factory
    for w in made:
        w.close()


def hook(url: str, **more: str) -> dict[str, Any]:
    """A step that posts what the run saw to the receiver."""
    return {
        "id": "tell",
        "type": "http.request",
        "url": url,
        "body": {
            "type": "{{ trigger.type }}",
            "event": "{{ trigger.event.id }}",
            "title": "{{ trigger.event.title }}",
            "start": "{{ trigger.event.start_time }}",
            "now": "{{ now }}",
            **more,
        },
    }


def starting_hook(url: str) -> dict[str, Any]:
    return hook(url, fires_at="{{ trigger.fires_at }}")


def flow(api: Api, trigger: dict[str, Any], steps: list[dict[str, Any]], name: str = "flow") -> dict[str, Any]:
    r = api.post("/connect/v1/flows", json={"name": name, "trigger": trigger, "steps": steps})
    assert r.status_code == 201, r.text
    return r.json()


def starting(minutes: int = 15, **config: Any) -> dict[str, Any]:
    return {
        "providerType": "chronary",
        "triggerName": "event.starting",
        "kind": "event",
        "config": {"minutes": minutes, **config},
    }


def executions(api: Api, flow_id: str) -> list[dict[str, Any]]:
    """The flow's executions, oldest first."""
    r = api.get(f"/connect/v1/flows/{flow_id}/executions", params={"limit": 200})
    assert r.status_code == 200, r.text
    return list(reversed(r.json()["data"]))


def calendar(api: Api, timezone: str = "UTC", name: str = "Work") -> dict[str, Any]:
    agent = api.agent("Ada")
    return api.calendar(agent["id"], name=name, timezone=timezone)


# --- event.starting ------------------------------------------------------------------------------


def test_event_starting_fires_once_fifteen_minutes_before_a_single_event(
    make_api: Any, clock: ManualClock, workers: Any, receiver: Receiver
) -> None:
    api = make_api(clock=clock)
    w = workers(api, clock)
    cal = calendar(api)
    f = flow(api, starting(15), [starting_hook(receiver.url)])
    assert f["trigger"]["config"] == {"minutes": 15}
    ev = api.event(cal["id"], "2026-01-05T10:00:00Z", "2026-01-05T11:00:00Z", title="Client call")

    for when in ("2026-01-05T09:30:00Z", "2026-01-05T09:44:00Z", "2026-01-05T09:44:59Z"):
        w.tick(when)
    assert receiver.requests == [] and executions(api, f["id"]) == []
    w.tick("2026-01-05T09:45:00Z")
    (got,) = receiver.requests
    assert got.json == {
        "type": "event.starting",
        "event": ev["id"],
        "title": "Client call",
        "start": "2026-01-05T10:00:00Z",
        "fires_at": "2026-01-05T09:45:00.000Z",
        "now": "2026-01-05T09:45:00.000Z",
    }
    for when in ("2026-01-05T09:45:00Z", "2026-01-05T09:45:01Z", "2026-01-05T09:50:00Z", "2026-01-05T10:00:00Z"):
        w.tick(when)
    assert len(receiver.requests) == 1
    (run,) = executions(api, f["id"])
    assert run["status"] == "succeeded" and run["mode"] == "trigger"
    assert run["triggerId"] == f["trigger"]["id"] and run["createdAt"] == "2026-01-05T09:45:00.000Z"
    data = run["triggerData"]
    assert (data["type"], data["minutes"], data["fires_at"]) == ("event.starting", 15, "2026-01-05T09:45:00.000Z")
    assert data["event"] == api.get(f"/v1/calendars/{cal['id']}/events/{ev['id']}").json()
    assert data["object"] == data["event"] and data["data"] == {"object": data["event"]}

    # moved later after it fired: it fires again before its new start (as the moments do)
    r = api.patch(
        f"/v1/calendars/{cal['id']}/events/{ev['id']}",
        json={"start_time": "2026-01-05T11:00:00Z", "end_time": "2026-01-05T11:30:00Z"},
    )
    assert r.status_code == 200, r.text
    for when in ("2026-01-05T10:30:00Z", "2026-01-05T10:44:59Z", "2026-01-05T10:45:00Z", "2026-01-05T10:50:00Z"):
        w.tick(when)
    assert [(r.json["start"], r.json["fires_at"]) for r in receiver.requests] == [
        ("2026-01-05T10:00:00Z", "2026-01-05T09:45:00.000Z"),
        ("2026-01-05T11:00:00Z", "2026-01-05T10:45:00.000Z"),
    ]


def test_a_new_lead_time_on_the_same_flow_fires_again(
    make_api: Any, clock: ManualClock, workers: Any, receiver: Receiver
) -> None:
    """Changing "30 minutes before" to "15 minutes before" (DELETE the trigger, POST the new one)
    fires at the new lead time too, even for an occurrence the old trigger already fired for."""
    api = make_api(clock=clock)
    w = workers(api, clock)
    cal = calendar(api)
    f = flow(api, starting(30), [starting_hook(receiver.url)])
    ev = api.event(cal["id"], "2026-01-05T10:00:00Z", "2026-01-05T10:30:00Z", title="Client call")
    w.tick("2026-01-05T09:30:00Z")
    assert len(receiver.requests) == 1
    assert api.delete(f"/connect/v1/flows/{f['id']}/triggers/{f['trigger']['id']}").status_code == 204
    r = api.post(f"/connect/v1/flows/{f['id']}/triggers", json=starting(15))
    assert r.status_code == 201, r.text
    for when in ("2026-01-05T09:40:00Z", "2026-01-05T09:45:00Z", "2026-01-05T09:50:00Z"):
        w.tick(when)
    assert [(r.json["event"], r.json["fires_at"]) for r in receiver.requests] == [
        (ev["id"], "2026-01-05T09:30:00.000Z"),
        (ev["id"], "2026-01-05T09:45:00.000Z"),
    ]


def sweep(w: Workers, start: str, end: str, every_minutes: int, instants: list[str]) -> None:
    """Tick from `start` to `end` every few minutes, and a second before and at each instant."""
    grid: set[datetime] = set()
    when, last = at(start), at(end)
    while when <= last:
        grid.add(when)
        when += timedelta(minutes=every_minutes)
    for instant in instants:
        grid |= {at(instant) - timedelta(seconds=1), at(instant), at(instant) + timedelta(seconds=1)}
    for when in sorted(grid):
        w.tick(when)


def fired(api: Api, flow_id: str) -> list[tuple[str, str]]:
    """(occurrence id, firesAt) of each run, oldest first — each checked to have run at that instant."""
    out = []
    for run in executions(api, flow_id):
        data = run["triggerData"]
        assert run["status"] == "succeeded", run
        assert run["createdAt"] == data["fires_at"], run  # on time: queued at the instant itself
        out.append((data["event"]["id"], data["fires_at"]))
    return out


def test_a_daily_series_at_nine_berlin_fires_once_per_occurrence_across_the_autumn_change(
    make_api: Any, workers: Any, receiver: Receiver
) -> None:
    clock = ManualClock(at("2026-10-22T12:00:00Z"))
    api = make_api(clock=clock)
    w = workers(api, clock)
    cal = calendar(api, timezone="Europe/Berlin")
    f = flow(api, starting(15), [starting_hook(receiver.url)])
    series = api.event(
        cal["id"],
        "2026-10-23T09:00:00+02:00",
        "2026-10-23T09:30:00+02:00",
        title="Daily",
        recurrence=["RRULE:FREQ=DAILY;COUNT=6"],
    )
    sid, base = series["id"], f"/v1/calendars/{cal['id']}/events"
    # the 27th moves to 11:00 local; the 28th is cancelled
    moved = api.patch(
        f"{base}/{sid}_20261027T080000Z",
        json={"start_time": "2026-10-27T11:00:00+01:00", "end_time": "2026-10-27T11:30:00+01:00"},
    )
    assert moved.status_code == 200, moved.text
    assert api.post(f"{base}/{sid}_20261028T080000Z/cancel").json()["status"] == "cancelled"
    # 08:45 local: 06:45Z in summer time (CEST, until the 25th), 07:45Z after (CET); the moved one 09:45Z
    expected = [
        (f"{sid}_20261023T070000Z", "2026-10-23T06:45:00.000Z"),
        (f"{sid}_20261024T070000Z", "2026-10-24T06:45:00.000Z"),
        (f"{sid}_20261025T080000Z", "2026-10-25T07:45:00.000Z"),
        (f"{sid}_20261026T080000Z", "2026-10-26T07:45:00.000Z"),
        (f"{sid}_20261027T080000Z", "2026-10-27T09:45:00.000Z"),
    ]
    sweep(w, "2026-10-22T12:00:00Z", "2026-10-29T12:00:00Z", 30, [t for _, t in expected])
    assert fired(api, f["id"]) == expected
    assert [r.json["start"] for r in receiver.requests] == [
        "2026-10-23T07:00:00Z",
        "2026-10-24T07:00:00Z",
        "2026-10-25T08:00:00Z",
        "2026-10-26T08:00:00Z",
        "2026-10-27T10:00:00Z",
    ]
    # the old time of the moved occurrence (07:45Z on the 27th) fired nothing, nor did the cancelled one
    runs = executions(api, f["id"])
    assert all(r["triggerData"]["event"]["status"] == "confirmed" for r in runs)
    assert runs[-1]["triggerData"]["event"]["recurring_event_id"] == sid


def test_a_daily_series_at_nine_berlin_across_the_spring_change(make_api: Any, workers: Any, receiver: Receiver) -> None:
    clock = ManualClock(at("2026-03-27T00:00:00Z"))
    api = make_api(clock=clock)
    w = workers(api, clock)
    cal = calendar(api, timezone="Europe/Berlin")
    f = flow(api, starting(15), [starting_hook(receiver.url)])
    sid = api.event(
        cal["id"],
        "2026-03-27T09:00:00+01:00",
        "2026-03-27T09:30:00+01:00",
        title="Daily",
        recurrence=["RRULE:FREQ=DAILY;COUNT=4"],
    )["id"]
    expected = [
        (f"{sid}_20260327T080000Z", "2026-03-27T07:45:00.000Z"),
        (f"{sid}_20260328T080000Z", "2026-03-28T07:45:00.000Z"),
        (f"{sid}_20260329T070000Z", "2026-03-29T06:45:00.000Z"),
        (f"{sid}_20260330T070000Z", "2026-03-30T06:45:00.000Z"),
    ]
    sweep(w, "2026-03-27T00:00:00Z", "2026-03-31T00:00:00Z", 20, [t for _, t in expected])
    assert fired(api, f["id"]) == expected
    assert len(receiver.requests) == 4


def test_event_starting_after_a_restart_fires_what_the_grace_covers_once_and_skips_older(
    make_api: Any, clock: ManualClock, workers: Any, receiver: Receiver
) -> None:
    api = make_api(clock=clock, moments_grace_minutes=30)
    cal = calendar(api)
    f = flow(api, starting(15), [starting_hook(receiver.url)])
    early = api.event(cal["id"], "2026-01-05T10:00:00Z", "2026-01-05T10:10:00Z", title="Early")  # fires 09:45
    late = api.event(cal["id"], "2026-01-05T10:30:00Z", "2026-01-05T10:40:00Z", title="Late")  # fires 10:15
    last = api.event(cal["id"], "2026-01-05T11:00:00Z", "2026-01-05T11:10:00Z", title="Last")  # fires 10:45
    gap = api.event(cal["id"], "2026-01-05T11:20:00Z", "2026-01-05T11:30:00Z", title="Gap")  # fires 11:05
    workers(api, clock).tick("2026-01-05T09:30:00Z")
    assert executions(api, f["id"]) == []

    # the process stops at 09:30; a new one on the same data dir starts at 10:40 (70 minutes, grace 30)
    clock.set(at("2026-01-05T10:40:00Z"))
    restarted = make_api(clock=clock, moments_grace_minutes=30).as_key(api.key)
    w = workers(restarted, clock)
    w.tick()
    (run,) = executions(restarted, f["id"])
    assert run["triggerData"]["event"]["id"] == late["id"]
    assert (run["triggerData"]["fires_at"], run["createdAt"]) == ("2026-01-05T10:15:00.000Z", "2026-01-05T10:40:00.000Z")
    for when in ("2026-01-05T10:40:01Z", "2026-01-05T10:44:59Z"):
        w.tick(when)
    assert len(executions(restarted, f["id"])) == 1
    w.tick("2026-01-05T10:45:00Z")
    # a scan that covers the same instants again (the cursor set back): nothing fires twice
    restarted.runtime.db.write_sync(
        lambda tx: tx.conn.execute(
            "UPDATE flow_triggers SET state = json_set(state, '$.cursor', ?) WHERE id = ?",
            (to_ts(at("2026-01-05T10:10:00Z")), f["trigger"]["id"]),
        )
    )
    w.tick("2026-01-05T10:46:00Z")
    # a worker gap within one process, shorter than the grace: Gap (11:05) fires late, once
    w.tick("2026-01-05T11:15:00Z")
    # restarted again right away: nothing twice
    again = workers(make_api(clock=clock, moments_grace_minutes=30), clock)
    again.tick("2026-01-05T11:15:01Z")
    again.tick("2026-01-05T11:16:00Z")
    assert [
        (r["triggerData"]["event"]["id"], r["triggerData"]["fires_at"], r["createdAt"]) for r in executions(api, f["id"])
    ] == [
        (late["id"], "2026-01-05T10:15:00.000Z", "2026-01-05T10:40:00.000Z"),
        (last["id"], "2026-01-05T10:45:00.000Z", "2026-01-05T10:45:00.000Z"),
        (gap["id"], "2026-01-05T11:05:00.000Z", "2026-01-05T11:15:00.000Z"),
    ]
    assert [r.json["title"] for r in receiver.requests] == ["Late", "Last", "Gap"]
    assert early["id"] not in {r.json["event"] for r in receiver.requests}


def test_event_starting_filters_calendar_condition_and_agent(
    make_api: Any, clock: ManualClock, workers: Any, receiver: Receiver
) -> None:
    api = make_api(clock=clock)
    w = workers(api, clock)
    ada = api.agent("Ada")
    work = api.calendar(ada["id"], name="Work")
    home = api.calendar(ada["id"], name="Home")
    bob = api.agent("Bob")
    bobs = api.calendar(bob["id"], name="Bob's")
    filtered = flow(
        api,
        starting(10, calendarId=work["id"], condition="'client' in (trigger.event.title | lower)"),
        [starting_hook(receiver.url + "/filtered")],
        name="client calls at work",
    )
    rights = ["flows.view", "flows.write", "triggers.write", "task_history.view", "actions.execute"]
    ada_key = api.post("/v1/keys", json={"agent_id": ada["id"], "permissions": rights}).json()["secret"]
    mine = api.as_key(ada_key)
    agents = flow(mine, starting(10), [starting_hook(receiver.url + "/ada")], name="Ada's")
    starts = "2026-01-05T10:00:00Z", "2026-01-05T10:30:00Z"
    call = api.event(work["id"], *starts, title="Client call: ACME")
    lunch = api.event(work["id"], *starts, title="Lunch")
    home_call = api.event(home["id"], *starts, title="Client call from home")
    bob_call = api.event(bobs["id"], *starts, title="Client call (Bob)")
    api.event(work["id"], *starts, title="Client hold", status="hold", allow_overlap=True)  # holds never fire
    sweep(w, "2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z", 5, ["2026-01-05T09:50:00Z"])
    assert fired(api, filtered["id"]) == [(call["id"], "2026-01-05T09:50:00.000Z")]
    # an agent key's flow sees its agent's calendars only
    assert sorted(e for e, _ in fired(mine, agents["id"])) == sorted([call["id"], lunch["id"], home_call["id"]])
    assert bob_call["id"] not in {r.json["event"] for r in receiver.requests}
    assert len(receiver.requests) == 4


# --- event.started / event.ended / event.reminder as flow triggers --------------------------------


def moment_trigger(name: str, **config: Any) -> dict[str, Any]:
    return {"providerType": "chronary", "triggerName": name, "kind": "event", "config": config}


def test_the_moments_trigger_flows_once_each(make_api: Any, clock: ManualClock, workers: Any, receiver: Receiver) -> None:
    api = make_api(clock=clock)
    w = workers(api, clock)
    w.tick()  # the moments worker's first scan only sets its cursor
    cal = calendar(api)
    started = flow(api, moment_trigger("event.started"), [hook(receiver.url + "/started")], name="started")
    ended = flow(api, moment_trigger("event.ended"), [hook(receiver.url + "/ended")], name="ended")
    reminded = flow(api, moment_trigger("event.reminder"), [hook(receiver.url + "/reminder")], name="reminder")
    both = flow(
        api,
        moment_trigger("event.started", also=["event.ended"], condition="trigger.event.title == 'Standup'"),
        [hook(receiver.url + "/both")],
        name="standup start and end",
    )
    standup = api.event(
        cal["id"],
        "2026-01-05T10:00:00Z",
        "2026-01-05T10:15:00Z",
        title="Standup",
        reminders=[5, 30],
        recurrence=["RRULE:FREQ=DAILY;COUNT=2"],
    )
    review = api.event(cal["id"], "2026-01-05T11:00:00Z", "2026-01-05T12:00:00Z", title="Review", reminders=[])
    day1, day2 = f"{standup['id']}_20260105T100000Z", f"{standup['id']}_20260106T100000Z"
    instants = [
        "2026-01-05T09:30:00Z",
        "2026-01-05T09:55:00Z",
        "2026-01-05T10:00:00Z",
        "2026-01-05T10:15:00Z",
        "2026-01-05T11:00:00Z",
        "2026-01-05T12:00:00Z",
        "2026-01-06T09:30:00Z",
        "2026-01-06T09:55:00Z",
        "2026-01-06T10:00:00Z",
        "2026-01-06T10:15:00Z",
    ]
    sweep(w, "2026-01-05T09:00:00Z", "2026-01-06T11:00:00Z", 30, instants)

    def runs(flow_id: str) -> list[tuple[str, str, Any, str]]:
        out = []
        for run in executions(api, flow_id):
            assert run["status"] == "succeeded" and run["mode"] == "trigger", (run["error"], run["triggerData"])
            data = run["triggerData"]
            assert data["event"] == data["object"] == data["data"]["object"]
            out.append((data["type"], data["event"]["id"], data["event"].get("reminder_minutes"), run["createdAt"]))
        return out

    assert runs(started["id"]) == [
        ("event.started", day1, None, "2026-01-05T10:00:00.000Z"),
        ("event.started", review["id"], None, "2026-01-05T11:00:00.000Z"),
        ("event.started", day2, None, "2026-01-06T10:00:00.000Z"),
    ]
    assert runs(ended["id"]) == [
        ("event.ended", day1, None, "2026-01-05T10:15:00.000Z"),
        ("event.ended", review["id"], None, "2026-01-05T12:00:00.000Z"),
        ("event.ended", day2, None, "2026-01-06T10:15:00.000Z"),
    ]
    assert runs(reminded["id"]) == [
        ("event.reminder", day1, 30, "2026-01-05T09:30:00.000Z"),
        ("event.reminder", day1, 5, "2026-01-05T09:55:00.000Z"),
        ("event.reminder", day2, 30, "2026-01-06T09:30:00.000Z"),
        ("event.reminder", day2, 5, "2026-01-06T09:55:00.000Z"),
    ]
    assert runs(both["id"]) == [
        ("event.started", day1, None, "2026-01-05T10:00:00.000Z"),
        ("event.ended", day1, None, "2026-01-05T10:15:00.000Z"),
        ("event.started", day2, None, "2026-01-06T10:00:00.000Z"),
        ("event.ended", day2, None, "2026-01-06T10:15:00.000Z"),
    ]
    assert len(receiver.requests) == 3 + 3 + 4 + 4
    # a restarted process ticking over the same instants again: no moment, no run twice
    again = workers(make_api(clock=clock), clock)
    again.tick("2026-01-06T10:15:00Z")
    again.tick("2026-01-06T10:16:00Z")
    assert len(receiver.requests) == 14 and len(executions(api, started["id"])) == 3


# --- schedule (cron) -----------------------------------------------------------------------------


def cron(expr: str, timezone: str) -> dict[str, Any]:
    return {
        "providerType": "chronary",
        "triggerName": "cron",
        "kind": "schedule",
        "config": {"cron": expr, "timezone": timezone},
    }


def schedule_hook(url: str) -> dict[str, Any]:
    return {
        "id": "tell",
        "type": "http.request",
        "url": url,
        "body": {"date": "{{ trigger.local_date }}", "at": "{{ trigger.scheduled_at }}", "now": "{{ now }}"},
    }


def ticks(api: Api, flow_id: str) -> list[tuple[str, str, str, str, str]]:
    """(scheduled_at, fired_at, local_date, day_start, day_end) of each run, oldest first."""
    out = []
    for run in executions(api, flow_id):
        assert run["status"] == "succeeded", run
        d = run["triggerData"]
        assert (d["type"], d["cron"]) == ("schedule", "0 7 * * *") and d["fired_at"] == run["createdAt"]
        out.append((d["scheduled_at"], d["fired_at"], d["local_date"], d["day_start"], d["day_end"]))
    return out


def test_cron_at_seven_berlin_fires_once_a_day_across_the_spring_change(
    make_api: Any, workers: Any, receiver: Receiver
) -> None:
    clock = ManualClock(at("2026-03-27T12:00:00Z"))
    api = make_api(clock=clock)
    w = workers(api, clock)
    f = flow(api, cron("0 7 * * *", "Europe/Berlin"), [schedule_hook(receiver.url)])
    assert f["trigger"]["nextRunAt"] == "2026-03-28T06:00:00.000Z"
    instants = ["2026-03-28T06:00:00Z", "2026-03-29T05:00:00Z", "2026-03-30T05:00:00Z"]
    sweep(w, "2026-03-27T12:00:00Z", "2026-03-30T12:00:00Z", 20, instants)
    # 07:00 CET is 06:00Z; from 29 March 07:00 CEST is 05:00Z (that day has 23 hours)
    assert ticks(api, f["id"]) == [
        ("2026-03-28T06:00:00.000Z", "2026-03-28T06:00:00.000Z", "2026-03-28", "2026-03-27T23:00:00.000Z",
         "2026-03-28T23:00:00.000Z"),
        ("2026-03-29T05:00:00.000Z", "2026-03-29T05:00:00.000Z", "2026-03-29", "2026-03-28T23:00:00.000Z",
         "2026-03-29T22:00:00.000Z"),
        ("2026-03-30T05:00:00.000Z", "2026-03-30T05:00:00.000Z", "2026-03-30", "2026-03-29T22:00:00.000Z",
         "2026-03-30T22:00:00.000Z"),
    ]  # fmt: skip
    assert [r.json for r in receiver.requests] == [
        {"date": "2026-03-28", "at": "2026-03-28T06:00:00.000Z", "now": "2026-03-28T06:00:00.000Z"},
        {"date": "2026-03-29", "at": "2026-03-29T05:00:00.000Z", "now": "2026-03-29T05:00:00.000Z"},
        {"date": "2026-03-30", "at": "2026-03-30T05:00:00.000Z", "now": "2026-03-30T05:00:00.000Z"},
    ]
    assert api.get(f"/connect/v1/flows/{f['id']}").json()["trigger"]["nextRunAt"] == "2026-03-31T05:00:00.000Z"


def test_cron_at_seven_berlin_across_the_autumn_change(make_api: Any, workers: Any, receiver: Receiver) -> None:
    clock = ManualClock(at("2026-10-24T00:00:00Z"))
    api = make_api(clock=clock)
    w = workers(api, clock)
    f = flow(api, cron("0 7 * * *", "Europe/Berlin"), [schedule_hook(receiver.url)])
    instants = ["2026-10-24T05:00:00Z", "2026-10-25T06:00:00Z", "2026-10-26T06:00:00Z"]
    sweep(w, "2026-10-24T00:00:00Z", "2026-10-26T12:00:00Z", 20, instants)
    # the 25th has 25 hours: it starts at 22:00Z (CEST) and ends at 23:00Z (CET)
    assert ticks(api, f["id"]) == [
        ("2026-10-24T05:00:00.000Z", "2026-10-24T05:00:00.000Z", "2026-10-24", "2026-10-23T22:00:00.000Z",
         "2026-10-24T22:00:00.000Z"),
        ("2026-10-25T06:00:00.000Z", "2026-10-25T06:00:00.000Z", "2026-10-25", "2026-10-24T22:00:00.000Z",
         "2026-10-25T23:00:00.000Z"),
        ("2026-10-26T06:00:00.000Z", "2026-10-26T06:00:00.000Z", "2026-10-26", "2026-10-25T23:00:00.000Z",
         "2026-10-26T23:00:00.000Z"),
    ]  # fmt: skip
    assert len(receiver.requests) == 3


def test_cron_after_downtime_fires_the_latest_missed_tick_within_the_grace_once(
    make_api: Any, workers: Any, receiver: Receiver
) -> None:
    clock = ManualClock(at("2026-03-30T04:00:00Z"))
    api = make_api(clock=clock)  # moments_grace_minutes 60
    f = flow(api, cron("0 7 * * *", "Europe/Berlin"), [schedule_hook(receiver.url)])
    workers(api, clock).tick("2026-03-30T05:00:00Z")
    # down from 05:00 on the 30th until 05:30 on 2 April: the ticks of the 31st and the 1st are
    # older than the grace, the one of the 2nd (30 minutes ago) fires once, late
    clock.set(at("2026-04-02T05:30:00Z"))
    w = workers(make_api(clock=clock).as_key(api.key), clock)
    w.tick()
    w.tick("2026-04-02T05:30:01Z")
    w.tick("2026-04-02T06:29:00Z")
    # down again from the 3rd's tick to 07:00 on the 5th: the 5th's 05:00Z tick is 2 hours old, skipped
    w.tick("2026-04-03T05:00:00Z")
    clock.set(at("2026-04-05T07:00:00Z"))
    w = workers(make_api(clock=clock), clock)
    w.tick()
    assert api.get(f"/connect/v1/flows/{f['id']}").json()["trigger"]["nextRunAt"] == "2026-04-06T05:00:00.000Z"
    w.tick("2026-04-06T04:59:59Z")
    w.tick("2026-04-06T05:00:00Z")
    w.tick("2026-04-06T05:10:00Z")
    assert [(s, fired_at) for s, fired_at, *_ in ticks(api, f["id"])] == [
        ("2026-03-30T05:00:00.000Z", "2026-03-30T05:00:00.000Z"),
        ("2026-04-02T05:00:00.000Z", "2026-04-02T05:30:00.000Z"),
        ("2026-04-03T05:00:00.000Z", "2026-04-03T05:00:00.000Z"),
        ("2026-04-06T05:00:00.000Z", "2026-04-06T05:00:00.000Z"),
    ]
    assert [r.json["date"] for r in receiver.requests] == ["2026-03-30", "2026-04-02", "2026-04-03", "2026-04-06"]


def test_many_idle_starting_triggers_do_not_hold_back_a_schedule(
    make_api: Any, clock: ManualClock, workers: Any, receiver: Receiver
) -> None:
    """Idle event.starting scans write nothing, so their triggers stay due; a schedule (or poll)
    due now must still fire at its instant, however many of them there are."""
    api = make_api(clock=clock)
    w = workers(api, clock)
    for n in range(60):
        flow(api, starting(15), [starting_hook(receiver.url)], name=f"starting {n}")
    clock.set(at("2026-01-05T09:00:10Z"))
    every_minute = flow(api, cron("* * * * *", "UTC"), [schedule_hook(receiver.url + "/cron")], name="cron")
    w.tick("2026-01-05T09:00:30Z")
    w.tick("2026-01-05T09:01:00Z")
    (run,) = executions(api, every_minute["id"])
    assert (run["triggerData"]["scheduled_at"], run["createdAt"]) == ("2026-01-05T09:01:00.000Z", "2026-01-05T09:01:00.000Z")


def test_a_grace_of_zero_still_fires_what_a_tick_a_moment_late_finds(
    make_api: Any, clock: ManualClock, workers: Any, receiver: Receiver
) -> None:
    """moments_grace_minutes 0 means "no catch-up after downtime", not "fire only on the very
    instant": a worker tick a little after the instant (ticks are about a second apart) still
    fires, as the moments themselves do; what is missed by minutes is skipped."""
    api = make_api(clock=clock, moments_grace_minutes=0)
    w = workers(api, clock)
    cal = calendar(api)
    soon = flow(api, starting(15), [starting_hook(receiver.url)], name="starting")
    daily = flow(api, cron("0 10 * * *", "UTC"), [schedule_hook(receiver.url + "/cron")], name="cron")
    ev = api.event(cal["id"], "2026-01-05T10:00:00Z", "2026-01-05T10:30:00Z")
    missed = api.event(cal["id"], "2026-01-05T11:00:00Z", "2026-01-05T11:30:00Z")
    w.tick("2026-01-05T09:44:59Z")
    w.tick("2026-01-05T09:45:01Z")  # a second late
    w.tick("2026-01-05T09:59:59Z")
    w.tick("2026-01-05T10:00:00.700000Z")
    assert [r["triggerData"]["event"]["id"] for r in executions(api, soon["id"])] == [ev["id"]]
    assert [r["triggerData"]["scheduled_at"] for r in executions(api, daily["id"])] == ["2026-01-05T10:00:00.000Z"]
    w.tick("2026-01-05T10:50:00Z")  # down over 10:45: skipped
    w.tick("2026-01-05T10:50:01Z")
    assert missed["id"] not in {r["triggerData"]["event"]["id"] for r in executions(api, soon["id"])}
