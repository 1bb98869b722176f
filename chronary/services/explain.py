"""Why a time is not free: the explanations availability and find-meeting-time give with explain=true.

Every reason is a label on an interval of UTC seconds: an event (buffered), its buffers, the
time before now, the minimum notice, each local day's hours outside the working hours (or a
date override). One sweep (`segments`) cuts the labelled intervals into disjoint pieces, each
with the set of labels over it; a busy interval, a closed stretch or a rejected candidate is
then explained by the labels of the pieces it touches. Each event carries its source: local, or
the connection / iCal subscription it was synced from, with when that last synced.

Nothing here runs unless explain=true: the answers without it are computed exactly as before.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from chronary.schemas.scheduling import Blocker, ExplainedInterval, MeetingExplanation, RejectedCandidates, Source
from chronary.services import rules as rule_service
from chronary.services.context import Principal
from chronary.store import rules as rule_store
from chronary.store.db import Tx
from chronary.timeutil import ts_iso

MAX_REJECTED = 100
Key = tuple[str, ...]
Label = tuple[int, int, Key]
# reasons are listed in this order: the time itself, then the rules, then events and their buffers
_ORDER = {"past": 0, "notice": 1, "hours": 2, "event": 3, "buffer": 4, "too_short": 5}


def _order(key: Key) -> tuple[int, Key]:
    return _ORDER[key[0]], key


def _iso(ts: int) -> str:
    out = ts_iso(ts)
    assert out is not None
    return out


@dataclass
class Reasons:
    """The labelled intervals of one question, and the blocker each label stands for."""

    labels: list[Label] = field(default_factory=list)
    blockers: dict[Key, Blocker] = field(default_factory=dict)

    def add(self, a: int, b: int, key: Key, blocker: Blocker) -> None:
        if a < b:
            self.labels.append((a, b, key))
            self.blockers.setdefault(key, blocker)

    def of(self, keys: tuple[Key, ...]) -> list[Blocker]:
        return [self.blockers[k] for k in keys]


def segments(labels: list[Label]) -> list[tuple[int, int, tuple[Key, ...]]]:
    """Disjoint, sorted pieces with the (sorted) labels over each; neighbours with the same
    labels are joined, gaps with no label are left out."""
    starts: dict[int, list[Key]] = defaultdict(list)
    ends: dict[int, list[Key]] = defaultdict(list)
    for a, b, key in labels:
        starts[a].append(key)
        ends[b].append(key)
    points = sorted(starts.keys() | ends.keys())
    active: dict[Key, int] = {}
    out: list[tuple[int, int, tuple[Key, ...]]] = []
    for p, q in zip(points, points[1:], strict=False):
        for key in ends.get(p, ()):
            active[key] -= 1
            if not active[key]:
                del active[key]
        for key in starts.get(p, ()):
            active[key] = active.get(key, 0) + 1
        if not active:
            continue
        keys = tuple(sorted(active, key=_order))
        if out and out[-1][1] == p and out[-1][2] == keys:
            out[-1] = (out[-1][0], q, keys)
        else:
            out.append((p, q, keys))
    return out


# -- sources ------------------------------------------------------------------------------------


def _source(row: dict[str, Any], kind: str, provider: str) -> Source:
    return Source(
        kind=kind,
        provider=provider,
        id=row["id"],
        agent_id=row["agent_id"],
        label=row.get("label"),
        status=row["status"],
        last_synced_at=row["last_synced_at"],
        error=row["error"],
    )


@dataclass
class Sources:
    """The connections and subscriptions behind the agents' calendars, by id and by calendar."""

    connections: dict[str, Source]
    subscriptions: dict[str, Source]
    by_calendar: dict[str, Source]
    listed: list[Source]

    def of(self, row: dict[str, Any]) -> Source:
        """The source of one event row: the connection or subscription its `remote` names, else
        the one filling its calendar; `internal` events are local whatever their calendar."""
        provider = row["source"]
        if provider == "internal":
            return Source(kind="local", provider="internal")
        remote = row.get("remote")
        if not isinstance(remote, dict):
            remote = {}
        found = self.connections.get(str(remote.get("connection_id"))) or self.subscriptions.get(
            str(remote.get("subscription_id"))
        )
        found = found or self.by_calendar.get(row["calendar_id"])
        if found is None:  # the connection or subscription is gone; the copy stays
            kind = "subscription" if provider == "external_ical" else "connection"
            return Source(kind=kind, provider=provider)
        return msgspec.structs.replace(found, provider=provider)


def load_sources(tx: Tx, principal: Principal, agent_ids: list[str], rows: list[dict[str, Any]]) -> Sources:
    """Two small queries for the sources filling the calendars, one more for any a row names
    that no longer fills its calendar."""
    cons, subs = rule_store.feeding_sources(tx.conn, agent_ids)
    connections: dict[str, Source] = {}
    subscriptions: dict[str, Source] = {}
    by_calendar: dict[str, Source] = {}
    listed: dict[str, Source] = {}
    for r in cons:
        connections.setdefault(r["id"], _source(r, "connection", r["provider"]))
        by_calendar.setdefault(r["calendar_id"], connections[r["id"]])
    for r in subs:
        subscriptions.setdefault(r["id"], _source(r, "subscription", "external_ical"))
        by_calendar.setdefault(r["calendar_id"], subscriptions[r["id"]])
    for r in [*cons, *subs]:
        if principal.can_see_agent(r["agent_id"]):
            src = connections.get(r["id"]) or subscriptions[r["id"]]
            got = listed.setdefault(r["id"], msgspec.structs.replace(src, calendar_ids=[]))
            assert got.calendar_ids is not None
            got.calendar_ids.append(r["calendar_id"])
    named_cons, named_subs = set(), set()
    for row in rows:
        remote = row.get("remote")
        if isinstance(remote, dict):
            if remote.get("connection_id") and remote["connection_id"] not in connections:
                named_cons.add(str(remote["connection_id"]))
            if remote.get("subscription_id") and remote["subscription_id"] not in subscriptions:
                named_subs.add(str(remote["subscription_id"]))
    if named_cons or named_subs:
        more_cons, more_subs = rule_store.sources_by_id(tx.conn, sorted(named_cons), sorted(named_subs))
        connections.update({r["id"]: _source(r, "connection", r["provider"]) for r in more_cons})
        subscriptions.update({r["id"]: _source(r, "subscription", "external_ical") for r in more_subs})
    return Sources(connections, subscriptions, by_calendar, list(listed.values()))


# -- blockers -----------------------------------------------------------------------------------


def event_blocker(row: dict[str, Any], agent_id: str, visible: bool, sources: Sources) -> Blocker:
    """An event as a reason; another agent's event, for an agent key, keeps only its times."""
    start, end = _iso(row["start_ts"]), _iso(row["end_ts"])
    if not visible:
        return Blocker(kind="event", agent_id=agent_id, start_time=start, end_time=end, private=True)
    return Blocker(
        kind="event",
        agent_id=agent_id,
        event_id=row["id"],
        calendar_id=row["calendar_id"],
        title=row["title"],
        status=row["status"],
        start_time=start,
        end_time=end,
        source=sources.of(row),
    )


def _rule(agent_id: str, rules: dict[str, Any], visible: bool, rule: str, detail: str, **extra: Any) -> Blocker:
    if not visible:
        return Blocker(kind="rule", agent_id=agent_id, rule=rule, date=extra.get("date"))
    return Blocker(kind="rule", agent_id=agent_id, rule=rule, rule_id=rules["id"], detail=detail, **extra)


def buffer_blocker(agent_id: str, rules: dict[str, Any], visible: bool, event_id: str | None = None) -> Blocker:
    before, after = rules["buffer_before_minutes"], rules["buffer_after_minutes"]
    detail = f"buffers: {before} min before and {after} min after each event"
    return _rule(agent_id, rules, visible, "buffer", detail, event_id=event_id if visible else None)


def past_blocker(now_ts: int) -> Blocker:
    return Blocker(kind="past", detail=f"before now ({_iso(now_ts)})")


def _hours_text(ranges: list[dict[str, str]]) -> str:
    return ", ".join(f"{r['start']}–{r['end']}" for r in ranges)


def hours_blocker(agent_id: str, rules: dict[str, Any], visible: bool, day: date) -> Blocker:
    """Outside the working hours of that local day, or that day's date override."""
    iso_day = day.isoformat()
    override = next((o for o in rules["overrides"] if o["date"] == iso_day), None)
    if override is not None:
        hours = _hours_text(override["hours"])
        detail = f"date override for {iso_day}: " + (f"outside {hours}" if hours else "day off")
        return _rule(agent_id, rules, visible, "date_override", detail, date=iso_day)
    weekday = rule_service.DAYS[day.weekday()]
    hours = _hours_text(rules["working_hours"][weekday])
    detail = f"outside working hours ({weekday}: {hours})" if hours else f"no working hours on {weekday}"
    return _rule(agent_id, rules, visible, "working_hours", detail, date=iso_day)


def _local_days(a: int, b: int, tz: ZoneInfo) -> Iterator[tuple[int, int, date]]:
    """[a, b) cut at local midnights, with each piece's local date."""
    while a < b:
        day = datetime.fromtimestamp(a, tz).date()
        midnight = int(datetime.combine(day + timedelta(days=1), time(0), tz).timestamp())
        end = min(b, midnight) if midnight > a else b
        yield a, end, day
        a = end


def add_rule_labels(
    reasons: Reasons,
    agent_id: str,
    rules: dict[str, Any] | None,
    tz: ZoneInfo,
    visible: bool,
    start_ts: int,
    end_ts: int,
    now_ts: int,
) -> None:
    """Minimum notice and the hours outside working time (per local day) of one agent."""
    if rules is None:
        return
    notice = rules["minimum_notice_minutes"] * 60
    if notice:
        detail = f"minimum notice {rules['minimum_notice_minutes']} min: bookable from {_iso(now_ts + notice)}"
        blocker = _rule(agent_id, rules, visible, "minimum_notice", detail)
        reasons.add(max(start_ts, now_ts), min(end_ts, now_ts + notice), ("notice", agent_id), blocker)
    cur = start_ts
    for a, b in [*rule_service.working_windows(rules, tz, start_ts, end_ts), (end_ts, end_ts)]:
        for x, y, day in _local_days(cur, a, tz):
            reasons.add(x, y, ("hours", agent_id, day.isoformat()), hours_blocker(agent_id, rules, visible, day))
        cur = max(cur, b)


def add_event_labels(
    reasons: Reasons,
    agent_id: str,
    rules: dict[str, Any] | None,
    visible: bool,
    rows: list[dict[str, Any]],
    sources: Sources,
) -> None:
    """Each blocking event over its buffered time, and its buffers over the padding."""
    before = rules["buffer_before_minutes"] * 60 if rules else 0
    after = rules["buffer_after_minutes"] * 60 if rules else 0
    for i, row in enumerate(rows):
        ident = row["id"] if visible else f"private-{i}"
        key = ("event", agent_id, ident)
        reasons.add(row["start_ts"] - before, row["end_ts"] + after, key, event_blocker(row, agent_id, visible, sources))
        if rules is not None and (before or after):
            bkey = ("buffer", agent_id, ident)
            blocker = buffer_blocker(agent_id, rules, visible, row["id"])
            reasons.add(row["start_ts"] - before, row["start_ts"], bkey, blocker)
            reasons.add(row["end_ts"], row["end_ts"] + after, bkey, blocker)


def explain_busy(
    busy: list[tuple[int, int, str | None]],
    rows: list[dict[str, Any]],
    agent_id: str,
    rules: dict[str, Any] | None,
    sources: Sources,
    start_ts: int,
    end_ts: int,
) -> list[ExplainedInterval]:
    """Per merged busy interval (clipped to the window, as `busy` is answered): the events whose
    buffered times make it up, then the buffer rule when there are buffers."""
    before = rules["buffer_before_minutes"] * 60 if rules else 0
    after = rules["buffer_after_minutes"] * 60 if rules else 0
    padded = sorted(rows, key=lambda r: (r["start_ts"] - before, r["id"]))
    out: list[ExplainedInterval] = []
    j = 0
    for a, b, _ in busy:
        members: list[dict[str, Any]] = []
        while j < len(padded) and padded[j]["start_ts"] - before < b:
            members.append(padded[j])
            j += 1
        lo, hi = max(a, start_ts), min(b, end_ts)
        if lo >= hi:
            continue
        blocked = [
            event_blocker(r, agent_id, True, sources) for r in sorted(members, key=lambda r: (r["start_ts"], r["id"]))
        ]
        if rules is not None and (before or after):
            blocked.append(buffer_blocker(agent_id, rules, True))
        out.append(ExplainedInterval(start=_iso(lo), end=_iso(hi), blocked_by=blocked))
    return out


def explain_closed(reasons: Reasons) -> list[ExplainedInterval]:
    """The labelled stretches of an availability window, joined where the reasons stay the same."""
    return [
        ExplainedInterval(start=_iso(a), end=_iso(b), blocked_by=reasons.of(keys)) for a, b, keys in segments(reasons.labels)
    ]


def explain_rejected(
    reasons: Reasons, start_ts: int, end_ts: int, duration: int, step: int, slots: list[int], limit: int
) -> tuple[list[RejectedCandidates], int, bool]:
    """(entries, rejected_total, truncated) for the candidate grid of a find-meeting-time.

    Candidates are the grid starts the search walks (up to the last slot it returned, or the
    whole window when it found fewer than `limit`); each rejected one's reasons are the labels
    of the pieces its [t, t + duration) touches, found with a pointer that only moves forward."""
    first = -(-start_ts // step) * step
    last = slots[-1] if len(slots) >= limit else end_ts - duration
    considered = (last - first) // step + 1 if last >= first else 0
    total = max(0, considered - len(slots))
    accepted = set(slots)
    pieces = segments(reasons.labels)
    entries: list[RejectedCandidates] = []
    counts: list[tuple[int, int, int, tuple[Key, ...]]] = []  # (first start, last end, n, keys)
    listed = 0
    i = 0
    t = first
    previous_rejected = False
    while t <= last and total:
        if t in accepted:
            previous_rejected = False
            t += step
            continue
        while i < len(pieces) and pieces[i][1] <= t:
            i += 1
        touched: set[Key] = set()
        k = i
        while k < len(pieces) and pieces[k][0] < t + duration:
            touched.update(pieces[k][2])
            k += 1
        ordered = tuple(sorted(touched, key=_order))
        if previous_rejected and counts and counts[-1][3] == ordered:
            a, _, n, _ = counts[-1]
            counts[-1] = (a, t + duration, n + 1, ordered)
        elif len(counts) >= MAX_REJECTED:
            break
        else:
            counts.append((t, t + duration, 1, ordered))
        listed += 1
        previous_rejected = True
        t += step
    for a, b, n, group in counts:
        entries.append(RejectedCandidates(start=_iso(a), end=_iso(b), candidates=n, reasons=reasons.of(group)))
    return entries, total, listed < total


def meeting_explanation(
    tx: Tx,
    principal: Principal,
    agents: dict[str, dict[str, Any]],
    agent_ids: list[str],
    rules: dict[str, dict[str, Any]],
    start_ts: int,
    end_ts: int,
    now_ts: int,
    duration: int,
    step: int,
    slots: list[int],
    limit: int,
    rows_of: Callable[[str, int, int], list[dict[str, Any]]],
) -> MeetingExplanation:
    """`rows_of(agent_id, lo, hi)` gives that agent's blocking event rows (the same busy rule
    as availability); read per agent here, since only an explanation needs the events' ids."""
    reasons = Reasons()
    if now_ts > start_ts:
        reasons.add(start_ts, min(end_ts, now_ts), ("past",), past_blocker(now_ts))
    all_rows: dict[str, list[dict[str, Any]]] = {}
    for agent_id in agent_ids:
        r = rules.get(agent_id)
        before = r["buffer_before_minutes"] * 60 if r else 0
        after = r["buffer_after_minutes"] * 60 if r else 0
        all_rows[agent_id] = rows_of(agent_id, start_ts - after, end_ts + before)
    sources = load_sources(tx, principal, agent_ids, [row for rows in all_rows.values() for row in rows])
    for agent_id in agent_ids:
        r = rules.get(agent_id)
        visible = principal.can_see_agent(agent_id)
        tz = rule_service.timezone_of(r, agents[agent_id])
        add_rule_labels(reasons, agent_id, r, tz, visible, start_ts, end_ts, now_ts)
        add_event_labels(reasons, agent_id, r, visible, all_rows[agent_id], sources)
    entries, total, truncated = explain_rejected(reasons, start_ts, end_ts, duration, step, slots, limit)
    return MeetingExplanation(rejected=entries, rejected_total=total, truncated=truncated, sources=sources.listed)
