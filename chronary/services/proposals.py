"""Proposals: offer a meeting at candidate slots, collect answers, and turn agreement into events.

Life of a proposal: `open` → `resolved` (every participant accepts one common slot, or the
organizer forces a slot) | `declined` (every slot is rejected by someone) | `cancelled`. An
open proposal past `expires_at` answers as `expired` and takes no more answers.

While open, each candidate slot is held (an event with status hold, through services.events so
event.hold_* webhooks fire) on every participant's calendar, except where the participant
already has a confirmed event then; a slot's holds go as soon as someone declines it. Holds
cover the first `duration_minutes` of a slot — the time the meeting would take — and expire
with the proposal (at most 7 days). Resolving releases every hold and creates the confirmed
events, all in the caller's one transaction; the writer thread serializes transactions, so
two concurrent resolutions cannot both see `open`.

Answers: accept with `slot_index` adds that slot to what the agent accepts, accept without it
accepts every slot; decline with `slot_index` rejects that slot, without it the whole proposal
(which then cannot work); counter adds `counter_slot` as a new candidate that its proposer
accepts. The organizer, when also a participant, accepts its own slots at creation.
Webhooks (owned by the organizer, addressed to every participant too): proposal.created, .responded (also when the answer
declines the proposal), .resolved, .cancelled.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from chronary import ids
from chronary.errors import Conflict, Forbidden, ValidationError, not_found
from chronary.schemas.events import Event, EventCreate
from chronary.schemas.proposals import (
    Participant,
    Proposal,
    ProposalCreate,
    ProposalHold,
    ProposalResolve,
    ProposalRespond,
    ProposalSlot,
    SlotInput,
)
from chronary.services import events as event_service
from chronary.services import outbox
from chronary.services.context import Ctx, Page, Principal
from chronary.store import agents as agent_store
from chronary.store import calendars as cal_store
from chronary.store import events as event_store
from chronary.store import proposals as store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms, parse_instant, to_ts, ts_iso

MAX_SLOTS = 20
HOLD_MAX = event_service.HOLD_MAX


def _emit(tx: Tx, kind: str, obj: Proposal, row: dict[str, Any], parts: list[dict[str, Any]]) -> None:
    """Owned by the organizer; every participant's agent-scoped endpoints hear it too."""
    outbox.emit(tx, kind, obj, agent_id=row["organizer_agent_id"], also_agent_ids=[p["agent_id"] for p in parts])


def _org_ctx(ctx: Ctx) -> Ctx:
    """Holds and events go on other agents' calendars: act with the org's authority."""
    p = ctx.principal
    return Ctx(Principal(org_id=p.org_id, key_id=p.key_id), ctx.base_url)


def _slot(tx: Tx, slot: SlotInput, duration: int, param: str) -> tuple[int, int]:
    start, end = parse_instant(slot.start, f"{param}.start"), parse_instant(slot.end, f"{param}.end")
    if end <= start:
        raise ValidationError(f"{param}.end must be after {param}.start", f"{param}.end")
    if end - start < timedelta(minutes=duration):
        raise ValidationError(f"{param} is shorter than duration_minutes ({duration})", f"{param}.end")
    if start <= tx.now:
        raise ValidationError(f"{param}.start must be in the future", f"{param}.start")
    return to_ts(start), to_ts(end)


def _iso(ts: int) -> str:
    """`ts_iso` of an instant that is there (its `str | None` is for None in, None out)."""
    return cast(str, ts_iso(ts))


def _event_id(event: dict[str, Any] | Event) -> str:
    """The id of what services.events.create answers: a dict today, its Event struct once typed."""
    return event["id"] if isinstance(event, dict) else event.id


def _slot_out(i: int, s: dict[str, Any]) -> ProposalSlot:
    return ProposalSlot(index=i, start=_iso(s["start_ts"]), end=_iso(s["end_ts"]), proposed_by=s["proposed_by"])


def effective_status(row: dict[str, Any], now: datetime) -> str:
    if row["status"] == "open" and row["expires_at"] is not None and row["expires_at"] <= to_ts(now):
        return "expired"
    return row["status"]


def present(tx: Tx, row: dict[str, Any], parts: list[dict[str, Any]] | None = None) -> Proposal:
    parts = store.participants(tx.conn, [row["id"]])[row["id"]] if parts is None else parts
    slots = row["candidate_slots"]
    resolved = row["resolved_slot"]
    return Proposal(
        id=row["id"],
        title=row["title"],
        organizer_agent_id=row["organizer_agent_id"],
        status=effective_status(row, tx.now),
        duration_minutes=row["duration_minutes"],
        candidate_slots=[_slot_out(i, s) for i, s in enumerate(slots)],
        participants=[
            Participant(
                agent_id=p["agent_id"],
                calendar_id=p["calendar_id"],
                response=p["response"],
                accepted_slots=p["accepted"],
                declined_slots=p["declined"],
                responded_at=p["responded_at"],
                event_id=p["event_id"],
            )
            for p in parts
        ],
        participant_agent_ids=[p["agent_id"] for p in parts],
        hold_slots=bool(row["hold_slots"]),
        holds=[
            ProposalHold(
                agent_id=h["agent_id"], slot_index=h["slot_index"], calendar_id=h["calendar_id"], event_id=h["event_id"]
            )
            for h in store.holds(tx.conn, row["id"])
        ],
        expires_at=ts_iso(row["expires_at"]),
        resolved_slot_index=resolved,
        resolved_slot=None if resolved is None else _slot_out(resolved, slots[resolved]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        resolved_at=row["resolved_at"],
    )


def _agent(tx: Tx, principal: Principal, agent_id: str, param: str) -> dict[str, Any]:
    agent = agent_store.get(tx.conn, agent_id) if isinstance(agent_id, str) else None
    if agent is None or agent["org_id"] != principal.org_id:
        raise ValidationError(f"{param}: no agent with id {agent_id!r}", param)
    return agent


def _calendar_for(tx: Tx, agent_id: str, mapped: str | None, param: str) -> str:
    if mapped is not None:
        cal = cal_store.get(tx.conn, mapped)
        if cal is None or cal["agent_id"] != agent_id:
            raise ValidationError(f"{param}: {mapped!r} is not a calendar of agent {agent_id}", param)
        return mapped
    cal_ids = cal_store.ids_for_agent(tx.conn, agent_id)
    if not cal_ids:
        raise ValidationError(f"{param}: agent {agent_id} has no calendar; create one or give calendar_map", param)
    return cal_ids[0]


def _hold_expiry(tx: Tx, expires_at: int | None) -> str:
    cap = to_ts(tx.now + HOLD_MAX)
    return _iso(cap if expires_at is None else min(expires_at, cap))


def _place_holds(tx: Tx, ctx: Ctx, row: dict[str, Any], parts: list[dict[str, Any]], index: int) -> None:
    """Hold slot `index` on each participant's calendar, skipping where a confirmed event is."""
    if not row["hold_slots"]:
        return
    slot = row["candidate_slots"][index]
    start = slot["start_ts"]
    body = EventCreate(
        title=f"Hold: {row['title']}",
        start_time=_iso(start),
        end_time=_iso(start + row["duration_minutes"] * 60),
        status="hold",
        hold_expires_at=_hold_expiry(tx, row["expires_at"]),
        metadata={"proposal_id": row["id"], "slot_index": index},
    )
    for p in parts:
        try:
            event = event_service.create(tx, _org_ctx(ctx), p["calendar_id"], body)
        except Conflict:
            continue  # the participant is busy then; nothing to hold (no write happened)
        store.add_hold(
            tx.conn,
            {
                "proposal_id": row["id"],
                "agent_id": p["agent_id"],
                "slot_index": index,
                "calendar_id": p["calendar_id"],
                "event_id": _event_id(event),
            },
        )


def _release_holds(tx: Tx, ctx: Ctx, proposal_id: str, slot_index: int | None = None) -> None:
    """Release the holds still standing (expired, deleted or confirmed-by-hand ones are left),
    of one slot or of all."""
    for h in store.holds(tx.conn, proposal_id):
        if slot_index is not None and h["slot_index"] != slot_index:
            continue
        ev = event_store.get(tx.conn, h["event_id"])
        if ev is not None and ev["calendar_id"] == h["calendar_id"]:
            event_service.release(tx, _org_ctx(ctx), h["calendar_id"], h["event_id"])
    store.clear_holds(tx.conn, proposal_id, slot_index)


def create(tx: Tx, ctx: Ctx, data: ProposalCreate) -> Proposal:
    principal = ctx.principal
    organizer = _agent(tx, principal, data.organizer_agent_id, "organizer_agent_id")
    if not principal.is_org and principal.agent_id != organizer["id"]:
        raise Forbidden("An agent key can only create proposals it organizes (organizer_agent_id = its agent)")
    seen: dict[str, int] = {}
    for i, agent_id in enumerate(data.participant_agent_ids):
        param = f"participant_agent_ids[{i}]"
        if agent_id in seen:
            raise ValidationError(f"{param} repeats participant_agent_ids[{seen[agent_id]}]", param)
        seen[agent_id] = i
        _agent(tx, principal, agent_id, param)
    cal_map = data.calendar_map or {}
    for agent_id in cal_map:
        if agent_id not in seen:
            raise ValidationError(f"calendar_map.{agent_id}: not one of participant_agent_ids", f"calendar_map.{agent_id}")
    slots = []
    for i, s in enumerate(data.candidate_slots):
        start_ts, end_ts = _slot(tx, s, data.duration_minutes, f"candidate_slots[{i}]")
        slots.append({"start_ts": start_ts, "end_ts": end_ts, "proposed_by": organizer["id"]})
    expires_at = None
    if data.expires_at is not None:
        expires = parse_instant(data.expires_at, "expires_at")
        if expires <= tx.now:
            raise ValidationError("expires_at must be in the future", "expires_at")
        expires_at = to_ts(expires)
    now = iso_ms(tx.now)
    row = {
        "id": ids.new_id("prp"),
        "org_id": principal.org_id,
        "organizer_agent_id": organizer["id"],
        "title": data.title,
        "status": "open",
        "duration_minutes": data.duration_minutes,
        "candidate_slots": slots,
        "hold_slots": data.hold_slots,
        "expires_at": expires_at,
        "resolved_slot": None,
        "created_at": now,
        "updated_at": now,
        "resolved_at": None,
    }
    store.create(tx.conn, row)
    parts = []
    for i, agent_id in enumerate(data.participant_agent_ids):
        param = f"calendar_map.{agent_id}" if agent_id in cal_map else f"participant_agent_ids[{i}]"
        is_organizer = agent_id == organizer["id"]
        part = {
            "proposal_id": row["id"],
            "agent_id": agent_id,
            "position": i,
            "calendar_id": _calendar_for(tx, agent_id, cal_map.get(agent_id), param),
            "response": "accept" if is_organizer else "pending",
            "accepted": list(range(len(slots))) if is_organizer else [],
            "declined": [],
            "responded_at": now if is_organizer else None,
            "event_id": None,
        }
        store.add_participant(tx.conn, part)
        parts.append(part)
    for index in range(len(slots)):
        _place_holds(tx, ctx, row, parts, index)
    _emit(tx, "proposal.created", present(tx, row, parts), row, parts)
    outcome = _outcome(row, parts)  # e.g. the organizer is the only participant
    if isinstance(outcome, int):
        _resolve(tx, ctx, row, parts, outcome)
    return present(tx, row, parts)


def load(tx: Tx, principal: Principal, proposal_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The proposal and its participants; 404 when missing or the agent key takes no part."""
    row = store.get(tx.conn, proposal_id)
    if row is None or row["org_id"] != principal.org_id:
        raise not_found("proposal", proposal_id)
    parts = store.participants(tx.conn, [proposal_id])[proposal_id]
    if not principal.is_org and principal.agent_id not in {row["organizer_agent_id"], *(p["agent_id"] for p in parts)}:
        raise not_found("proposal", proposal_id)
    return row, parts


def _require_open(tx: Tx, row: dict[str, Any]) -> None:
    status = effective_status(row, tx.now)
    if status != "open":
        raise Conflict(f"Proposal {row['id']} is {status}; it takes no more changes", "status")


def _require_organizer(principal: Principal, row: dict[str, Any], what: str) -> None:
    if not principal.is_org and principal.agent_id != row["organizer_agent_id"]:
        raise Forbidden(f"Only the organizer (or an org key) can {what} a proposal")


def _resolve(tx: Tx, ctx: Ctx, row: dict[str, Any], parts: list[dict[str, Any]], index: int) -> None:
    """Release the holds and create the confirmed events, all in this transaction."""
    _release_holds(tx, ctx, row["id"])
    slot = row["candidate_slots"][index]
    start = slot["start_ts"]
    body = EventCreate(
        title=row["title"],
        start_time=_iso(start),
        end_time=_iso(start + row["duration_minutes"] * 60),
        status="confirmed",
        metadata={"proposal_id": row["id"], "participant_agent_ids": [p["agent_id"] for p in parts]},
    )
    for p in parts:
        if cal_store.get(tx.conn, p["calendar_id"]) is None:
            raise Conflict(f"Calendar {p['calendar_id']} of participant {p['agent_id']} no longer exists")
        event_id = _event_id(event_service.create(tx, _org_ctx(ctx), p["calendar_id"], body))
        p["event_id"] = event_id
        store.patch_participant(tx.conn, row["id"], p["agent_id"], {"event_id": event_id})
    now = iso_ms(tx.now)
    row.update(status="resolved", resolved_slot=index, resolved_at=now, updated_at=now)
    store.patch(tx.conn, row["id"], {"status": "resolved", "resolved_slot": index, "resolved_at": now, "updated_at": now})
    _emit(tx, "proposal.resolved", present(tx, row, parts), row, parts)


def _outcome(row: dict[str, Any], parts: list[dict[str, Any]]) -> int | str | None:
    """The earliest slot everyone accepts; "declined" when every slot is rejected; else None."""
    slots = row["candidate_slots"]
    agreed = [i for i in range(len(slots)) if all(i in p["accepted"] for p in parts)]
    if agreed:
        return min(agreed, key=lambda i: (slots[i]["start_ts"], i))
    if all(any(i in p["declined"] for p in parts) for i in range(len(slots))):
        return "declined"
    return None


def _decline(tx: Tx, ctx: Ctx, row: dict[str, Any]) -> None:
    _release_holds(tx, ctx, row["id"])
    now = iso_ms(tx.now)
    row.update(status="declined", updated_at=now, resolved_at=now)
    store.patch(tx.conn, row["id"], {"status": "declined", "updated_at": now, "resolved_at": now})


def _check_index(row: dict[str, Any], index: int | None, param: str = "slot_index") -> None:
    if index is not None and index >= len(row["candidate_slots"]):
        raise ValidationError(f"{param} must be below {len(row['candidate_slots'])} (the number of candidate slots)", param)


def respond(tx: Tx, ctx: Ctx, proposal_id: str, data: ProposalRespond) -> Proposal:
    principal = ctx.principal
    if not principal.is_org and data.agent_id != principal.agent_id:
        raise Forbidden("An agent key can only respond for its own agent")
    row, parts = load(tx, principal, proposal_id)
    part = next((p for p in parts if p["agent_id"] == data.agent_id), None)
    if part is None:
        raise ValidationError(f"agent_id {data.agent_id!r} is not a participant of this proposal", "agent_id")
    _require_open(tx, row)
    slots = row["candidate_slots"]
    accepted, declined = set(part["accepted"]), set(part["declined"])
    if data.response == "counter":
        if data.counter_slot is None:
            raise ValidationError("counter_slot is required when response is counter", "counter_slot")
        if data.slot_index is not None:
            raise ValidationError("slot_index does not go with a counter; send counter_slot", "slot_index")
        if len(slots) >= MAX_SLOTS:
            raise ValidationError(f"a proposal has at most {MAX_SLOTS} candidate slots", "counter_slot")
        start_ts, end_ts = _slot(tx, data.counter_slot, row["duration_minutes"], "counter_slot")
        slots.append({"start_ts": start_ts, "end_ts": end_ts, "proposed_by": data.agent_id})
        accepted.add(len(slots) - 1)
        store.patch(tx.conn, row["id"], {"candidate_slots": slots})
        _place_holds(tx, ctx, row, parts, len(slots) - 1)
    else:
        if data.counter_slot is not None:
            raise ValidationError("counter_slot only goes with response counter", "counter_slot")
        _check_index(row, data.slot_index)
        chosen = set(range(len(slots))) if data.slot_index is None else {data.slot_index}
        if data.response == "accept":
            accepted |= chosen
            declined -= chosen
        else:
            declined |= chosen
            accepted -= chosen
            for index in sorted(chosen - set(part["declined"])):
                _release_holds(tx, ctx, row["id"], index)  # a slot someone rejects cannot happen
    now = iso_ms(tx.now)
    part.update(response=data.response, accepted=sorted(accepted), declined=sorted(declined), responded_at=now)
    store.patch_participant(
        tx.conn,
        row["id"],
        data.agent_id,
        {
            "response": part["response"],
            "accepted": part["accepted"],
            "declined": part["declined"],
            "responded_at": now,
        },
    )
    row["updated_at"] = now
    store.patch(tx.conn, row["id"], {"updated_at": now})
    outcome = _outcome(row, parts)
    if outcome == "declined":
        _decline(tx, ctx, row)
    # responded goes out before resolved, and carries the declined status when that is the result
    _emit(tx, "proposal.responded", present(tx, row, parts), row, parts)
    if isinstance(outcome, int):
        _resolve(tx, ctx, row, parts, outcome)
    return present(tx, row, parts)


def resolve(tx: Tx, ctx: Ctx, proposal_id: str, data: ProposalResolve) -> Proposal:
    row, parts = load(tx, ctx.principal, proposal_id)
    _require_organizer(ctx.principal, row, "resolve")
    _require_open(tx, row)
    _check_index(row, data.slot_index)
    _resolve(tx, ctx, row, parts, data.slot_index)
    return present(tx, row, parts)


def cancel(tx: Tx, ctx: Ctx, proposal_id: str) -> Proposal:
    row, parts = load(tx, ctx.principal, proposal_id)
    _require_organizer(ctx.principal, row, "cancel")
    if row["status"] != "open":
        raise Conflict(f"Proposal {proposal_id} is {row['status']}; only an open proposal can be cancelled", "status")
    _release_holds(tx, ctx, proposal_id)
    now = iso_ms(tx.now)
    row.update(status="cancelled", updated_at=now, resolved_at=now)
    store.patch(tx.conn, proposal_id, {"status": "cancelled", "updated_at": now, "resolved_at": now})
    out = present(tx, row, parts)
    _emit(tx, "proposal.cancelled", out, row, parts)
    return out


def get(tx: Tx, principal: Principal, proposal_id: str) -> Proposal:
    row, parts = load(tx, principal, proposal_id)
    return present(tx, row, parts)


def list_(tx: Tx, principal: Principal, status: str | None, agent_id: str | None, limit: int, offset: int) -> Page[Proposal]:
    if not principal.is_org:
        if agent_id is not None and agent_id != principal.agent_id:
            raise not_found("agent", agent_id)
        agent_id = principal.agent_id
    rows, total = store.list_(
        tx.conn, principal.org_id, status=status, agent_id=agent_id, now_ts=to_ts(tx.now), limit=limit, offset=offset
    )
    parts = store.participants(tx.conn, [r["id"] for r in rows])
    return Page([present(tx, r, parts[r["id"]]) for r in rows], total, limit, offset)
