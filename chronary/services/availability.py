"""Free/busy for one agent and common meeting times for many.

Busy time is every opaque event that blocks (confirmed, tentative, and holds not yet lapsed;
never cancelled, never TRANSP:TRANSPARENT — holidays, "working from home") on any of the
agent's calendars — native, imported or synced — with recurrences expanded through
services.occurrences, widened by the agent's buffers. Free time is the agent's working hours
(services.rules; always, without rules) minus busy time, starting no earlier than now plus the
minimum notice (so free time is never in the past), keeping only intervals at least as long as
asked for. All interval work is done on sorted lists of UTC seconds with linear sweeps, which
is what keeps find-meeting-time fast for 50 agents.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict, defaultdict
from datetime import timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from chronary.errors import Forbidden, ValidationError
from chronary.schemas.scheduling import (
    Availability,
    AvailabilityExplanation,
    Blocker,
    BusyInterval,
    FindMeetingTime,
    Interval,
    MeetingSlots,
)
from chronary.services import explain as explainer
from chronary.services import occurrences
from chronary.services import rules as rule_service
from chronary.services.agents import load as load_agent
from chronary.services.context import Principal
from chronary.store import rules as rule_store
from chronary.store.db import Tx
from chronary.store.events import EventFilter
from chronary.timeutil import parse_instant, to_ts, ts_iso

MAX_WINDOW = timedelta(days=62)
Span = tuple[int, int]


def _iso(ts: int) -> str:
    """`ts_iso` of an instant that is there (its `str | None` is for None in, None out)."""
    return cast(str, ts_iso(ts))


def parse_window(start: str | None, end: str | None) -> Span:
    if not start:
        raise ValidationError("start is required (ISO 8601 with offset)", "start")
    if not end:
        raise ValidationError("end is required (ISO 8601 with offset)", "end")
    a, b = parse_instant(start, "start"), parse_instant(end, "end")
    if b <= a:
        raise ValidationError("end must be after start", "end")
    if b - a > MAX_WINDOW:
        raise ValidationError("the window from start to end may be at most 62 days", "end")
    return to_ts(a), to_ts(b)


def live(row: dict[str, Any], now_ts: int) -> bool:
    """Is this event still on? Not cancelled, and not a hold past its expiry (even before the
    expiry worker has deleted it)."""
    status = row["status"]
    if status == "cancelled":
        return False
    return not (status == "hold" and row["hold_expires_at"] is not None and row["hold_expires_at"] <= now_ts)


def blocks(row: dict[str, Any], now_ts: int) -> bool:
    """Does this event make its agent busy? Live and opaque: a transparent event never does."""
    return row.get("transparency") != "transparent" and live(row, now_ts)


def merge_busy(events: list[tuple[int, int, str | None]], before: int, after: int) -> list[tuple[int, int, str | None]]:
    """Blocking (start, end, event id) widened by buffers, merged; the id stays only on unmerged intervals."""
    out: list[tuple[int, int, str | None]] = []
    for a, b, ident in sorted((a - before, b + after, ident) for a, b, ident in events):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b), None)
        else:
            out.append((a, b, ident))
    return out


def subtract(base: list[Span], cut: list[Span]) -> list[Span]:
    """base minus cut; both sorted and internally disjoint."""
    out: list[Span] = []
    j = 0
    for a, b in base:
        while j < len(cut) and cut[j][1] <= a:
            j += 1
        k = j
        cur = a
        while k < len(cut) and cut[k][0] < b:
            if cut[k][0] > cur:
                out.append((cur, cut[k][0]))
            cur = max(cur, cut[k][1])
            k += 1
        if cur < b:
            out.append((cur, b))
    return out


def intersect(x: list[Span], y: list[Span]) -> list[Span]:
    out: list[Span] = []
    i = j = 0
    while i < len(x) and j < len(y):
        a, b = max(x[i][0], y[j][0]), min(x[i][1], y[j][1])
        if a < b:
            out.append((a, b))
        if x[i][1] < y[j][1]:
            i += 1
        else:
            j += 1
    return out


def buffers(rules: dict[str, Any] | None) -> Span:
    if rules is None:
        return 0, 0
    return rules["buffer_before_minutes"] * 60, rules["buffer_after_minutes"] * 60


def free_spans(
    rules: dict[str, Any] | None,
    tz: ZoneInfo,
    busy: list[tuple[int, int, str | None]],
    start_ts: int,
    end_ts: int,
    now_ts: int,
    min_seconds: int,
) -> list[Span]:
    notice = rules["minimum_notice_minutes"] * 60 if rules else 0
    start = max(start_ts, now_ts + notice)
    if start >= end_ts:
        return []
    base = rule_service.working_windows(rules, tz, start, end_ts) if rules else [(start, end_ts)]
    free = subtract(base, [(a, b) for a, b, _ in busy])
    return [(a, b) for a, b in free if b - a >= min_seconds]


def availability(
    tx: Tx,
    principal: Principal,
    agent_id: str,
    start: str | None,
    end: str | None,
    slot_minutes: int,
    *,
    explain: bool = False,
) -> Availability:
    agent = load_agent(tx, principal, agent_id)
    start_ts, end_ts = parse_window(start, end)
    if slot_minutes < 1 or slot_minutes > 24 * 60:
        raise ValidationError("slot_minutes must be between 1 and 1440", "slot_minutes")
    rules = rule_store.get(tx.conn, agent_id)
    tz = rule_service.timezone_of(rules, agent)
    before, after = buffers(rules)
    now_ts = to_ts(tx.now)
    # events just outside the window still block inside it through their buffers
    rows = occurrences.in_window(tx, EventFilter(agent_id=agent_id), start_ts - after, end_ts + before)
    blocking = [r for r in rows if blocks(r, now_ts)]
    busy = merge_busy([(r["start_ts"], r["end_ts"], r["id"]) for r in blocking], before, after)
    free = free_spans(rules, tz, busy, start_ts, end_ts, now_ts, slot_minutes * 60)
    busy_out = []
    for a, b, ident in busy:
        a, b = max(a, start_ts), min(b, end_ts)
        if a < b:
            busy_out.append(BusyInterval(start=_iso(a), end=_iso(b), event_id=ident))
    return Availability(
        agent_id=agent_id,
        timezone=tz.key,
        start=_iso(start_ts),
        end=_iso(end_ts),
        busy=busy_out,
        free=[Interval(start=_iso(a), end=_iso(b)) for a, b in free],
        explanation=(
            _explain_availability(tx, principal, agent_id, rules, tz, blocking, busy, start_ts, end_ts, now_ts, slot_minutes)
            if explain
            else None
        ),
    )


def _explain_availability(
    tx: Tx,
    principal: Principal,
    agent_id: str,
    rules: dict[str, Any] | None,
    tz: ZoneInfo,
    blocking: list[dict[str, Any]],
    busy: list[tuple[int, int, str | None]],
    start_ts: int,
    end_ts: int,
    now_ts: int,
    slot_minutes: int,
) -> AvailabilityExplanation:
    """What makes each busy interval, and why the rest of the non-free window is closed."""
    sources = explainer.load_sources(tx, principal, [agent_id], blocking)
    reasons = explainer.Reasons()
    if now_ts > start_ts:
        reasons.add(start_ts, min(end_ts, now_ts), ("past",), explainer.past_blocker(now_ts))
    explainer.add_rule_labels(reasons, agent_id, rules, tz, True, start_ts, end_ts, now_ts)
    for a, b in free_spans(rules, tz, busy, start_ts, end_ts, now_ts, 1):
        if b - a < slot_minutes * 60:
            detail = f"free for {(b - a) // 60} min, less than slot_minutes {slot_minutes}"
            reasons.add(a, b, ("too_short",), Blocker(kind="too_short", detail=detail))
    return AvailabilityExplanation(
        busy=explainer.explain_busy(busy, blocking, agent_id, rules, sources, start_ts, end_ts),
        closed=explainer.explain_closed(reasons),
        sources=sources.listed,
    )


def _check_agents(tx: Tx, principal: Principal, agent_ids: list[str]) -> dict[str, dict[str, Any]]:
    seen: dict[str, int] = {}
    for i, ident in enumerate(agent_ids):
        if ident in seen:
            raise ValidationError(f"agent_ids[{i}] repeats agent_ids[{seen[ident]}]", f"agent_ids[{i}]")
        seen[ident] = i
    agents = rule_store.agents(tx.conn, agent_ids)
    for i, ident in enumerate(agent_ids):
        agent = agents.get(ident)
        if agent is None or agent["org_id"] != principal.org_id:
            raise ValidationError(f"agent_ids[{i}]: no agent with id {ident!r}", f"agent_ids[{i}]")
    if not principal.is_org and principal.agent_id not in agents:
        raise Forbidden("An agent key may only look for meeting times that include its own agent")
    return agents


WEEK = 7 * 24 * 3600
_CACHE_SIZE = 4096
_cache: OrderedDict[tuple[Any, ...], list[tuple[int, int, str, int | None, str]]] = OrderedDict()
_cache_lock = threading.Lock()


def _expanded(
    master: dict[str, Any], tz: str, lo: int, hi: int, exceptions: list[dict[str, Any]]
) -> list[tuple[int, int, str, int | None, str]]:
    """(start, end, status, hold_expires_at, transparency) of a series' occurrences around
    [lo, hi), exceptions applied.

    Expanding RRULEs is the costly part of find-meeting-time, so results are kept in a small
    LRU cache. The key holds everything the busy answer depends on (the rule, times, status,
    transparency, timezone, and each exception's times, status and transparency) plus the week-aligned span expanded, so an
    edited series or exception simply misses the cache — no invalidation needed.
    """
    span = (lo - lo % WEEK, hi + (-hi % WEEK))
    key = (
        master["id"],
        master["start_ts"],
        master["end_ts"],
        bool(master["all_day"]),
        tuple(master["recurrence"]),
        master["status"],
        master["hold_expires_at"],
        master.get("transparency"),
        tz,
        span,
        tuple(
            sorted(
                (
                    e["id"],
                    e["start_ts"],
                    e["end_ts"],
                    e["status"],
                    e["hold_expires_at"],
                    e["recurrence_id_ts"],
                    e.get("transparency"),
                )
                for e in exceptions
            )
        ),
    )
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    rows = occurrences.expand_series(master, ZoneInfo(tz), span[0], span[1], exceptions)
    value = [
        (r["start_ts"], r["end_ts"], r["status"], r["hold_expires_at"], r.get("transparency") or "opaque") for r in rows
    ]
    with _cache_lock:
        _cache[key] = value
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return value


def _blocking(
    tx: Tx, agent_ids: list[str], rules: dict[str, dict[str, Any]], start_ts: int, end_ts: int, now_ts: int
) -> list[Span]:
    """Every agent's blocking time, widened by that agent's buffers, as one unsorted list.

    Read for all agents at once (four small queries); find-meeting-time needs only the union,
    so there is no per-agent merging."""
    pads = {a: buffers(rules.get(a)) for a in agent_ids}
    lo = start_ts - max(p[1] for p in pads.values())
    hi = end_ts + max(p[0] for p in pads.values())
    singles, masters, exceptions, cals = rule_store.busy_sources(tx.conn, agent_ids, lo, hi, now_ts)
    out: list[Span] = [(a - pads[agent][0], b + pads[agent][1]) for agent, a, b in singles]
    by_series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for exc in exceptions:
        by_series[exc["recurring_event_id"]].append(exc)
    for m in masters:
        cal = cals[m["calendar_id"]]
        before, after = pads[cal["agent_id"]]
        for a, b, status, hold_expires, transp in _expanded(m, cal["timezone"], lo, hi, by_series.get(m["id"], [])):
            if (
                a < hi
                and b > lo
                and blocks({"status": status, "hold_expires_at": hold_expires, "transparency": transp}, now_ts)
            ):
                out.append((a - before, b + after))
    return out


def union(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def find_meeting_time(tx: Tx, principal: Principal, data: FindMeetingTime, *, explain: bool = False) -> MeetingSlots:
    """Common free time = (⋂ each agent's working hours from its notice on) − (⋃ everyone's busy).

    The same as intersecting each agent's free time, but cheaper: agents sharing rules and
    timezone share one working-hours computation, and busy time is merged in one sort.
    """
    start_ts, end_ts = parse_window(data.start, data.end)
    agents = _check_agents(tx, principal, data.agent_ids)
    rules = rule_store.for_agents(tx.conn, data.agent_ids)
    now_ts = to_ts(tx.now)
    duration, step = data.duration_minutes * 60, data.slot_step_minutes * 60
    notice = max((r["minimum_notice_minutes"] * 60 for r in rules.values()), default=0)
    common: list[Span] = [(max(start_ts, now_ts + notice), end_ts)] if now_ts + notice < end_ts else []
    seen: set[tuple[Any, ...]] = set()
    for agent_id in data.agent_ids:
        r = rules.get(agent_id)
        if r is None or not common:
            continue
        tz = rule_service.timezone_of(r, agents[agent_id])
        key = (tz.key, repr(r["working_hours"]), repr(r["overrides"]))
        if key in seen:
            continue
        seen.add(key)
        common = intersect(common, rule_service.working_windows(r, tz, common[0][0], common[-1][1]))
    if common:
        busy = union(_blocking(tx, data.agent_ids, rules, start_ts, end_ts, now_ts))
        common = [s for s in subtract(common, busy) if s[1] - s[0] >= duration]
    slots: list[Interval] = []
    found: list[int] = []
    for a, b in common:
        t = -(-a // step) * step  # first step boundary (on the UTC grid) at or after a
        while t + duration <= b and len(slots) < data.limit:
            slots.append(Interval(start=_iso(t), end=_iso(t + duration)))
            found.append(t)
            t += step
        if len(slots) >= data.limit:
            break
    if not explain:
        return MeetingSlots(slots=slots)

    def rows_of(agent_id: str, lo: int, hi: int) -> list[dict[str, Any]]:
        return [r for r in occurrences.in_window(tx, EventFilter(agent_id=agent_id), lo, hi) if blocks(r, now_ts)]

    why = explainer.meeting_explanation(
        tx, principal, agents, data.agent_ids, rules, start_ts, end_ts, now_ts, duration, step, found, data.limit, rows_of
    )
    return MeetingSlots(slots=slots, explanation=why)


MAX_CONFLICTS = 100
IF_FREE_HORIZON = 62 * 24 * 3600  # a new series is checked over its first 62 days (availability's window)


def new_event_spans(row: dict[str, Any], calendar: dict[str, Any]) -> list[Span]:
    """The times a new event would take: itself, or a series' occurrences in its first 62 days."""
    if not row["recurrence"]:
        return [(row["start_ts"], row["end_ts"])]
    tz = occurrences.series_zone(row, calendar)
    occs = occurrences.expand_series(row, tz, row["start_ts"], row["start_ts"] + IF_FREE_HORIZON, [])
    return sorted((o["start_ts"], o["end_ts"]) for o in occs) or [(row["start_ts"], row["end_ts"])]


def _touches(spans: list[Span], starts: list[int], reach: list[int], a: int, b: int) -> bool:
    """Does any of the sorted spans overlap [a, b)? (`reach[i]`: the latest end of spans[:i + 1].)"""
    i = bisect.bisect_left(starts, b)
    return i > 0 and reach[i - 1] > a


def busy_conflicts(tx: Tx, calendar: dict[str, Any], spans: list[Span]) -> list[dict[str, Any]]:
    """The blocking events (and occurrences) of the calendar's agent — every calendar of it; the
    calendar alone when it has no agent — whose time widened by the agent's buffers overlaps any of
    `spans`: availability's busy time, earliest first, at most MAX_CONFLICTS. For if_free, run
    inside the write transaction that then inserts, so nothing can book the time in between."""
    agent_id = calendar["agent_id"]
    before, after = buffers(rule_store.get(tx.conn, agent_id) if agent_id else None)
    scope = EventFilter(agent_id=agent_id) if agent_id else EventFilter(calendar_id=calendar["id"])
    lo, hi = spans[0][0], max(b for _, b in spans)
    now_ts = to_ts(tx.now)
    starts = [a for a, _ in spans]
    reach: list[int] = []
    for _, b in spans:
        reach.append(max(b, reach[-1]) if reach else b)
    out: list[dict[str, Any]] = []
    for r in occurrences.in_window(tx, scope, lo - after, hi + before, {calendar["id"]: calendar}):
        if not blocks(r, now_ts) or not _touches(spans, starts, reach, r["start_ts"] - before, r["end_ts"] + after):
            continue
        remote = r.get("remote") if isinstance(r.get("remote"), dict) else None
        out.append(
            {
                "event_id": r["id"],
                "calendar_id": r["calendar_id"],
                "title": r["title"],
                "status": r["status"],
                "start_time": _iso(r["start_ts"]),
                "end_time": _iso(r["end_ts"]),
                "source": r["source"],
                "source_id": (remote or {}).get("connection_id") or (remote or {}).get("subscription_id"),
                "reason": "overlaps" if _touches(spans, starts, reach, r["start_ts"], r["end_ts"]) else "buffer",
            }
        )
        if len(out) >= MAX_CONFLICTS:
            break
    return out
