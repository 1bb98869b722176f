"""`/connect/v1/tables`: user-defined tables and their rows (services/tables.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

import msgspec
from litestar import Controller, MediaType, Request, Response, delete, get, patch, post
from litestar.params import Parameter
from litestar.response import Stream

from chronary.api._common import ERRORS, Limit, Offset, RuntimeDep
from chronary.api._errors import request_id_of
from chronary.errors import NotFound, ValidationError
from chronary.runtime import Runtime
from chronary.schemas.tables import (
    ExportFormat,
    ImportRequest,
    ImportResult,
    RowUpsert,
    RowWrite,
    Table,
    TableCreate,
    TableList,
    TableRow,
    TableRowList,
    TableUpdate,
    Upserted,
)
from chronary.services import tables
from chronary.services.context import Ctx, Principal

SlugParam = Annotated[str, Parameter(max_length=63)]
FILTER_HELP = (
    "Filters: `filter[<column>]=<value>` (repeatable for different columns; all must hold; equality, the value "
    "written as in CSV: numbers, true/false, ISO 8601 timestamps). Sort: `sort=<column>` or `sort=-<column>` "
    "(descending; rows without a value last), then creation order. Paging: limit (1-200, default 50), offset."
)


def _row(found: dict[str, Any]) -> TableRow:
    return msgspec.convert(found, TableRow)


def _filters(request: Request[Any, Any, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in request.query_params.multi_items():
        if not key.startswith("filter"):
            continue
        if not (key.startswith("filter[") and key.endswith("]") and len(key) > len("filter[]")):
            raise ValidationError(f"{key}: filters are written filter[<column>]=<value>", key)
        column = key[len("filter[") : -1]
        if any(column == c for c, _ in out):
            raise ValidationError(f"{key}: one value per column", key)
        out.append((column, value))
    return out


def _rejected(exc: tables.ImportRejected, request: Request[Any, Any, Any]) -> Response[Any]:
    """The error envelope, with every bad row listed (error.errors) and how many there were."""
    body = {
        "error": {
            "type": exc.type,
            "message": exc.message,
            "param": exc.param,
            "request_id": request_id_of(request.scope),
            "errors": msgspec.to_builtins(exc.errors),
            "error_count": exc.total,
        }
    }
    return Response(content=body, status_code=400, media_type=MediaType.JSON)


async def _export(runtime: Runtime, principal: Principal, slug: str, fmt: str, columns: list[str]) -> AsyncIterator[bytes]:
    yield (tables.csv_header(columns) if fmt == "csv" else "[").encode()
    after, first = 0, True
    while True:
        pieces, last = await runtime.db.read(
            partial(tables.export_chunk, principal=principal, slug=slug, fmt=fmt, after=after)
        )
        if last is None:
            break
        if fmt == "csv":
            yield "".join(pieces).encode()
        else:
            yield (("\n" if first else ",\n") + ",\n".join(pieces)).encode()
        first, after = False, last
    if fmt == "json":
        yield b"\n]\n"


class TableController(Controller):
    path = "/tables"
    tags = ["connect: tables"]

    @get("/", summary="List the org's tables", responses=ERRORS)
    async def list_tables(self, ctx: Ctx, runtime: RuntimeDep, limit: Limit = 50, offset: Offset = 0) -> TableList:
        page = await runtime.db.read(lambda tx: tables.list_tables(tx, ctx.principal, limit, offset))
        return TableList(data=page.items, total=page.total, limit=page.limit, offset=page.offset)

    @post(
        "/",
        summary="Create a table: typed columns and a key column",
        description=(
            "Column types: text, number, boolean, datetime (answered in UTC ISO 8601), json (not indexed: cannot be "
            "unique, matched or sorted on). `keyColumn` (default: the first column) is always unique and required; "
            "upserts and lookups use it by default. Over max_tables: 429 rate_limited."
        ),
        responses=ERRORS,
    )
    async def create_table(self, data: TableCreate, ctx: Ctx, runtime: RuntimeDep) -> Table:
        limit = runtime.settings.max_tables
        return await runtime.db.write(lambda tx: tables.create_table(tx, ctx.principal, data, max_tables=limit))

    @get("/{slug:str}", summary="One table with its columns and row count", responses=ERRORS)
    async def get_table(self, slug: SlugParam, ctx: Ctx, runtime: RuntimeDep) -> Table:
        return await runtime.db.read(lambda tx: tables.get_table(tx, ctx.principal, slug))

    @patch(
        "/{slug:str}",
        summary="Rename, describe, drop/add/change columns, choose another key column",
        description=(
            "Applied in this order, all or nothing: name, slug, description; dropColumns (their values are removed "
            "from every row); addColumns; updateColumns (required/unique: 409 naming the column and a row that "
            "breaks it); keyColumn."
        ),
        responses=ERRORS,
    )
    async def update_table(self, slug: SlugParam, data: TableUpdate, ctx: Ctx, runtime: RuntimeDep) -> Table:
        return await runtime.db.write(lambda tx: tables.update_table(tx, ctx.principal, slug, data))

    @delete("/{slug:str}", summary="Delete a table with all its rows", responses=ERRORS)
    async def delete_table(self, slug: SlugParam, ctx: Ctx, runtime: RuntimeDep) -> None:
        await runtime.db.write(lambda tx: tables.delete_table(tx, ctx.principal, slug))

    # -- rows ------------------------------------------------------------------------------------
    @get("/{slug:str}/rows", summary="Rows: filter by column values, sort, page", description=FILTER_HELP, responses=ERRORS)
    async def list_rows(
        self,
        slug: SlugParam,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        runtime: RuntimeDep,
        sort: Annotated[str | None, Parameter(max_length=65, description="column or -column")] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> TableRowList:
        filters = _filters(request)
        page = await runtime.db.read(lambda tx: tables.list_rows(tx, ctx.principal, slug, filters, sort, limit, offset))
        return TableRowList(data=[_row(r) for r in page.items], total=page.total, limit=page.limit, offset=page.offset)

    @post(
        "/{slug:str}/rows",
        summary="Add a row",
        description="Unique violations answer 409 naming the column, the value and the row that holds it.",
        responses=ERRORS,
    )
    async def create_row(self, slug: SlugParam, data: RowWrite, ctx: Ctx, runtime: RuntimeDep) -> TableRow:
        cap = runtime.settings.max_rows_per_table
        return _row(await runtime.db.write(lambda tx: tables.insert_row(tx, ctx.principal, slug, data.values, max_rows=cap)))

    @post(
        "/{slug:str}/rows/upsert",
        status_code=200,
        summary="Update the row matching on a unique column (default the key column), or add it",
        description="The given values replace the row's (others are kept; null clears one). `created` says which.",
        responses=ERRORS,
    )
    async def upsert_row(self, slug: SlugParam, data: RowUpsert, ctx: Ctx, runtime: RuntimeDep) -> Upserted:
        cap = runtime.settings.max_rows_per_table
        row, created = await runtime.db.write(
            lambda tx: tables.upsert_row(tx, ctx.principal, slug, data.values, data.column, max_rows=cap)
        )
        return Upserted(row=_row(row), created=created)

    @get(
        "/{slug:str}/rows/lookup",
        summary="The first row whose column equals the value (404 when none)",
        description="`value` is written as in CSV (numbers, true/false, ISO 8601 timestamps).",
        responses=ERRORS,
    )
    async def lookup_row(
        self,
        slug: SlugParam,
        ctx: Ctx,
        runtime: RuntimeDep,
        column: Annotated[str | None, Parameter(max_length=64, description="the column to match")] = None,
        value: Annotated[str | None, Parameter(max_length=10_000, description="the value it must hold")] = None,
    ) -> TableRow:
        if column is None or value is None:
            missing = "column" if column is None else "value"
            raise ValidationError(f"{missing} is required (…/rows/lookup?column=<column>&value=<value>)", missing)
        found = await runtime.db.read(lambda tx: tables.lookup_row(tx, ctx.principal, slug, column, value))
        if found is None:
            raise NotFound(f"No row in table {slug!r} with {column} = {value!r}", "value")
        return _row(found)

    @get("/{slug:str}/rows/{row_id:str}", summary="One row", responses=ERRORS)
    async def get_row(self, slug: SlugParam, row_id: str, ctx: Ctx, runtime: RuntimeDep) -> TableRow:
        return _row(await runtime.db.read(lambda tx: tables.get_row(tx, ctx.principal, slug, row_id)))

    @patch("/{slug:str}/rows/{row_id:str}", summary="Change some of a row's values (null clears one)", responses=ERRORS)
    async def update_row(self, slug: SlugParam, row_id: str, data: RowWrite, ctx: Ctx, runtime: RuntimeDep) -> TableRow:
        return _row(await runtime.db.write(lambda tx: tables.update_row(tx, ctx.principal, slug, row_id, data.values)))

    @delete("/{slug:str}/rows/{row_id:str}", summary="Delete a row", responses=ERRORS)
    async def delete_row(self, slug: SlugParam, row_id: str, ctx: Ctx, runtime: RuntimeDep) -> None:
        await runtime.db.write(lambda tx: tables.delete_row(tx, ctx.principal, slug, row_id))

    # -- import and export -----------------------------------------------------------------------
    @post(
        "/{slug:str}/import",
        status_code=200,
        summary="Add many rows from JSON (rows: [{…}]) or CSV (csv: text with a header line)",
        description=(
            "CSV cells are parsed per column type (numbers; true/false/1/0/yes/no; ISO 8601 timestamps; json "
            "columns hold JSON text; an empty cell is no value). mode all_or_nothing (default): any bad row answers "
            "400 with error.errors listing every bad row (row, column, param rows[7].amount, message; CSV: line) "
            "and nothing is written; mode skip: the good rows are written and the bad ones listed in `errors`. "
            "Unique columns are checked against the table and within the import. The body is at most 1 MiB: "
            "split bigger files. One table.row_created change per row."
        ),
        responses=ERRORS,
    )
    async def import_rows(
        self, slug: SlugParam, data: ImportRequest, request: Request[Any, Any, Any], ctx: Ctx, runtime: RuntimeDep
    ) -> Response[ImportResult]:
        cap = runtime.settings.max_rows_per_table
        try:
            result = await runtime.db.write(lambda tx: tables.import_rows(tx, ctx.principal, slug, data, max_rows=cap))
        except tables.ImportRejected as exc:
            return _rejected(exc, request)
        return Response(content=result, status_code=200)

    @get(
        "/{slug:str}/export",
        summary="Every row as CSV (header = the columns) or JSON (an array of column → value objects), streamed",
        description="Both formats import again unchanged (POST …/import with csv or rows). Rows in creation order.",
        responses=ERRORS,
    )
    async def export_rows(self, slug: SlugParam, ctx: Ctx, runtime: RuntimeDep, format: ExportFormat = "csv") -> Stream:
        columns = await runtime.db.read(lambda tx: tables.export_columns(tx, ctx.principal, slug))
        media = "text/csv" if format == "csv" else "application/json"
        return Stream(
            _export(runtime, ctx.principal, slug, format, columns),
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="{slug}.{format}"'},
        )


ROUTES = [TableController]
