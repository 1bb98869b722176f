"""What the side-effect steps do: a catalogue action, an HTTP request, a table write.

The runner (`runs`) logs each step before calling in here and decides on retries: these raise
`Transient` for failures worth another attempt (429, 5xx, timeouts, unreachable) and
`Permanent` for the rest.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from chronary.errors import ChronaryError
from chronary.outbound import OutboundError, fetch
from chronary.schemas.automation import (
    ActionStep,
    RecordToTableStep,
    Step,
    TableDeleteStep,
    TableInsertStep,
    TableLookupStep,
    TableUpsertStep,
)
from chronary.services import record_shapes, tables
from chronary.services.connect import calls
from chronary.services.context import Ctx, Principal
from chronary.store.db import Tx

if TYPE_CHECKING:
    from chronary.runtime import Runtime

TRANSIENT = frozenset({408, 425, 429, 500, 502, 503, 504})


async def table_inputs(
    runtime: Runtime, principal: Principal, step: Step, context: dict[str, Any], where: str
) -> dict[str, Any]:
    """The step's rendered inputs; record.to_table renders its mapping over the record itself."""
    from chronary.services.automation import templating  # jinja2, imported when first used

    ctx = context
    if isinstance(step, (TableInsertStep, TableUpsertStep)):
        values = templating.render(step.values, ctx, f"{where}.values")
        return {"values": values, "column": getattr(step, "column", None)}
    if isinstance(step, TableLookupStep):
        return {"column": step.column, "value": templating.render(step.value, ctx, f"{where}.value")}
    if isinstance(step, TableDeleteStep):
        return {
            "row_id": templating.render(step.row_id, ctx, f"{where}.rowId"),
            "column": step.column,
            "value": templating.render(step.value, ctx, f"{where}.value"),
        }
    assert isinstance(step, RecordToTableStep)
    record_id = templating.render(step.record_id, ctx, f"{where}.recordId")
    if not isinstance(record_id, str):
        raise templating.TemplateError(f"{where}.recordId", f"must render to a record id, not {record_id!r}")
    try:
        record = await runtime.db.read(lambda tx: record_shapes.as_dict(tx, principal, record_id))
    except ChronaryError as exc:
        raise templating.TemplateError(f"{where}.recordId", str(exc)) from None
    values = templating.render(step.mapping, {**ctx, "record": record}, f"{where}.mapping")
    return {"record_id": record_id, "values": values, "column": step.upsert_column}


async def table(runtime: Runtime, principal: Principal, step: Step, inputs: dict[str, Any]) -> Any:
    """Table steps run in one write transaction through the tables service (its checks and changes)."""
    max_rows = runtime.settings.max_rows_per_table

    def apply(tx: Tx) -> Any:
        if isinstance(step, TableInsertStep):
            return tables.insert_row(tx, principal, step.table, _object(inputs["values"]), lenient=True, max_rows=max_rows)
        if isinstance(step, (TableUpsertStep, RecordToTableStep)):
            values = _object(inputs["values"])
            if isinstance(step, RecordToTableStep) and inputs["column"] is None:
                return tables.insert_row(tx, principal, step.table, values, lenient=True, max_rows=max_rows)
            row, created = tables.upsert_row(
                tx, principal, step.table, values, inputs["column"], lenient=True, max_rows=max_rows
            )
            return {**row, "created": created}
        if isinstance(step, TableLookupStep):
            found = tables.lookup_row(tx, principal, step.table, step.column, inputs["value"])
            return {"found": found is not None, "row": found}
        assert isinstance(step, TableDeleteStep)
        if inputs["row_id"] is not None:
            tables.delete_row(tx, principal, step.table, str(inputs["row_id"]))
            return {"deleted": 1}
        assert step.column is not None
        return {"deleted": tables.delete_where(tx, principal, step.table, step.column, inputs["value"])}

    try:
        return await runtime.db.write(apply)
    except ChronaryError as exc:  # a table refusal (a bad value, a unique clash, the row limit) is final
        raise Permanent(f"{exc.type}: {exc}") from None


def _object(values: Any) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise Permanent("values must render to an object of column: value")
    return values


class Transient(Exception):
    """A failure worth retrying (429, 5xx, timeouts, unreachable)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class Permanent(Exception):
    """A failure that retrying cannot fix; it fails the step."""


async def action(runtime: Runtime, principal: Principal, step: ActionStep, inputs: Any) -> Any:
    if not isinstance(inputs, dict):
        raise Permanent("the inputs must render to an object")
    ctx = Ctx(principal=principal, base_url=runtime.settings.base_url)
    try:
        result = await calls.run_action(runtime, ctx, step.provider_type, step.action, inputs, step.connection_id)
    except ChronaryError as exc:
        if exc.status in TRANSIENT:
            raise Transient(f"{exc.type}: {exc}", getattr(exc, "retry_after", None)) from None
        raise Permanent(f"{exc.type}: {exc}") from None
    return result.output


async def http(runtime: Runtime, idempotency_key: str, inputs: dict[str, Any]) -> Any:
    url = inputs["url"]
    if not isinstance(url, str):
        raise Permanent("url must render to a string")
    headers = {str(k): str(v) for k, v in (inputs["headers"] or {}).items()}
    headers.setdefault("Idempotency-Key", idempotency_key)
    body = inputs["body"]
    content: bytes | None = None
    if body is not None:
        if isinstance(body, str):
            content = body.encode()
        else:
            content = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
    settings = runtime.settings
    try:
        resp = await fetch(
            url,
            settings,
            method=inputs["method"],
            headers=headers,
            content=content,
            timeout=float(settings.connect_proxy_timeout_seconds),
            max_bytes=settings.connect_proxy_max_bytes,
            max_redirects=0,
        )
    except OutboundError as exc:
        if exc.retryable:
            raise Transient(f"request failed: {exc.reason}") from None
        raise Permanent(f"request refused: {exc.reason}") from None
    text = resp.body.decode("utf-8", "replace")
    try:
        parsed: Any = json.loads(text) if "json" in resp.headers.get("content-type", "") else text
    except ValueError:
        parsed = text
    output = {"status": resp.status, "headers": dict(resp.headers), "body": parsed}
    if resp.status in TRANSIENT:
        raise Transient(f"HTTP {resp.status} from {url.split('?')[0]}")
    if resp.status >= 400:
        raise Permanent(f"HTTP {resp.status} from {url.split('?')[0]}")
    return output
