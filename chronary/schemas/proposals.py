"""Proposal shapes: a meeting offered at candidate slots, answered by each participant."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from chronary.schemas.common import Input, Timestamp

ProposalStatus = Literal["open", "resolved", "declined", "cancelled", "expired"]


class SlotInput(Input):
    start: Timestamp
    end: Timestamp


class ProposalCreate(Input):
    title: Annotated[str, Meta(min_length=1, max_length=500)]
    organizer_agent_id: str
    participant_agent_ids: Annotated[list[str], Meta(min_length=1, max_length=50)]
    candidate_slots: Annotated[list[SlotInput], Meta(min_length=1, max_length=20)]
    duration_minutes: Annotated[int, Meta(ge=1, le=24 * 60)]
    calendar_map: (
        Annotated[
            dict[str, str], Meta(description="agent id → calendar id for its holds and event (default: its first calendar)")
        ]
        | None
    ) = None
    expires_at: Timestamp | None = None
    hold_slots: bool = True


class ProposalRespond(Input):
    agent_id: str
    response: Literal["accept", "decline", "counter"]
    slot_index: Annotated[int, Meta(ge=0)] | None = None
    counter_slot: SlotInput | None = None


class ProposalResolve(Input):
    slot_index: Annotated[int, Meta(ge=0)]


class ProposalSlot(msgspec.Struct):
    index: int
    start: Timestamp
    end: Timestamp
    proposed_by: str


class Participant(msgspec.Struct):
    agent_id: str
    calendar_id: str
    response: str
    accepted_slots: list[int]
    declined_slots: list[int]
    responded_at: Timestamp | None
    event_id: str | None


class ProposalHold(msgspec.Struct):
    agent_id: str
    slot_index: int
    calendar_id: str
    event_id: str


class Proposal(msgspec.Struct):
    id: str
    title: str
    organizer_agent_id: str
    status: str
    duration_minutes: int
    candidate_slots: list[ProposalSlot]
    participants: list[Participant]
    participant_agent_ids: list[str]
    hold_slots: bool
    holds: list[ProposalHold]
    expires_at: Timestamp | None
    resolved_slot_index: int | None
    resolved_slot: ProposalSlot | None
    created_at: Timestamp
    updated_at: Timestamp
    resolved_at: Timestamp | None


class ProposalList(msgspec.Struct):
    data: list[Proposal]
    total: int
    limit: int
    offset: int
