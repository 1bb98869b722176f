"""Flows and their trigger: save-time validation that names the bad step and field.

A flow is one trigger and an ordered list of steps (`schemas.automation.Step`). Steps are kept
as the JSON the API takes (camelCase), decoded again by the runner. Checked when saved: step ids
unique (templates reach earlier outputs as `steps.<id>.output`), every action exists in the org's
catalogue with its required inputs present and no unknown ones, connections belong to the
provider, and every template and condition parses. What a template yields is only known at run
time; a failing template fails its step with an error naming it.

A flow runs with the rights of the key that saved it (`created_by`): an agent key's flow sees
and changes only that agent's data, exactly like the key itself; revoking the key stops its
flows' runs.
"""

from __future__ import annotations

from typing import Any

import msgspec

from chronary import ids
from chronary.errors import Conflict, NotFound, ValidationError
from chronary.schemas.automation import (
    TABLE_STEPS,
    ActionStep,
    BranchStep,
    DelayStep,
    FilterStep,
    Flow,
    FlowCreate,
    FlowUpdate,
    HttpStep,
    RecordToTableStep,
    Step,
    TableDeleteStep,
    TableInsertStep,
    TableLookupStep,
    TableUpsertStep,
    Trigger,
    TriggerCreate,
    TriggerList,
)
from chronary.schemas.common import set_fields
from chronary.services import tables
from chronary.services.automation import triggers as trigger_rules
from chronary.services.connect import catalogue as org_catalogue
from chronary.services.context import Page, Principal
from chronary.store import automation as store
from chronary.store import connections as con_store
from chronary.store.db import Tx
from chronary.timeutil import from_ts, iso_ms


def _check_template(value: Any, where: str) -> None:
    from chronary.services.automation import templating  # jinja2, imported when first used

    try:
        templating.check(value, where)
    except templating.TemplateError as exc:
        raise ValidationError(str(exc), exc.where) from None


def _check_condition(expr: str, where: str) -> None:
    from chronary.services.automation import templating  # jinja2, imported when first used

    try:
        templating.check_condition(expr, where)
    except templating.TemplateError as exc:
        raise ValidationError(str(exc), exc.where) from None


def check_steps(tx: Tx, principal: Principal, steps: list[Step]) -> None:
    seen: dict[str, str] = {}
    _walk(tx, principal, steps, "steps", seen)


def _walk(tx: Tx, principal: Principal, steps: list[Step], base: str, seen: dict[str, str]) -> None:
    for i, step in enumerate(steps):
        where = f"{base}[{i}]"
        if step.id in seen:
            raise ValidationError(f"{where}.id: {step.id!r} is already the id of {seen[step.id]}", f"{where}.id")
        seen[step.id] = where
        if isinstance(step, ActionStep):
            _check_action(tx, principal, step, where)
        elif isinstance(step, FilterStep):
            _check_condition(step.condition, f"{where}.condition")
        elif isinstance(step, BranchStep):
            _check_condition(step.condition, f"{where}.condition")
            _walk(tx, principal, step.then, f"{where}.then", seen)
            _walk(tx, principal, step.otherwise, f"{where}.else", seen)
        elif isinstance(step, DelayStep):
            if (step.seconds is None) == (step.until is None):
                raise ValidationError(f"{where}: a delay takes exactly one of seconds or until", f"{where}.seconds")
            if step.until is not None:
                _check_template(step.until, f"{where}.until")
        elif isinstance(step, HttpStep):
            _check_template(step.url, f"{where}.url")
            _check_template(step.headers, f"{where}.headers")
            _check_template(step.body, f"{where}.body")
        elif isinstance(step, TABLE_STEPS):
            _check_table_step(tx, principal, step, where)


def _check_table_step(tx: Tx, principal: Principal, step: Any, where: str) -> None:
    """The table exists (for the flow's key), the columns named are its columns, templates parse."""
    try:
        table = tables.get_table(tx, principal, step.table)
    except NotFound:
        raise ValidationError(f"{where}.table: no table {step.table!r}", f"{where}.table") from None
    columns = {c.name for c in table.columns}

    def column(name: str | None, field: str) -> None:
        if name is not None and name not in columns:
            raise ValidationError(
                f"{where}.{field}: {step.table} has no column {name!r} ({', '.join(sorted(columns))})", f"{where}.{field}"
            )

    if isinstance(step, (TableInsertStep, TableUpsertStep)):
        for name in step.values:
            column(name, f"values.{name}")
        _check_template(step.values, f"{where}.values")
        if isinstance(step, TableUpsertStep):
            column(step.column, "column")
    elif isinstance(step, TableLookupStep):
        column(step.column, "column")
        _check_template(step.value, f"{where}.value")
    elif isinstance(step, TableDeleteStep):
        if (step.row_id is None) == (step.column is None):
            raise ValidationError(f"{where}: a delete takes rowId, or column and value", f"{where}.rowId")
        column(step.column, "column")
        _check_template(step.row_id, f"{where}.rowId")
        _check_template(step.value, f"{where}.value")
    elif isinstance(step, RecordToTableStep):
        if not step.mapping:
            raise ValidationError(f"{where}.mapping: map at least one column", f"{where}.mapping")
        for name in step.mapping:
            column(name, f"mapping.{name}")
        column(step.upsert_column, "upsertColumn")
        _check_template(step.record_id, f"{where}.recordId")
        _check_template(step.mapping, f"{where}.mapping")


def _check_action(tx: Tx, principal: Principal, step: ActionStep, where: str) -> None:
    try:
        provider = org_catalogue.get(tx, principal.org_id, step.provider_type)
    except NotFound:
        raise ValidationError(f"{where}.providerType: no provider {step.provider_type!r}", f"{where}.providerType") from None
    action = provider.action(step.action)
    if action is None:
        names = ", ".join(a.name for a in provider.actions) or "none"
        raise ValidationError(f"{where}.action: {provider.name} has no action {step.action!r} ({names})", f"{where}.action")
    properties = action.input_schema.get("properties", {})
    for name in step.inputs:
        if name not in properties:
            raise ValidationError(f"{where}.inputs.{name}: {action.name} takes no such input", f"{where}.inputs.{name}")
    for name in action.input_schema.get("required", []):
        if name not in step.inputs:
            raise ValidationError(f"{where}.inputs.{name}: {action.name} needs it", f"{where}.inputs.{name}")
    _check_template(step.inputs, f"{where}.inputs")
    if step.connection_id is not None:
        con = con_store.get(tx.conn, step.connection_id)
        if con is None or con["org_id"] != principal.org_id or con["provider"] != provider.type:
            raise ValidationError(
                f"{where}.connectionId: no {provider.type} connection {step.connection_id}", f"{where}.connectionId"
            )


# --- shapes --------------------------------------------------------------------------------------


def present_trigger(row: dict[str, Any]) -> Trigger:
    return Trigger(
        id=row["id"],
        flow_id=row["flow_id"],
        provider_type=row["provider_type"],
        trigger_name=row["trigger_name"],
        kind=row["kind"],
        connection_id=row["connection_id"],
        config=row["config"],
        next_run_at=iso_ms(from_ts(row["next_run_ts"])) if row["next_run_ts"] is not None else None,
        last_error=(row["state"] or {}).get("last_error"),
        created_at=row["created_at"],
    )


def present(row: dict[str, Any], trigger: dict[str, Any] | None) -> Flow:
    return Flow(
        id=row["id"],
        object="flow",
        name=row["name"],
        description=row["description"],
        status=row["status"],
        trigger=present_trigger(trigger) if trigger else None,
        steps=row["steps"],
        concurrency=row["concurrency"],
        template=row["template"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def load(tx: Tx, principal: Principal, flow_id: str) -> dict[str, Any]:
    row = store.get_flow(tx.conn, flow_id)
    if row is None or row["org_id"] != principal.org_id or not _owns(principal, row):
        raise NotFound(f"No flow {flow_id}", "flowId")
    return row


def _owns(principal: Principal, row: dict[str, Any]) -> bool:
    """Agent keys see the flows of their agent only; org keys see every flow."""
    return principal.is_org or row["agent_id"] == principal.agent_id


# --- operations ----------------------------------------------------------------------------------


def create(tx: Tx, principal: Principal, data: FlowCreate, *, template: str | None = None) -> Flow:
    principal.require("flows.write")
    check_steps(tx, principal, data.steps)
    now = iso_ms(tx.now)
    row: dict[str, Any] = {
        "id": ids.new_id("flw"),
        "org_id": principal.org_id,
        "name": data.name,
        "description": data.description,
        "status": data.status,
        "steps": msgspec.to_builtins(data.steps),
        "concurrency": data.concurrency,
        "template": template,
        "created_by": principal.key_id,
        "agent_id": principal.agent_id,
        "created_at": now,
        "updated_at": now,
    }
    store.create_flow(tx.conn, row)
    trigger = None
    if data.trigger is not None:
        principal.require("triggers.write")
        trigger = trigger_rules.create(tx, principal, row, data.trigger, where="trigger")
    return present(row, trigger)


def get(tx: Tx, principal: Principal, flow_id: str) -> Flow:
    principal.require("flows.view")
    row = load(tx, principal, flow_id)
    return present(row, store.trigger_of(tx.conn, flow_id))


def list_(tx: Tx, principal: Principal, status: str | None, limit: int, offset: int) -> Page[Flow]:
    principal.require("flows.view")
    agent = None if principal.is_org else principal.agent_id
    rows, total = store.list_flows(tx.conn, principal.org_id, status, limit, offset, agent)
    triggers = store.triggers_of(tx.conn, [r["id"] for r in rows])
    return Page([present(r, triggers.get(r["id"])) for r in rows], total, limit, offset)


def update(tx: Tx, principal: Principal, flow_id: str, data: FlowUpdate) -> Flow:
    principal.require("flows.write")
    load(tx, principal, flow_id)
    changes = set_fields(data)
    if not changes:
        raise ValidationError("PATCH needs at least one field (name, description, status, steps, concurrency)", None)
    for name in ("name", "status", "steps"):
        if name in changes and changes[name] is None:
            raise ValidationError(f"{name} cannot be null", name)
    if "steps" in changes:
        check_steps(tx, principal, data.steps)  # type: ignore[arg-type]  # set above: not UNSET
        changes["steps"] = msgspec.to_builtins(changes["steps"])
    changes["updated_at"] = iso_ms(tx.now)
    store.patch_flow(tx.conn, flow_id, changes)
    return get(tx, principal, flow_id)


def delete(tx: Tx, principal: Principal, flow_id: str) -> None:
    principal.require("flows.write")
    load(tx, principal, flow_id)
    store.delete_flow(tx.conn, flow_id)  # its trigger, executions and step logs cascade


# --- the trigger endpoints -----------------------------------------------------------------------


def list_triggers(tx: Tx, principal: Principal, flow_id: str) -> TriggerList:
    principal.require("triggers.view")
    load(tx, principal, flow_id)
    found = store.trigger_of(tx.conn, flow_id)
    return TriggerList(data=[present_trigger(found)] if found else [], total=1 if found else 0)


def add_trigger(tx: Tx, principal: Principal, flow_id: str, data: TriggerCreate) -> Trigger:
    principal.require("triggers.write")
    row = load(tx, principal, flow_id)
    if store.trigger_of(tx.conn, flow_id) is not None:
        raise Conflict("A flow has one trigger: DELETE the current one first", "flowId")
    return present_trigger(trigger_rules.create(tx, principal, row, data, where=None))


def remove_trigger(tx: Tx, principal: Principal, flow_id: str, trigger_id: str) -> None:
    principal.require("triggers.write")
    load(tx, principal, flow_id)
    found = store.get_trigger(tx.conn, trigger_id)
    if found is None or found["flow_id"] != flow_id:
        raise NotFound(f"No trigger {trigger_id} on flow {flow_id}", "subscriptionId")
    store.delete_trigger(tx.conn, trigger_id)
