"""`/connect/v1/flows` (+ triggers, executions, replay, test), `/task-history`, `/flow-templates`."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.params import Parameter

from chronary.api._common import ERRORS, Limit, Offset, RuntimeDep
from chronary.schemas.automation import (
    Execution,
    ExecutionList,
    ExecutionStatus,
    ExecutionStepList,
    Flow,
    FlowCreate,
    FlowList,
    FlowStatus,
    FlowTemplate,
    FlowTemplateList,
    FlowTest,
    FlowUpdate,
    TemplateClone,
    Trigger,
    TriggerCreate,
    TriggerList,
)
from chronary.services.automation import flows, history, runs, templates
from chronary.services.context import Ctx

FlowId = Annotated[str, Parameter(max_length=100)]


class FlowController(Controller):
    path = "/flows"
    tags = ["connect: flows"]

    @post(
        "/",
        summary="Create a flow: one trigger and an ordered list of steps",
        description=(
            "Steps: action (any catalogue action), filter, branch, delay, http.request. Inputs are templates "
            "(Jinja, sandboxed) over trigger, steps.<id>.output, flow, execution and now. Errors name the step "
            "and field (param steps[2].inputs.text)."
        ),
        responses=ERRORS,
    )
    async def create(self, data: FlowCreate, ctx: Ctx, runtime: RuntimeDep) -> Flow:
        return await runtime.db.write(lambda tx: flows.create(tx, ctx.principal, data))

    @get("/", summary="List flows", responses=ERRORS)
    async def list_flows(
        self, ctx: Ctx, runtime: RuntimeDep, status: FlowStatus | None = None, limit: Limit = 50, offset: Offset = 0
    ) -> FlowList:
        page = await runtime.db.read(lambda tx: flows.list_(tx, ctx.principal, status, limit, offset))
        return FlowList(data=page.items, total=page.total, limit=page.limit, offset=page.offset)

    @get("/{flow_id:str}", summary="Get a flow", responses=ERRORS)
    async def get_flow(self, flow_id: str, ctx: Ctx, runtime: RuntimeDep) -> Flow:
        return await runtime.db.read(lambda tx: flows.get(tx, ctx.principal, flow_id))

    @patch("/{flow_id:str}", summary="Change a flow (name, description, status, steps, concurrency)", responses=ERRORS)
    async def update(self, flow_id: str, data: FlowUpdate, ctx: Ctx, runtime: RuntimeDep) -> Flow:
        return await runtime.db.write(lambda tx: flows.update(tx, ctx.principal, flow_id, data))

    @delete("/{flow_id:str}", summary="Delete a flow with its trigger and execution history", responses=ERRORS)
    async def remove(self, flow_id: str, ctx: Ctx, runtime: RuntimeDep) -> None:
        await runtime.db.write(lambda tx: flows.delete(tx, ctx.principal, flow_id))

    # -- triggers --------------------------------------------------------------------------------
    @get("/{flow_id:str}/triggers", summary="The flow's trigger subscription", responses=ERRORS)
    async def list_triggers(self, flow_id: str, ctx: Ctx, runtime: RuntimeDep) -> TriggerList:
        return await runtime.db.read(lambda tx: flows.list_triggers(tx, ctx.principal, flow_id))

    @post(
        "/{flow_id:str}/triggers",
        summary="Subscribe the flow to its trigger",
        description=(
            "kind event (providerType chronary: any webhook change type, or event.starting with config.minutes; "
            "filters agentId, calendarId, where, condition), webhook (a provider's inbound events), schedule "
            "(chronary + cron: config.cron, config.timezone) or poll (a provider action run every "
            "config.intervalSeconds; config.inputs, itemsPath, key, updated)."
        ),
        responses=ERRORS,
    )
    async def add_trigger(self, flow_id: str, data: TriggerCreate, ctx: Ctx, runtime: RuntimeDep) -> Trigger:
        return await runtime.db.write(lambda tx: flows.add_trigger(tx, ctx.principal, flow_id, data))

    @delete("/{flow_id:str}/triggers/{subscription_id:str}", summary="Remove the flow's trigger", responses=ERRORS)
    async def remove_trigger(self, flow_id: str, subscription_id: str, ctx: Ctx, runtime: RuntimeDep) -> None:
        await runtime.db.write(lambda tx: flows.remove_trigger(tx, ctx.principal, flow_id, subscription_id))

    # -- executions ------------------------------------------------------------------------------
    @get("/{flow_id:str}/executions", summary="The flow's executions, newest first", responses=ERRORS)
    async def executions(
        self,
        flow_id: str,
        ctx: Ctx,
        runtime: RuntimeDep,
        status: ExecutionStatus | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> ExecutionList:
        page = await runtime.db.read(lambda tx: history.list_for_flow(tx, ctx.principal, flow_id, status, limit, offset))
        return ExecutionList(data=page.items, total=page.total, limit=page.limit, offset=page.offset)

    @get("/{flow_id:str}/executions/{execution_id:str}", summary="One execution", responses=ERRORS)
    async def execution(self, flow_id: str, execution_id: str, ctx: Ctx, runtime: RuntimeDep) -> Execution:
        return await runtime.db.read(lambda tx: history.get(tx, ctx.principal, flow_id, execution_id))

    @get(
        "/{flow_id:str}/executions/{execution_id:str}/steps",
        summary="Each step of an execution: input, output, error, attempts, duration",
        responses=ERRORS,
    )
    async def execution_steps(self, flow_id: str, execution_id: str, ctx: Ctx, runtime: RuntimeDep) -> ExecutionStepList:
        return await runtime.db.read(lambda tx: history.steps(tx, ctx.principal, flow_id, execution_id))

    @post(
        "/{flow_id:str}/executions/{execution_id:str}/replay",
        status_code=202,
        summary="Run the flow again with the same trigger data (a new execution, mode replay)",
        responses=ERRORS,
    )
    async def replay(self, flow_id: str, execution_id: str, ctx: Ctx, runtime: RuntimeDep) -> Execution:
        cap = runtime.settings.record_payload_max_bytes
        return await runtime.db.write(lambda tx: history.replay(tx, ctx.principal, flow_id, execution_id, cap))

    @post(
        "/{flow_id:str}/test",
        status_code=200,
        summary="Run the flow now with the given trigger data (mode test) and answer the execution",
        description="With wait (the default) the answer comes when the run finished or parked at a delay (≤ 60 s).",
        responses=ERRORS,
    )
    async def test(self, flow_id: str, data: FlowTest, ctx: Ctx, runtime: RuntimeDep) -> Execution:
        cap = runtime.settings.record_payload_max_bytes
        execution_id = await runtime.db.write(lambda tx: history.test(tx, ctx.principal, flow_id, data.trigger_data, cap))
        if data.wait:
            await runs.run_now(runtime, execution_id)
        return await runtime.db.read(lambda tx: history.get(tx, ctx.principal, flow_id, execution_id))


class TaskHistoryController(Controller):
    path = "/task-history"
    tags = ["connect: flows"]

    @get("/", summary="Executions across flows, newest first", responses=ERRORS)
    async def task_history(
        self,
        ctx: Ctx,
        runtime: RuntimeDep,
        page: Annotated[int, Parameter(ge=1, le=100_000, description="1-based page")] = 1,
        limit: Limit = 50,
        status: ExecutionStatus | None = None,
        flow_id: Annotated[str | None, Parameter(query="flowId", max_length=100)] = None,
    ) -> ExecutionList:
        offset = (page - 1) * limit
        found = await runtime.db.read(lambda tx: history.task_history(tx, ctx.principal, flow_id, status, limit, offset))
        return ExecutionList(data=found.items, total=found.total, limit=found.limit, offset=found.offset)


class FlowTemplateController(Controller):
    path = "/flow-templates"
    tags = ["connect: flows"]

    @get("/", summary="Ready-made flows to clone", responses=ERRORS)
    async def list_templates(self, ctx: Ctx) -> FlowTemplateList:
        ctx.principal.require("templates.view")
        found = templates.all_templates()
        return FlowTemplateList(data=found, total=len(found))

    @get("/{slug:str}", summary="One template", responses=ERRORS)
    async def get_template(self, slug: str, ctx: Ctx) -> FlowTemplate:
        ctx.principal.require("templates.view")
        return templates.get(slug)

    @post("/{slug:str}/clone", summary="Make a flow from a template", status_code=201, responses=ERRORS)
    async def clone(self, slug: str, data: TemplateClone, ctx: Ctx, runtime: RuntimeDep) -> Flow:
        max_tables = runtime.settings.max_tables
        return await runtime.db.write(lambda tx: templates.clone(tx, ctx.principal, slug, data, max_tables))


ROUTES = [FlowController, TaskHistoryController, FlowTemplateController]
