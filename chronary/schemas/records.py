"""Record shapes (`/connect/v1/records`): camelCase, as the Connect API names them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta

from chronary.schemas.common import Timestamp
from chronary.schemas.connect import Camel, CamelInput

Source = Literal["inbound", "poll", "import"]


class RecordExecution(Camel):
    execution_id: str
    flow_id: str | None  # None once the run was pruned
    status: str | None
    replay: bool


class Record(Camel):
    id: str
    object: Literal["record"]
    provider_type: str
    resource_type: str
    source: Source
    connection_id: str | None
    dedup_key: str | None
    received_at: Timestamp
    size: int
    payload: Any
    executions: list[RecordExecution]


class RecordList(Camel):
    data: list[Record]
    total: int
    page: int
    limit: int


class RecordKind(Camel):
    provider_type: str
    resource_type: str
    count: int
    first_seen: Timestamp
    last_seen: Timestamp


class RecordSummary(Camel):
    data: list[RecordKind]
    total: int


class RecordImport(CamelInput, kw_only=True):
    provider_type: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
    resource_type: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_.]{0,79}$")]
    format: Literal["json", "csv"] = "json"
    data: Any  # json: an array of objects; csv: the CSV text with a header row
    dedup_key: Annotated[str, Meta(min_length=1, max_length=200, description="A field naming each item once")] | None = None


class ImportError_(Camel):
    row: int
    message: str


class ImportResult(Camel):
    imported: int
    duplicates: int
    errors: list[ImportError_]
    record_ids: list[str]


class Replayed(Camel):
    record_id: str
    executions: list[str]
