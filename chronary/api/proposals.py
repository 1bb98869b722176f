"""/v1/proposals: meeting proposals, their answers, resolution and cancellation."""

from __future__ import annotations

from litestar import Controller, get, post

from chronary.api._common import ERRORS, Limit, Offset, page_body
from chronary.schemas.proposals import (
    Proposal,
    ProposalCreate,
    ProposalList,
    ProposalResolve,
    ProposalRespond,
    ProposalStatus,
)
from chronary.services import proposals as svc
from chronary.services.context import Ctx
from chronary.store.db import Database


class ProposalController(Controller):
    path = "/proposals"
    tags = ["proposals"]

    @post(
        "/",
        summary="Propose a meeting at candidate slots",
        responses=ERRORS,
        description=(
            "Status `open`. With `hold_slots` (default) every candidate slot is held on each participant's "
            "calendar (`calendar_map` or its first calendar) for the first `duration_minutes`, except where "
            "the participant already has a confirmed event; holds expire with `expires_at` (at most 7 days). "
            "An agent key may only organize for itself."
        ),
    )
    async def create(self, data: ProposalCreate, db: Database, ctx: Ctx) -> Proposal:
        return await db.write(lambda tx: svc.create(tx, ctx, data))

    @get(
        "/",
        summary="List proposals (newest first)",
        responses=ERRORS,
        description=(
            "Filter by `status` (open, resolved, declined, cancelled, expired) and by `agent_id` (organizer or "
            "participant). An agent key sees only proposals it takes part in."
        ),
    )
    async def list_proposals(
        self,
        db: Database,
        ctx: Ctx,
        status: ProposalStatus | None = None,
        agent_id: str | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> ProposalList:
        page = await db.read(lambda tx: svc.list_(tx, ctx.principal, status, agent_id, limit, offset))
        return page_body(ProposalList, page)

    @get("/{proposal_id:str}", summary="Get a proposal", responses=ERRORS)
    async def get_proposal(self, proposal_id: str, db: Database, ctx: Ctx) -> Proposal:
        return await db.read(lambda tx: svc.get(tx, ctx.principal, proposal_id))

    @post(
        "/{proposal_id:str}/respond",
        status_code=200,
        summary="Accept, decline or counter",
        responses=ERRORS,
        description=(
            "accept + slot_index accepts that slot (without: every slot); decline + slot_index rejects it "
            "(without: the whole proposal); counter + counter_slot adds a candidate its proposer accepts. "
            "When every participant accepts one slot the proposal resolves: holds are released and confirmed "
            "events created on every participant's calendar in one transaction. 409 once it is not open."
        ),
    )
    async def respond(self, proposal_id: str, data: ProposalRespond, db: Database, ctx: Ctx) -> Proposal:
        return await db.write(lambda tx: svc.respond(tx, ctx, proposal_id, data))

    @post("/{proposal_id:str}/resolve", status_code=200, summary="Force a slot (organizer or org key)", responses=ERRORS)
    async def resolve(self, proposal_id: str, data: ProposalResolve, db: Database, ctx: Ctx) -> Proposal:
        return await db.write(lambda tx: svc.resolve(tx, ctx, proposal_id, data))

    @post(
        "/{proposal_id:str}/cancel",
        status_code=200,
        summary="Cancel an open proposal, releasing its holds",
        responses=ERRORS,
    )
    async def cancel(self, proposal_id: str, db: Database, ctx: Ctx) -> Proposal:
        return await db.write(lambda tx: svc.cancel(tx, ctx, proposal_id))


ROUTES = [ProposalController]
