"""What an agent needs to orient itself in one call: now, the current event, what is next,
what just happened, and its status.

Events come through services.occurrences.in_window, so recurring series, exceptions and
imported/synced events count. Cancelled events and lapsed holds are left out everywhere. The
look-ahead/look-back widens step by step (a day, a week, a month, a year) until it has enough
events, so a busy agent costs one small query and a quiet one at most four.

Transparent events (TRANSP:TRANSPARENT: holidays, "working from home" markers) are listed in
current/upcoming/recent like any other, but they do not make the agent busy: `current_event`
prefers an opaque event over a transparent one (then a real event over a hold), and is a
transparent event only when nothing opaque is going on. Busy/free answers live in availability.

`agent_status` is the `agent_status` of the agent's most recently updated calendar (the one
it touched last, e.g. by PATCHing its status) — "idle" when it has no calendars; the agent
row's own lifecycle status (active|paused|decommissioned) is under `agent.status`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import msgspec

from chronary.errors import ValidationError
from chronary.schemas.events import Event
from chronary.schemas.scheduling import Context, ContextAgent
from chronary.services.agents import load as load_agent
from chronary.services.availability import live
from chronary.services.context import Principal
from chronary.services.events import present
from chronary.services.occurrences import in_window
from chronary.store import calendars as cal_store
from chronary.store.db import Tx
from chronary.store.events import EventFilter
from chronary.timeutil import iso, to_ts

HORIZONS = tuple(int(timedelta(days=d).total_seconds()) for d in (1, 7, 31, 366))
MAX_ITEMS = 50


def _check_count(value: int, param: str) -> None:
    if value < 0 or value > MAX_ITEMS:
        raise ValidationError(f"{param} must be between 0 and {MAX_ITEMS}", param)


def _active(tx: Tx, agent_id: str, start_ts: int, end_ts: int, cals: dict[str, Any]) -> list[dict[str, Any]]:
    now_ts = to_ts(tx.now)
    return [r for r in in_window(tx, EventFilter(agent_id=agent_id), start_ts, end_ts, cals) if live(r, now_ts)]


def _show(tx: Tx, row: dict[str, Any], cals: dict[str, Any]) -> Event:
    cal = cals.get(row["calendar_id"])
    if cal is None:
        cal = cal_store.get(tx.conn, row["calendar_id"])
        assert cal is not None, "the event was read from this calendar in this same snapshot"
        cals[row["calendar_id"]] = cal
    shown: dict[str, Any] | Event = present(row, cal)
    # services.events answers with dicts for now: take its Event struct as is once it returns one
    return shown if isinstance(shown, Event) else msgspec.convert(shown, Event)


def context(tx: Tx, principal: Principal, agent_id: str, upcoming: int, recent: int) -> Context:
    agent = load_agent(tx, principal, agent_id)
    _check_count(upcoming, "upcoming")
    _check_count(recent, "recent")
    now_ts = to_ts(tx.now)
    cals: dict[str, Any] = {}

    current: list[dict[str, Any]] = []
    ahead: list[dict[str, Any]] = []
    for horizon in HORIZONS:
        rows = _active(tx, agent_id, now_ts, now_ts + horizon, cals)
        current = [r for r in rows if r["start_ts"] <= now_ts]
        ahead = [r for r in rows if r["start_ts"] > now_ts]
        if len(ahead) >= upcoming:
            break
    behind: list[dict[str, Any]] = []
    if recent:
        for horizon in HORIZONS:
            rows = _active(tx, agent_id, now_ts - horizon, now_ts + 1, cals)
            behind = [r for r in rows if r["end_ts"] <= now_ts]
            if len(behind) >= recent:
                break
    behind.sort(key=lambda r: (r["end_ts"], r["start_ts"], r["id"]), reverse=True)
    # several events at once: opaque beats transparent, a real event beats a hold, then the one
    # that began last
    current.sort(
        key=lambda r: (r.get("transparency") != "transparent", r["status"] != "hold", r["start_ts"], r["id"]), reverse=True
    )

    calendars, _ = cal_store.list_(tx.conn, agent_id=agent_id, include_agent_owned=False, limit=1000, offset=0)
    latest = max(calendars, key=lambda c: (c["updated_at"], c["id"]), default=None)
    return Context(
        now=cast(str, iso(tx.now)),
        agent=ContextAgent(id=agent["id"], name=agent["name"], status=agent["status"], timezone=agent["timezone"]),
        current_event=_show(tx, current[0], cals) if current else None,
        upcoming=[_show(tx, r, cals) for r in ahead[:upcoming]],
        recent=[_show(tx, r, cals) for r in behind[:recent]],
        agent_status=latest["agent_status"] if latest else "idle",
        agent_status_calendar_id=latest["id"] if latest else None,
    )
