"""Automation shapes (`/connect/v1/flows`, executions, task history, templates): camelCase."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from chronary.schemas.common import Timestamp
from chronary.schemas.connect import Camel, CamelInput

StepId = Annotated[
    str, Meta(pattern=r"^[a-z][a-z0-9_]{0,39}$", description="Names the step in templates: steps.<id>.output")
]
Template = Annotated[str, Meta(max_length=20_000)]
Condition = Annotated[
    str, Meta(min_length=1, max_length=4000, description="A Jinja expression, e.g. trigger.event.status == 'confirmed'")
]
FlowStatus = Literal["enabled", "disabled"]
TriggerKind = Literal["event", "webhook", "schedule", "poll"]
ExecutionStatus = Literal["queued", "running", "waiting", "succeeded", "failed", "cancelled"]
Retries = Annotated[int, Meta(ge=0, le=5, description="Retries of transient failures (429, 5xx, timeouts), with backoff")]


class StepBase(CamelInput, tag_field="type", kw_only=True):
    id: StepId
    name: Annotated[str, Meta(max_length=200)] | None = None


class ActionStep(StepBase, tag="action", kw_only=True):
    """Run a catalogue action (any provider's); inputs are templates."""

    provider_type: Annotated[str, Meta(min_length=1, max_length=40)]
    action: Annotated[str, Meta(min_length=1, max_length=80)]
    connection_id: str | None = None
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    retries: Retries = 2


class FilterStep(StepBase, tag="filter", kw_only=True):
    """Stop the run (status succeeded, the step `stopped`) unless the condition holds."""

    condition: Condition


class BranchStep(StepBase, tag="branch", kw_only=True):
    """Run `then` when the condition holds, else `else`; both may be empty."""

    condition: Condition
    then: Annotated[list[Step], Meta(max_length=50)] = msgspec.field(default_factory=list)
    otherwise: Annotated[list[Step], Meta(max_length=50)] = msgspec.field(default_factory=list, name="else")


class DelayStep(StepBase, tag="delay", kw_only=True):
    """Wait (durably: the run sleeps in the database and survives restarts)."""

    seconds: Annotated[int, Meta(ge=1, le=90 * 86400)] | None = None
    until: Template | None = None  # a template rendering to an ISO 8601 instant


class HttpStep(StepBase, tag="http.request", kw_only=True):
    """One HTTP request to any URL (guarded like webhooks); sends Idempotency-Key: <execution>/<step>."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: Template
    headers: dict[str, Template] = msgspec.field(default_factory=dict)
    body: Any = None
    retries: Retries = 2


TableSlug = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_-]{0,62}$", description="The table's slug")]
ColumnName = Annotated[str, Meta(min_length=1, max_length=64)]


class TableInsertStep(StepBase, tag="table.insert", kw_only=True):
    """Add a row; values are templates (strings are converted to the column's type)."""

    table: TableSlug
    values: dict[str, Any]


class TableUpsertStep(StepBase, tag="table.upsert", kw_only=True):
    """Insert or update the row whose `column` (default: the key column) has the given value."""

    table: TableSlug
    values: dict[str, Any]
    column: ColumnName | None = None


class TableLookupStep(StepBase, tag="table.lookup", kw_only=True):
    """Find the row whose `column` equals `value`; output {found, row}."""

    table: TableSlug
    column: ColumnName
    value: Any


class TableDeleteStep(StepBase, tag="table.delete", kw_only=True):
    """Delete the row `rowId`, or every row whose `column` equals `value`; output {deleted}."""

    table: TableSlug
    row_id: Template | None = None
    column: ColumnName | None = None
    value: Any = None


class RecordToTableStep(StepBase, tag="record.to_table", kw_only=True):
    """Map a record's fields into a row: `mapping` is column → template over `record` (the
    record, its `payload`) and the usual context; upserted by `upsertColumn` when given."""

    table: TableSlug
    record_id: Template = "{{ trigger.object.id }}"
    mapping: dict[str, Template]
    upsert_column: ColumnName | None = None


TABLE_STEPS = (TableInsertStep, TableUpsertStep, TableLookupStep, TableDeleteStep, RecordToTableStep)

Step = (
    ActionStep
    | FilterStep
    | BranchStep
    | DelayStep
    | HttpStep
    | TableInsertStep
    | TableUpsertStep
    | TableLookupStep
    | TableDeleteStep
    | RecordToTableStep
)


class TriggerCreate(CamelInput, kw_only=True):
    provider_type: Annotated[str, Meta(min_length=1, max_length=40)]
    trigger_name: Annotated[str, Meta(min_length=1, max_length=80)]
    kind: TriggerKind
    connection_id: str | None = None
    config: dict[str, Any] = msgspec.field(default_factory=dict)


class FlowCreate(CamelInput, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    description: Annotated[str, Meta(max_length=2000)] | None = None
    status: FlowStatus = "enabled"
    trigger: TriggerCreate | None = None
    steps: Annotated[list[Step], Meta(min_length=1, max_length=50)]
    concurrency: Annotated[int, Meta(ge=1, le=50)] | None = None


class FlowUpdate(CamelInput, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=200)] | UnsetType = UNSET
    description: Annotated[str, Meta(max_length=2000)] | None | UnsetType = UNSET
    status: FlowStatus | UnsetType = UNSET
    steps: Annotated[list[Step], Meta(min_length=1, max_length=50)] | UnsetType = UNSET
    concurrency: Annotated[int, Meta(ge=1, le=50)] | None | UnsetType = UNSET


class Trigger(Camel):
    id: str
    flow_id: str
    provider_type: str
    trigger_name: str
    kind: TriggerKind
    connection_id: str | None
    config: dict[str, Any]
    next_run_at: Timestamp | None
    last_error: str | None  # a poll that failed last time says why
    created_at: Timestamp


class TriggerList(Camel):
    data: list[Trigger]
    total: int


class Flow(Camel):
    id: str
    object: Literal["flow"]
    name: str
    description: str | None
    status: FlowStatus
    trigger: Trigger | None
    steps: list[dict[str, Any]]
    concurrency: int | None
    template: str | None
    created_at: Timestamp
    updated_at: Timestamp


class FlowList(Camel):
    data: list[Flow]
    total: int
    limit: int
    offset: int


class Execution(Camel):
    id: str
    object: Literal["execution"]
    flow_id: str
    trigger_id: str | None
    status: ExecutionStatus
    mode: Literal["trigger", "test", "replay"]
    replay_of: str | None
    trigger_data: Any
    error: str | None
    error_step: str | None
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    duration_ms: int | None


class ExecutionList(Camel):
    data: list[Execution]
    total: int
    limit: int
    offset: int


class ExecutionStep(Camel):
    path: str
    step_id: str
    type: str
    status: str
    input: Any
    output: Any
    error: str | None
    attempts: int
    started_at: Timestamp | None
    finished_at: Timestamp | None
    duration_ms: int | None


class ExecutionStepList(Camel):
    data: list[ExecutionStep]
    total: int


class FlowTest(CamelInput, kw_only=True):
    trigger_data: dict[str, Any] = msgspec.field(default_factory=dict)
    wait: Annotated[bool, Meta(description="Answer when the run finished (up to 30 s) instead of at once")] = True


class TemplateInput(Camel):
    name: str
    description: str
    default: str | None  # None: the clone must give it


class FlowTemplate(Camel):
    slug: str
    name: str
    description: str
    trigger: dict[str, Any]
    steps: list[dict[str, Any]]
    needs: list[str]  # the providers whose connections it uses
    inputs: list[TemplateInput]  # what `POST …/{slug}/clone` takes in `inputs`


class FlowTemplateList(Camel):
    data: list[FlowTemplate]
    total: int


class TemplateClone(CamelInput, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    trigger_connection_id: str | None = None
    connections: dict[str, str] = msgspec.field(
        default_factory=dict, name="connections"
    )  # providerType → connectionId for the template's steps
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)  # values for the template's {{ input.* }}
    status: FlowStatus = "enabled"
