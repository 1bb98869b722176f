"""Executions as the API shows them: per flow, across flows (task history), replay and test."""

from __future__ import annotations

from typing import Any

from chronary.errors import Conflict, NotFound, ValidationError
from chronary.schemas.automation import Execution, ExecutionStepList
from chronary.services.automation import flows, runs
from chronary.services.context import Page, Principal
from chronary.store import automation as store
from chronary.store.db import Tx

FINISHED = ("succeeded", "failed", "cancelled")


def _load(tx: Tx, principal: Principal, flow_id: str, execution_id: str) -> dict[str, Any]:
    flows.load(tx, principal, flow_id)
    row = store.get_execution(tx.conn, execution_id)
    if row is None or row["flow_id"] != flow_id:
        raise NotFound(f"No execution {execution_id} of flow {flow_id}", "executionId")
    return row


def list_for_flow(
    tx: Tx, principal: Principal, flow_id: str, status: str | None, limit: int, offset: int
) -> Page[Execution]:
    principal.require("flows.view")
    flows.load(tx, principal, flow_id)
    rows, total = store.list_executions(tx.conn, principal.org_id, flow_id, status, limit, offset)
    return Page([runs.present(r) for r in rows], total, limit, offset)


def get(tx: Tx, principal: Principal, flow_id: str, execution_id: str) -> Execution:
    principal.require("flows.view")
    return runs.present(_load(tx, principal, flow_id, execution_id))


def steps(tx: Tx, principal: Principal, flow_id: str, execution_id: str) -> ExecutionStepList:
    principal.require("flows.view")
    _load(tx, principal, flow_id, execution_id)
    found = store.steps_of(tx.conn, execution_id)
    return ExecutionStepList(data=[runs.present_step(r) for r in found], total=len(found))


def task_history(
    tx: Tx, principal: Principal, flow_id: str | None, status: str | None, limit: int, offset: int
) -> Page[Execution]:
    principal.require("task_history.view")
    if flow_id is not None:
        flows.load(tx, principal, flow_id)
    agent = None if principal.is_org else principal.agent_id  # an agent key's history: its agent's flows
    rows, total = store.list_executions(tx.conn, principal.org_id, flow_id, status, limit, offset, agent)
    return Page([runs.present(r) for r in rows], total, limit, offset)


def replay(tx: Tx, principal: Principal, flow_id: str, execution_id: str, limit: int) -> Execution:
    """Run the flow again, as it is now, with the same trigger data (marked as a replay)."""
    principal.require("flows.write")
    principal.require("actions.execute")
    original = _load(tx, principal, flow_id, execution_id)
    if original["status"] not in FINISHED:
        raise Conflict(f"Execution {execution_id} is still {original['status']}; replay it once it finished")
    flow = store.get_flow(tx.conn, flow_id)
    assert flow is not None
    new_id = runs.enqueue(
        tx, flow, store.trigger_of(tx.conn, flow_id), original["trigger_data"], None, mode="replay",
        replay_of=execution_id, limit=limit,
    )  # fmt: skip
    assert new_id is not None  # no dedup key: always queued
    return get(tx, principal, flow_id, new_id)


def test(tx: Tx, principal: Principal, flow_id: str, trigger_data: dict[str, Any], limit: int) -> str:
    """Queue a run now with the given trigger data (marked as a test); answers its id."""
    principal.require("flows.write")
    principal.require("actions.execute")
    flows.load(tx, principal, flow_id)
    flow = store.get_flow(tx.conn, flow_id)
    assert flow is not None
    if not isinstance(trigger_data, dict):
        raise ValidationError("triggerData must be an object", "triggerData")
    new_id = runs.enqueue(tx, flow, store.trigger_of(tx.conn, flow_id), trigger_data, None, mode="test", limit=limit)
    assert new_id is not None
    return new_id
