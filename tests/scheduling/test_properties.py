"""Property tests: free never overlaps busy, and every found meeting slot is free for everyone.

Random agents get random rules (working hours, buffers, notice, a timezone) and random events
(single, recurring, all-day, every status, holds that may have lapsed), written through the
events service on the real SQLite file. Single-agent availability reads through
services.occurrences.in_window, find-meeting-time through its batched queries — so the second
property also checks that the two paths agree.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chronary.clock import ManualClock
from chronary.schemas.agents import AgentCreate
from chronary.schemas.calendars import CalendarCreate
from chronary.schemas.events import EventCreate
from chronary.schemas.scheduling import FindMeetingTime, RulesInput, TimeRange, WorkingHours
from chronary.services import availability, rules
from chronary.services import events as event_service
from chronary.services.agents import create as create_agent
from chronary.services.calendars import create as create_calendar
from tests.scheduling.conftest import org_ctx

WINDOW_START = datetime(2026, 3, 23, tzinfo=UTC)
WINDOW_DAYS = 10
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata")
SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


day_range = st.tuples(st.integers(0, 22 * 4), st.integers(1, 8 * 4)).map(
    lambda t: TimeRange(
        start=f"{t[0] // 4:02d}:{t[0] % 4 * 15:02d}",
        end=("24:00" if t[0] + t[1] >= 96 else f"{(t[0] + t[1]) // 4:02d}:{(t[0] + t[1]) % 4 * 15:02d}"),
    )
)
rules_strategy = st.one_of(
    st.none(),
    st.builds(
        lambda day, days, before, after, notice, tz: RulesInput(
            working_hours=WorkingHours(**{d: [day] for d in days}),
            timezone=tz,
            buffer_before_minutes=before,
            buffer_after_minutes=after,
            minimum_notice_minutes=notice,
        ),
        day_range,
        st.sets(st.sampled_from(rules.DAYS), min_size=1),
        st.integers(0, 60),
        st.integers(0, 60),
        st.integers(0, 48 * 60),
        st.sampled_from((None, *ZONES)),
    ),
)
event_strategy = st.fixed_dictionaries(
    {
        "offset_min": st.integers(-24 * 60, WINDOW_DAYS * 24 * 60),
        "length_min": st.integers(5, 8 * 60),
        "status": st.sampled_from(("confirmed", "tentative", "hold", "cancelled")),
        "kind": st.sampled_from(("single", "single", "daily", "weekly", "all_day")),
        "hold_minutes": st.integers(1, 3 * 24 * 60),
    }
)
agent_strategy = st.tuples(st.sampled_from(ZONES), rules_strategy, st.lists(event_strategy, max_size=12))


def build_agent(api: Any, tz: str, rule: RulesInput | None, events: list[dict[str, Any]]) -> str:
    ctx = org_ctx(api)

    def write(tx: Any) -> str:
        agent = create_agent(tx, ctx.principal, AgentCreate(name="P", timezone=tz))
        cals = [create_calendar(tx, ctx, agent.id, CalendarCreate(name=f"C{i}", timezone=tz)).id for i in range(2)]
        if rule is not None:
            rules.put(tx, ctx.principal, agent.id, rule)
        for n, ev in enumerate(events):
            start = WINDOW_START + timedelta(minutes=ev["offset_min"])
            end = start + timedelta(minutes=ev["length_min"])
            body: dict[str, Any] = {
                "title": "E",
                "status": ev["status"],
                "allow_overlap": True,
                "start_time": iso(start),
                "end_time": iso(end),
            }
            if ev["kind"] == "all_day":
                body.update(
                    all_day=True,
                    start_time=start.date().isoformat(),
                    end_time=(start.date() + timedelta(days=1)).isoformat(),
                )
            elif ev["kind"] in ("daily", "weekly"):
                body["recurrence"] = [f"RRULE:FREQ={ev['kind'].upper()};COUNT=5"]
            if ev["status"] == "hold":
                body["hold_expires_at"] = iso(tx.now + timedelta(minutes=ev["hold_minutes"]))
            event_service.create(tx, ctx, cals[n % 2], EventCreate(**body))
        return agent.id

    return api.runtime.db.write_sync(write)


@pytest.fixture
def papi(make_api: Any) -> Any:
    """One app per test function, shared by its examples (each example makes fresh agents).

    Now is half a day into the window, so the past and minimum notice are exercised too."""
    return make_api(clock=ManualClock(WINDOW_START + timedelta(hours=12)))


def overlaps(x: tuple[int, int], y: tuple[int, int]) -> bool:
    return x[0] < y[1] and y[0] < x[1]


@SETTINGS
@given(agent=agent_strategy, slot=st.integers(1, 120))
def test_free_and_busy_never_overlap(papi: Any, agent: Any, slot: int) -> None:
    api = papi
    agent_id = build_agent(api, *agent)
    start, end = WINDOW_START, WINDOW_START + timedelta(days=WINDOW_DAYS)
    principal = org_ctx(api).principal
    body = api.runtime.db.read_sync(
        lambda tx: availability.availability(tx, principal, agent_id, iso(start), iso(end), slot)
    )
    busy = [(parse(b.start), parse(b.end)) for b in body.busy]
    free = [(parse(f.start), parse(f.end)) for f in body.free]
    for f in free:
        assert f[1] - f[0] >= slot * 60
        assert parse(iso(start)) <= f[0] < f[1] <= parse(iso(end))
        assert not any(overlaps(f, b) for b in busy), (f, busy)
    for seq in (busy, free):
        assert all(a[1] <= b[0] for a, b in zip(seq, seq[1:], strict=False))  # sorted, disjoint


@SETTINGS
@given(
    agents=st.lists(agent_strategy, min_size=2, max_size=4),
    duration=st.integers(5, 120),
    step=st.sampled_from((5, 15, 30, 60)),
)
def test_every_found_slot_is_free_for_every_participant(papi: Any, agents: Any, duration: int, step: int) -> None:
    api = papi
    ids = [build_agent(api, *a) for a in agents]
    start, end = WINDOW_START, WINDOW_START + timedelta(days=WINDOW_DAYS)
    principal = org_ctx(api).principal
    query = FindMeetingTime(
        agent_ids=ids, start=iso(start), end=iso(end), duration_minutes=duration, limit=100, slot_step_minutes=step
    )
    slots = api.runtime.db.read_sync(lambda tx: availability.find_meeting_time(tx, principal, query)).slots
    spans = [(parse(s.start), parse(s.end)) for s in slots]
    assert spans == sorted(spans)
    for agent_id in ids:
        body = api.runtime.db.read_sync(
            lambda tx, a=agent_id: availability.availability(tx, principal, a, iso(start), iso(end), duration)
        )
        free = [(parse(f.start), parse(f.end)) for f in body.free]
        busy = [(parse(b.start), parse(b.end)) for b in body.busy]
        for s in spans:
            assert s[1] - s[0] == duration * 60 and s[0] % (step * 60) == 0
            assert any(f[0] <= s[0] and s[1] <= f[1] for f in free), (agent_id, s, free)
            assert not any(overlaps(s, b) for b in busy)
