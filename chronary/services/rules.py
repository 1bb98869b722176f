"""Availability rules: validating, storing and reading an agent's working hours.

A rule set says when an agent can be booked, in wall-clock time of its timezone (the rule's own
or, when absent, the agent's — followed if the agent later moves). `working_windows` turns the
rules into UTC intervals for a window; it works on local dates, so DST changes move the UTC
instants and never the local hours. An agent without rules is always available.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from chronary import ids
from chronary.errors import NotFound, ValidationError
from chronary.schemas.scheduling import Range, Rules, RulesInput, TimeRange
from chronary.services.agents import load as load_agent
from chronary.services.context import Principal
from chronary.store import rules as rule_store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms, parse_date, require_timezone

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _minutes(value: str, param: str, *, end: bool) -> int:
    if end and value == "24:00":
        return 24 * 60
    m = _HHMM.match(value) if isinstance(value, str) else None
    if m is None:
        allowed = '"HH:MM" (00:00–23:59, or 24:00 for an end)' if end else '"HH:MM" (00:00–23:59)'
        raise ValidationError(f"{param} must be {allowed}, got {value!r}", param)
    return int(m.group(1)) * 60 + int(m.group(2))


def _check_ranges(ranges: list[TimeRange], param: str) -> list[dict[str, str]]:
    """HH:MM, start < end, and no two ranges of one day overlapping (touching is fine)."""
    spans = []
    for i, r in enumerate(ranges):
        start = _minutes(r.start, f"{param}[{i}].start", end=False)
        end = _minutes(r.end, f"{param}[{i}].end", end=True)
        if end <= start:
            raise ValidationError(f"{param}[{i}].end must be after {param}[{i}].start", f"{param}[{i}].end")
        spans.append((start, end, i))
    spans.sort()
    for (_, prev_end, j), (start, _, i) in zip(spans, spans[1:], strict=False):
        if start < prev_end:
            later, earlier = max(i, j), min(i, j)  # blame the one listed later
            raise ValidationError(f"{param}[{later}] overlaps {param}[{earlier}]", f"{param}[{later}].start")
    return [{"start": ranges[i].start, "end": ranges[i].end} for _, _, i in spans]


def validate(data: RulesInput) -> dict[str, Any]:
    """The stored form of a rule set, or a ValidationError naming the offending field."""
    if data.timezone is not None:
        require_timezone(data.timezone, "timezone")
    hours = {d: _check_ranges(getattr(data.working_hours, d), f"working_hours.{d}") for d in DAYS}
    overrides: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, o in enumerate(data.overrides):
        day = parse_date(o.date, f"overrides[{i}].date").isoformat()
        if day in seen:
            raise ValidationError(f"overrides[{i}].date repeats overrides[{seen[day]}].date ({day})", f"overrides[{i}].date")
        seen[day] = i
        overrides.append({"date": day, "hours": _check_ranges(o.hours, f"overrides[{i}].hours")})
    if not any(hours.values()) and not any(o["hours"] for o in overrides):
        raise ValidationError(
            "working_hours leaves no bookable time: give at least one day some hours (or an override with hours)",
            "working_hours",
        )
    overrides.sort(key=lambda o: o["date"])
    return {
        "timezone": data.timezone,
        "working_hours": hours,
        "buffer_before_minutes": data.buffer_before_minutes,
        "buffer_after_minutes": data.buffer_after_minutes,
        "minimum_notice_minutes": data.minimum_notice_minutes,
        "overrides": overrides,
    }


def present(row: dict[str, Any], agent: dict[str, Any]) -> Rules:
    """The API shape of a stored rule set (the store keeps plain dicts; the answer is typed)."""
    return Rules(
        id=row["id"],
        agent_id=row["agent_id"],
        timezone=row["timezone"] or agent["timezone"],
        timezone_from_agent=row["timezone"] is None,
        working_hours={
            day: [Range(start=r["start"], end=r["end"]) for r in ranges] for day, ranges in row["working_hours"].items()
        },
        buffer_before_minutes=row["buffer_before_minutes"],
        buffer_after_minutes=row["buffer_after_minutes"],
        minimum_notice_minutes=row["minimum_notice_minutes"],
        overrides=row["overrides"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def put(tx: Tx, principal: Principal, agent_id: str, data: RulesInput) -> Rules:
    agent = load_agent(tx, principal, agent_id)
    values = validate(data)
    existing = rule_store.get(tx.conn, agent_id)
    now = iso_ms(tx.now)
    row = {
        "id": existing["id"] if existing else ids.new_id("rul"),
        "agent_id": agent_id,
        **values,
        "created_at": existing["created_at"] if existing else now,
        "updated_at": now,
    }
    rule_store.put(tx.conn, row)
    return present(row, agent)


def get(tx: Tx, principal: Principal, agent_id: str) -> Rules:
    agent = load_agent(tx, principal, agent_id)
    row = rule_store.get(tx.conn, agent_id)
    if row is None:
        raise NotFound(f"Agent {agent_id} has no availability rules (it is always available)")
    return present(row, agent)


def delete(tx: Tx, principal: Principal, agent_id: str) -> None:
    load_agent(tx, principal, agent_id)
    if not rule_store.delete(tx.conn, agent_id):
        raise NotFound(f"Agent {agent_id} has no availability rules")


def timezone_of(rules: dict[str, Any] | None, agent: dict[str, Any]) -> ZoneInfo:
    return ZoneInfo((rules or {}).get("timezone") or agent["timezone"])


def _local(day: date, minutes: int, tz: ZoneInfo) -> int:
    """UTC seconds of a local wall-clock time; a time skipped by DST maps past the gap."""
    if minutes >= 24 * 60:
        day, minutes = day + timedelta(days=1), minutes - 24 * 60
    local = datetime.combine(day, time(minutes // 60, minutes % 60), tz)
    return int(local.astimezone(UTC).timestamp())


def working_windows(rules: dict[str, Any], tz: ZoneInfo, start_ts: int, end_ts: int) -> list[tuple[int, int]]:
    """Sorted, merged UTC intervals inside [start_ts, end_ts) that the rules call working time."""

    def parsed(ranges: list[dict[str, str]]) -> list[tuple[int, int]]:
        return [(_minutes(r["start"], "start", end=False), _minutes(r["end"], "end", end=True)) for r in ranges]

    overrides = {o["date"]: parsed(o["hours"]) for o in rules["overrides"]}
    hours = [parsed(rules["working_hours"][d]) for d in DAYS]
    first = datetime.fromtimestamp(start_ts, tz).date() - timedelta(days=1)
    last = datetime.fromtimestamp(end_ts, tz).date()
    out: list[tuple[int, int]] = []
    day = first
    while day <= last:
        ranges = overrides.get(day.isoformat())
        if ranges is None:
            ranges = hours[day.weekday()]
        for start_min, end_min in ranges:
            a, b = _local(day, start_min, tz), _local(day, end_min, tz)
            a, b = max(a, start_ts), min(b, end_ts)
            if a < b:
                if out and a <= out[-1][1]:
                    out[-1] = (out[-1][0], max(out[-1][1], b))
                else:
                    out.append((a, b))
        day += timedelta(days=1)
    return out
