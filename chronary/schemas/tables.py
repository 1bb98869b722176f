"""Connect tables (`/connect/v1/tables`): definitions, rows, imports. camelCase on the wire."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, UnsetType

from chronary.schemas.common import Timestamp
from chronary.schemas.connect import Camel, CamelInput

ColumnType = Literal["text", "number", "boolean", "datetime", "json"]
ImportMode = Literal["all_or_nothing", "skip"]
ExportFormat = Literal["csv", "json"]

Slug = Annotated[
    str,
    Meta(
        pattern=r"^[a-z][a-z0-9_-]{0,62}$",
        description="lower-case letters, digits, _ and -; starts with a letter; unique in the org",
    ),
]
ColumnName = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
        description="letters, digits and _ (not starting with a digit); unique in the table, ignoring case",
    ),
]
TableName = Annotated[str, Meta(min_length=1, max_length=200)]
Description = Annotated[str, Meta(max_length=2000)]
MAX_COLUMNS = 100
Values = Annotated[
    dict[str, Any],
    Meta(
        max_length=MAX_COLUMNS,
        description="column name → value (text: string, number, boolean, datetime: ISO 8601 with offset, json: any); "
        "null or absent: no value",
    ),
]


class ColumnInput(CamelInput, kw_only=True):
    name: ColumnName
    type: ColumnType
    required: bool = False
    unique: bool = False  # not for json columns


class ColumnChange(CamelInput, kw_only=True):
    name: ColumnName
    required: bool | UnsetType = UNSET
    unique: bool | UnsetType = UNSET


class TableCreate(CamelInput, kw_only=True):
    name: TableName
    slug: Slug
    columns: Annotated[list[ColumnInput], Meta(min_length=1, max_length=MAX_COLUMNS)]
    key_column: ColumnName | None = None  # default: the first column; always unique and required
    description: Description | None = None


class TableUpdate(CamelInput, kw_only=True):
    name: TableName | UnsetType = UNSET
    slug: Slug | UnsetType = UNSET
    description: Description | None | UnsetType = UNSET
    key_column: ColumnName | UnsetType = UNSET
    add_columns: Annotated[list[ColumnInput], Meta(max_length=MAX_COLUMNS)] | UnsetType = UNSET
    drop_columns: Annotated[list[ColumnName], Meta(max_length=MAX_COLUMNS)] | UnsetType = UNSET
    update_columns: Annotated[list[ColumnChange], Meta(max_length=MAX_COLUMNS)] | UnsetType = UNSET


class Column(Camel):
    name: str
    type: ColumnType
    required: bool
    unique: bool


class Table(Camel):
    id: str
    object: Literal["table"]
    name: str
    slug: str
    description: str | None
    columns: list[Column]
    key_column: str
    row_count: int
    created_at: Timestamp
    updated_at: Timestamp


class TableList(Camel):
    data: list[Table]
    total: int
    limit: int
    offset: int


class RowWrite(CamelInput, kw_only=True):
    values: Values


class RowUpsert(CamelInput, kw_only=True):
    values: Values
    column: ColumnName | None = None  # the unique column to match on; default: the table's keyColumn


class TableRow(Camel):
    id: str
    object: Literal["table_row"]
    table: str  # the table's slug
    values: dict[str, Any]  # every column, null where the row has no value
    created_at: Timestamp
    updated_at: Timestamp


class TableRowList(Camel):
    data: list[TableRow]
    total: int
    limit: int
    offset: int


class Upserted(Camel):
    row: TableRow
    created: bool


class ImportRequest(CamelInput, kw_only=True):
    rows: Annotated[list[dict[str, Any]], Meta(description="JSON: an array of objects (column → value)")] | None = None
    csv: Annotated[str, Meta(description="CSV text; the first line names the columns")] | None = None
    mode: ImportMode = "all_or_nothing"


class RowError(Camel):
    row: int  # 0-based index among the data rows (the JSON array's index; CSV: after the header)
    column: str | None
    param: str  # rows[7].amount
    message: str
    line: int | None = None  # CSV: the line the row starts on (the header is line 1)


class ImportResult(Camel):
    imported: int
    skipped: int
    errors: list[RowError]
