"""Agents: the AI, human or resource actors that own calendars.

Operations answer with `schemas.agents.Agent` structs (a `Page[Agent]` for lists); `load` stays
the raw store row, which other services use to check an agent exists and may be seen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chronary import ids
from chronary.errors import ValidationError, not_found
from chronary.schemas.agents import Agent, AgentCreate, AgentUpdate
from chronary.schemas.common import set_fields
from chronary.services import outbox
from chronary.services.context import Page, Principal
from chronary.services.validation import check_email, check_metadata
from chronary.store import agents as agent_store
from chronary.store import keys as key_store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms, require_timezone

# A front door's precondition (If-Match), run on the agent as it is now inside the write transaction.
Check = Callable[[Agent], None] | None


def present(row: dict[str, Any]) -> Agent:
    """The API shape of a store row (built directly: lists are hot paths, msgspec.convert is slower)."""
    return Agent(
        id=row["id"],
        name=row["name"],
        type=row["type"],
        status=row["status"],
        email=row["email"],
        timezone=row["timezone"],
        metadata=row["metadata"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def load(tx: Tx, principal: Principal, agent_id: str) -> dict[str, Any]:
    """The agent, or 404 if it does not exist or the key may not see it."""
    row = agent_store.get(tx.conn, agent_id)
    if row is None or not principal.can_see_agent(agent_id):
        raise not_found("agent", agent_id)
    return row


def create(tx: Tx, principal: Principal, data: AgentCreate) -> Agent:
    principal.require_org("agent creation")
    require_timezone(data.timezone, "timezone")
    now = iso_ms(tx.now)
    row: dict[str, Any] = {
        "id": ids.new_id("agt"),
        "org_id": principal.org_id,
        "name": data.name,
        "type": data.type,
        "status": "active",
        "email": check_email(data.email, "email"),
        "timezone": data.timezone,
        "metadata": check_metadata(data.metadata),
        "created_at": now,
        "updated_at": now,
    }
    agent_store.create(tx.conn, row)
    out = present(row)
    outbox.emit(tx, "agent.created", out, agent_id=row["id"])
    return out


def get(tx: Tx, principal: Principal, agent_id: str) -> Agent:
    return present(load(tx, principal, agent_id))


def list_(tx: Tx, principal: Principal, type_: str | None, status: str | None, limit: int, offset: int) -> Page[Agent]:
    rows, total = agent_store.list_(
        tx.conn, only_id=principal.agent_id, type_=type_, status=status, limit=limit, offset=offset
    )
    return Page([present(r) for r in rows], total, limit, offset)


def update(tx: Tx, principal: Principal, agent_id: str, data: AgentUpdate, check: Check = None) -> Agent:
    row = load(tx, principal, agent_id)
    changes = set_fields(data)
    if not changes:
        raise ValidationError("PATCH needs at least one field to change", None)
    if check is not None:
        check(present(row))
    if "name" in changes and changes["name"] is None:
        raise ValidationError("name cannot be null", "name")
    if "timezone" in changes:
        require_timezone(changes["timezone"], "timezone")
    if "email" in changes:
        check_email(changes["email"], "email")
    if "metadata" in changes:
        changes["metadata"] = check_metadata(changes["metadata"])
    changes["updated_at"] = iso_ms(tx.now)
    agent_store.patch(tx.conn, agent_id, changes)
    before, after = present(row), present({**row, **changes})
    outbox.emit(tx, "agent.updated", after, agent_id=agent_id, previous=outbox.changed_fields(before, after))
    return after


def delete(tx: Tx, principal: Principal, agent_id: str, check: Check = None) -> None:
    """Deletes the agent's calendars and events (FK cascade) and revokes its keys."""
    principal.require_org("agent deletion")
    before = present(load(tx, principal, agent_id))
    if check is not None:
        check(before)
    key_store.revoke_for_agent(tx.conn, agent_id, iso_ms(tx.now))
    agent_store.delete(tx.conn, agent_id)
    outbox.emit(tx, "agent.deleted", before, agent_id=agent_id)
