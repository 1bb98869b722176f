"""Benchmark: find-meeting-time for 50 agents over a month, each with ~100 events in it.

Builds a fresh database in a temp dir through the services (agents in four timezones, half
with working-hours rules and buffers, two calendars each, ~90 single events per agent per
month plus a daily stand-up series with an exception and a weekly series), then times
find-meeting-time over the whole month: in-process (the service on a read transaction) and
over HTTP through the app. Prints p50/p99. Target: well under 100 ms.

    .venv/bin/python bench/availability_bench.py [--agents 50] [--runs 200]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from litestar.testing import TestClient

from chronary.app import create_app
from chronary.clock import ManualClock
from chronary.config import Settings
from chronary.schemas.agents import AgentCreate
from chronary.schemas.calendars import CalendarCreate
from chronary.schemas.events import EventCreate, EventUpdate
from chronary.schemas.scheduling import FindMeetingTime, Interval, RulesInput, TimeRange, WorkingHours
from chronary.services import agents, availability, calendars, events, rules
from chronary.services.availability import find_meeting_time
from chronary.services.context import Ctx, Principal

MONTH_START = datetime(2026, 4, 1, tzinfo=UTC)
ZONES = ("Europe/Berlin", "America/New_York", "UTC", "Asia/Tokyo")


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def build(app_runtime, n_agents: int, rng: random.Random) -> list[str]:  # type: ignore[no-untyped-def]
    ctx = Ctx(Principal(org_id=app_runtime.org_id, key_id="bench"), "http://127.0.0.1")
    weekdays = WorkingHours(
        **{
            d: [TimeRange(start="08:00", end="12:00"), TimeRange(start="13:00", end="19:00")]
            for d in ("mon", "tue", "wed", "thu", "fri")
        }
    )

    def write(tx):  # type: ignore[no-untyped-def]
        ids = []
        for i in range(n_agents):
            tz = ZONES[i % len(ZONES)]
            agent = agents.create(tx, ctx.principal, AgentCreate(name=f"bench-{i}", timezone=tz))
            cals = [calendars.create(tx, ctx, agent.id, CalendarCreate(name=f"c{j}", timezone=tz)).id for j in range(2)]
            if i % 2 == 0:
                rules.put(
                    tx,
                    ctx.principal,
                    agent.id,
                    RulesInput(
                        working_hours=weekdays, buffer_before_minutes=5, buffer_after_minutes=10, minimum_notice_minutes=60
                    ),
                )
            for _ in range(90):
                start = MONTH_START + timedelta(days=rng.randrange(30), minutes=rng.randrange(24 * 4) * 15)
                status = rng.choice(("confirmed", "confirmed", "confirmed", "tentative", "cancelled"))
                length = timedelta(minutes=rng.choice((15, 30, 60, 90)))
                events.create(
                    tx,
                    ctx,
                    rng.choice(cals),
                    EventCreate(title="busy", start_time=iso(start), end_time=iso(start + length), status=status),
                )
            standup = events.create(
                tx,
                ctx,
                cals[0],
                EventCreate(
                    title="standup",
                    start_time=iso(MONTH_START + timedelta(hours=9 + i % 5)),
                    end_time=iso(MONTH_START + timedelta(hours=9 + i % 5, minutes=15)),
                    recurrence=["RRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR"],
                ),
            )
            events.create(
                tx,
                ctx,
                cals[1],
                EventCreate(
                    title="weekly",
                    start_time=iso(MONTH_START - timedelta(days=60, hours=-14)),
                    end_time=iso(MONTH_START - timedelta(days=60, hours=-15)),
                    recurrence=["RRULE:FREQ=WEEKLY"],
                ),
            )
            events.update(tx, ctx, cals[0], standup.id, EventUpdate(title="standup (renamed)"))
            ids.append(agent.id)
        return ids

    return app_runtime.db.write_sync(write)


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:7.2f} ms   p99 {p99 * 1000:7.2f} ms   max {ordered[-1] * 1000:7.2f} ms"


def agrees(runtime, principal: Principal, query: FindMeetingTime, slots: list[Interval]) -> bool:  # type: ignore[no-untyped-def]
    """Sanity check before timing: the batched answer equals the per-agent (in_window) one."""

    def ts(value: str) -> int:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())

    common: list[tuple[int, int]] | None = None
    for agent_id in query.agent_ids:
        body = runtime.db.read_sync(
            lambda tx, a=agent_id: availability.availability(
                tx, principal, a, query.start, query.end, query.duration_minutes
            )
        )
        free = [(ts(f.start), ts(f.end)) for f in body.free]
        common = free if common is None else availability.intersect(common, free)
    step, duration, expected = query.slot_step_minutes * 60, query.duration_minutes * 60, []
    for a, b in common or []:
        t = -(-a // step) * step
        while t + duration <= b and len(expected) < query.limit:
            expected.append(t)
            t += step
    return [ts(s.start) for s in slots] == expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(4)
    with tempfile.TemporaryDirectory() as tmp:
        clock = ManualClock(MONTH_START - timedelta(days=1))
        app = create_app(Settings(data_dir=Path(tmp), workers=False), clock=clock)
        runtime = app.state.runtime
        t = time.perf_counter()
        ids = build(runtime, args.agents, rng)
        n_events = runtime.db.read_sync(lambda tx: tx.conn.execute("SELECT count(*) AS n FROM events").fetchall())
        print(f"built {args.agents} agents, {n_events[0]['n']} stored events in {time.perf_counter() - t:.1f} s")

        query = FindMeetingTime(
            agent_ids=ids,
            start=iso(MONTH_START),
            end=iso(MONTH_START + timedelta(days=30)),
            duration_minutes=30,
            limit=10,
            slot_step_minutes=15,
        )
        principal = Principal(org_id=runtime.org_id, key_id="bench")
        slots = runtime.db.read_sync(lambda tx: find_meeting_time(tx, principal, query)).slots
        print(f"first slots: {[s.start for s in slots[:3]]} ({len(slots)} found)")
        print(f"agrees with intersecting each agent's own free time: {agrees(runtime, principal, query, slots)}")

        for label, cold in (("service, cold series cache", True), ("service, warm series cache", False)):
            samples = []
            for _ in range(args.runs):
                if cold:
                    availability._cache.clear()  # noqa: SLF001 - measure RRULE expansion every time
                t = time.perf_counter()
                runtime.db.read_sync(lambda tx: find_meeting_time(tx, principal, query))
                samples.append(time.perf_counter() - t)
            print(f"{label:28s} {args.agents} agents x 30 days: {percentiles(samples)}")

        body = {"agent_ids": ids, "start": query.start, "end": query.end, "duration_minutes": 30}
        with TestClient(app) as client:
            headers = {"Authorization": f"Bearer {runtime.first_key}"}
            samples = []
            for _ in range(args.runs):
                t = time.perf_counter()
                r = client.post("/v1/availability/find-meeting-time", json=body, headers=headers)
                samples.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text
            print(f"{'HTTP (TestClient), warm':28s} {args.agents} agents x 30 days: {percentiles(samples)}")


if __name__ == "__main__":
    main()
