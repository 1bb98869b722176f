"""Connect tables: user-defined tables in the same SQLite file that flows and people read and write.

A table (tbl_, addressed by its slug, unique in the org) has typed columns — text, number,
boolean, datetime (UTC ISO 8601), json — each optionally required and unique, and a key column
(unique and required) that upserts and lookups use by default. Rows (row_) hold one value per
column; every value is checked against its column's type, and errors name the row and column
(`values.amount: expected a number`, in imports `rows[7].amount`).

Storage (store/tables.py): a row's values are one JSON object; every non-json value is also an
index cell (table_seq, column, value), so lookups, filters, sorting, upserts and uniqueness use
indexes and stay fast at 100,000 rows. Uniqueness is checked before writing (409 naming the
column, the value and the row holding it) and guaranteed by a unique partial index. All writes
run inside the caller's write transaction, which the one writer connection serializes: an upsert
reads the index and writes in that one transaction, so two concurrent upserts of one key make
exactly one row.

Every row create, update and delete records a change (`table.row_created`, `table.row_updated`
with `previous` = {values: old values of the changed columns}, `table.row_deleted`) through
`changes.record`, imports one per row. Schema changes (dropping a column) and deleting a table
record no row changes.

The functions flows call (`insert_row`, `upsert_row`, `lookup_row`, `delete_row`,
`delete_where`, also `get_row`, `update_row`) answer a row in its API shape:
`{"id", "object": "table_row", "table": <slug>, "values": {every column: value or None},
"createdAt", "updatedAt"}`. With `lenient=True` they also take strings for number, boolean and
datetime columns and numbers for text columns (what rendered templates give), parsed as CSV is.

Plan limits of the hosted product are settings here: `max_tables` per org and
`max_rows_per_table`; reaching one answers 429 `rate_limited` without Retry-After (waiting does
not help: delete something or raise the limit).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import apsw

from chronary import ids
from chronary.config import Settings
from chronary.errors import ChronaryError, Conflict, NotFound, PayloadTooLarge, ValidationError
from chronary.schemas.common import set_fields
from chronary.schemas.tables import (
    MAX_COLUMNS,
    Column,
    ColumnInput,
    ImportRequest,
    ImportResult,
    RowError,
    Table,
    TableCreate,
    TableUpdate,
)
from chronary.services import changes
from chronary.services.changes import Change
from chronary.services.context import Page, Principal
from chronary.store import tables as store
from chronary.store.db import Tx
from chronary.store.rows import dumps
from chronary.timeutil import iso, iso_ms

ROW_CREATED, ROW_UPDATED, ROW_DELETED = "table.row_created", "table.row_updated", "table.row_deleted"


def _setting_default(name: str) -> int:
    return int(next(f.default for f in dataclasses.fields(Settings) if f.name == name))  # type: ignore[arg-type]


DEFAULT_MAX_ROWS = _setting_default("max_rows_per_table")  # what the functions flows call enforce unless told
DEFAULT_MAX_TABLES = _setting_default("max_tables")
ROW_MAX_BYTES = 64 * 1024  # one row's values as JSON
INT_LIMIT = 2**63  # SQLite integers are 64-bit
ERRORS_LISTED = 1000  # an import answers at most this many row errors (and says how many there were)
TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no"})


class LimitReached(ChronaryError):
    """A configured plan limit was reached: 429 rate_limited, no Retry-After (waiting does not help)."""

    status = 429
    type = "rate_limited"


class ImportRejected(ValidationError):
    """An all-or-nothing import with bad rows: nothing was written; `errors` lists them."""

    def __init__(self, errors: list[RowError], total: int, rows: int) -> None:
        shown = "; ".join(e.message for e in errors[:5])
        more = f"; and {total - 5} more" if total > 5 else ""
        super().__init__(f"{total} of {rows} rows are bad, nothing was imported: {shown}{more}", errors[0].param)
        self.errors = errors
        self.total = total


class BadValue(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- the table definition ------------------------------------------------------------------------


@dataclass(frozen=True)
class Col:
    name: str
    type: str
    required: bool
    unique: bool

    @property
    def indexed(self) -> bool:
        return self.type != "json"


@dataclass(frozen=True)
class Def:
    """A stored table as the services use it."""

    row: dict[str, Any]
    columns: tuple[Col, ...]

    @property
    def seq(self) -> int:
        return int(self.row["seq"])

    @property
    def id(self) -> str:
        return str(self.row["id"])

    @property
    def slug(self) -> str:
        return str(self.row["slug"])

    @property
    def key(self) -> str:
        return str(self.row["key_column"])

    def col(self, name: str) -> Col | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None

    def names(self) -> str:
        return ", ".join(c.name for c in self.columns)


def _cols(raw: list[dict[str, Any]]) -> tuple[Col, ...]:
    return tuple(Col(c["name"], c["type"], bool(c["required"]), bool(c["unique"])) for c in raw)


def _raw_cols(cols: Sequence[Col]) -> list[dict[str, Any]]:
    return [{"name": c.name, "type": c.type, "required": c.required, "unique": c.unique} for c in cols]


def _load(tx: Tx, principal: Principal, slug: str) -> Def:
    row = store.get_table(tx.conn, principal.org_id, slug) if isinstance(slug, str) else None
    if row is None:
        raise NotFound(f"No table {slug!r}", "slug")
    return Def(row, _cols(row["columns"]))


def present_table(row: dict[str, Any]) -> Table:
    return Table(
        id=row["id"],
        object="table",
        name=row["name"],
        slug=row["slug"],
        description=row["description"],
        columns=[Column(name=c["name"], type=c["type"], required=c["required"], unique=c["unique"]) for c in row["columns"]],
        key_column=row["key_column"],
        row_count=row["row_count"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


# --- values --------------------------------------------------------------------------------------


def _datetime(value: str) -> str:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise BadValue("expected an ISO 8601 timestamp with an offset or Z") from None
    if parsed.tzinfo is None:
        raise BadValue("expected an ISO 8601 timestamp with an offset or Z (this one has none)")
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:
        raise BadValue("the timestamp is out of range") from None
    if utc.microsecond // 1000:
        return iso_ms(utc)
    out = iso(utc)
    assert out is not None
    return out


def _number_text(text: str) -> int | float:
    stripped = text.strip()
    try:
        return int(stripped)
    except ValueError:
        pass
    try:
        return float(stripped)
    except ValueError:
        raise BadValue("expected a number") from None


def normalize(col: Col, value: Any, lenient: bool = False) -> Any:
    """The stored (JSON) form of `value` in the column, or None for no value; BadValue names the
    problem. `lenient`: strings for number/boolean/datetime and numbers for text are accepted."""
    if value is None:
        return None
    kind = col.type
    if kind == "text":
        if isinstance(value, str):
            return value
        if lenient and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise BadValue("expected a string")
    if kind == "number":
        if isinstance(value, str) and lenient:
            value = _number_text(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadValue("expected a number")
        if isinstance(value, int) and not -INT_LIMIT <= value < INT_LIMIT:
            raise BadValue("the number is too large (integers are 64-bit)")
        if isinstance(value, float) and not math.isfinite(value):
            raise BadValue("expected a finite number")
        return value
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if lenient and isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
        if lenient and isinstance(value, int) and value in (0, 1):
            return value == 1
        raise BadValue("expected true or false")
    if kind == "datetime":
        if not isinstance(value, str):
            raise BadValue("expected an ISO 8601 timestamp with an offset or Z")
        return _datetime(value)
    return value  # json: any JSON value


def from_text(col: Col, text: str) -> Any:
    """A CSV cell (or a query string value) as the column's value; "" is no value."""
    if text == "":
        return None
    if col.type == "json":
        try:
            return json.loads(text)
        except ValueError:
            raise BadValue("expected JSON text") from None
    return normalize(col, text, lenient=True)


def to_text(col: Col, value: Any) -> str:
    """A value as a CSV cell (what `from_text` reads back)."""
    if value is None:
        return ""
    if col.type == "json":
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def indexed(col: Col, value: Any) -> Any:
    """A stored value as its index cell: numbers as they are, booleans 0/1, datetimes unix seconds."""
    if col.type == "boolean":
        return int(value)
    if col.type == "datetime":
        return datetime.fromisoformat(value).timestamp()
    return value


def _query_value(col: Col, value: Any, param: str) -> Any:
    """A value to match (lookups, filters, upsert and delete keys) as its index cell."""
    if not col.indexed:
        raise ValidationError(f"{param}: json columns cannot be matched on ({col.name!r})", param)
    try:
        if isinstance(value, str) and col.type != "text":
            normal = from_text(col, value)
        else:
            normal = normalize(col, value, lenient=True)
    except BadValue as exc:
        raise ValidationError(f"{param}: {exc.message}", param) from None
    if normal is None:
        raise ValidationError(f"{param}: a value to match is needed", param)
    return indexed(col, normal)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_values(
    d: Def, values: Mapping[str, Any], where: str, lenient: bool
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Normalized values (None kept: "clear it") and the (column, message) errors found."""
    out: dict[str, Any] = {}
    errors: list[tuple[str, str]] = []
    for name, value in values.items():
        col = d.col(name)
        if col is None:
            errors.append((name, f"{where}.{name}: no such column (the table has {d.names()})"))
            continue
        try:
            out[name] = normalize(col, value, lenient)
        except BadValue as exc:
            errors.append((name, f"{where}.{name}: {exc.message}"))
    return out, errors


def _missing(d: Def, merged: Mapping[str, Any], where: str) -> list[tuple[str, str]]:
    return [
        (c.name, f"{where}.{c.name}: a value is required") for c in d.columns if c.required and merged.get(c.name) is None
    ]


def _stored(d: Def, merged: Mapping[str, Any]) -> dict[str, Any]:
    """The row's JSON object: columns in table order, no-value columns left out."""
    return {c.name: merged[c.name] for c in d.columns if merged.get(c.name) is not None}


def _cells(d: Def, data: Mapping[str, Any]) -> list[store.Cell]:
    return [(c.name, indexed(c, data[c.name]), c.unique) for c in d.columns if c.indexed and data.get(c.name) is not None]


def _encode(data: Mapping[str, Any], param: str) -> str:
    text = dumps(data)
    assert text is not None
    size = len(text.encode())
    if size > ROW_MAX_BYTES:
        raise PayloadTooLarge(f"{param}: the row is {size} bytes as JSON; a row holds at most {ROW_MAX_BYTES}", param)
    return text


def _raise_first(errors: list[tuple[str, str]], where: str) -> None:
    if errors:
        column, message = errors[0]
        raise ValidationError(message, f"{where}.{column}")


# --- rows: shapes and changes --------------------------------------------------------------------


def _values(d: Def, row: Mapping[str, Any]) -> dict[str, Any]:
    data = json.loads(row["data"])
    return {c.name: data.get(c.name) for c in d.columns}


def present_row(d: Def, row: Mapping[str, Any]) -> dict[str, Any]:
    """The API shape of a row (what the row endpoints and the flow-step functions answer)."""
    return {
        "id": row["id"],
        "object": "table_row",
        "table": d.slug,
        "values": _values(d, row),
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def _change_object(api_row: Mapping[str, Any]) -> dict[str, Any]:
    """The change log's (webhook payload's) object: snake_case like every webhook."""
    return {
        "id": api_row["id"],
        "object": "table_row",
        "table": api_row["table"],
        "values": api_row["values"],
        "created_at": api_row["createdAt"],
        "updated_at": api_row["updatedAt"],
    }


def _record(
    tx: Tx, principal: Principal, kind: str, api_row: Mapping[str, Any], previous: dict[str, Any] | None = None
) -> None:
    changes.record(tx, Change(kind, _change_object(api_row), previous=previous, agent_id=principal.agent_id))


def _check_unique(tx: Tx, d: Def, data: Mapping[str, Any], where: str, own_seq: int | None) -> None:
    for c in d.columns:
        if c.unique and data.get(c.name) is not None:
            (found,) = store.find_rows(tx.conn, d.seq, c.name, indexed(c, data[c.name]), limit=1) or (None,)
            if found is not None and found["seq"] != own_seq:
                raise Conflict(
                    f"{where}.{c.name}: {_show(data[c.name])} is already in row {found['id']} ({c.name} is unique)",
                    f"{where}.{c.name}",
                )


def _row_limit(d: Def, adding: int, max_rows: int) -> None:
    if d.row["row_count"] + adding > max_rows:
        raise LimitReached(
            f"Table {d.slug!r} holds {d.row['row_count']} rows; max_rows_per_table allows {max_rows} "
            f"(CHRONARY_MAX_ROWS_PER_TABLE): delete rows or raise the limit",
            "values",
        )


def _constraint(exc: apsw.ConstraintError) -> Conflict:
    return Conflict(f"A unique column already holds one of these values ({exc})", "values")


def _insert(tx: Tx, principal: Principal, d: Def, normal: Mapping[str, Any], where: str, max_rows: int) -> dict[str, Any]:
    _raise_first(_missing(d, normal, where), where)
    data = _stored(d, normal)
    _check_unique(tx, d, data, where, None)
    _row_limit(d, 1, max_rows)
    now = iso_ms(tx.now)
    row_id = ids.new_id("row")
    text = _encode(data, where)
    try:
        store.insert_row(tx.conn, d.seq, row_id, text, now, _cells(d, data))
    except apsw.ConstraintError as exc:
        raise _constraint(exc) from None
    store.add_row_count(tx.conn, d.seq, 1)
    api_row = present_row(d, {"id": row_id, "data": text, "created_at": now, "updated_at": now})
    _record(tx, principal, ROW_CREATED, api_row)
    return api_row


def _update(
    tx: Tx, principal: Principal, d: Def, row: Mapping[str, Any], normal: Mapping[str, Any], where: str
) -> dict[str, Any]:
    before = present_row(d, row)
    merged = {**before["values"], **normal}
    _raise_first(_missing(d, merged, where), where)
    data = _stored(d, merged)
    _check_unique(tx, d, data, where, row["seq"])
    after_values = {c.name: data.get(c.name) for c in d.columns}
    changed = {k: before["values"][k] for k in after_values if after_values[k] != before["values"][k]}
    if not changed:
        return before  # nothing to write, nothing to announce
    now = iso_ms(tx.now)
    text = _encode(data, where)
    try:
        store.update_row(tx.conn, row["seq"], d.seq, text, now, _cells(d, data))
    except apsw.ConstraintError as exc:
        raise _constraint(exc) from None
    api_row = {**before, "values": after_values, "updatedAt": now}
    _record(tx, principal, ROW_UPDATED, api_row, {"values": changed})
    return api_row


def _delete(tx: Tx, principal: Principal, d: Def, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        return
    store.delete_rows(tx.conn, [r["seq"] for r in rows])
    store.add_row_count(tx.conn, d.seq, -len(rows))
    for r in rows:
        _record(tx, principal, ROW_DELETED, present_row(d, r))


def _row(tx: Tx, d: Def, row_id: str) -> dict[str, Any]:
    found = store.get_row(tx.conn, d.seq, row_id) if ids.has_prefix(row_id, "row") else None
    if found is None:
        raise NotFound(f"No row {row_id!r} in table {d.slug!r}", "rowId")
    return found


def _match_column(d: Def, column: str | None, param: str, unique: bool) -> Col:
    name = column or d.key
    col = d.col(name)
    if col is None:
        raise ValidationError(f"{param}: no column {name!r} (the table has {d.names()})", param)
    if unique and not col.unique:
        raise ValidationError(
            f"{param}: {name!r} is not a unique column; upserts match on a unique column (the key is {d.key!r})", param
        )
    return col


# --- rows: what flows and the row endpoints call -------------------------------------------------


def insert_row(
    tx: Tx,
    principal: Principal,
    slug: str,
    values: Mapping[str, Any],
    *,
    lenient: bool = False,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> dict[str, Any]:
    """Add a row (values checked; required and unique enforced); answers the row."""
    principal.require("tables.write")
    d = _load(tx, principal, slug)
    normal, errors = check_values(d, values, "values", lenient)
    _raise_first(errors, "values")
    return _insert(tx, principal, d, normal, "values", max_rows)


def upsert_row(
    tx: Tx,
    principal: Principal,
    slug: str,
    values: Mapping[str, Any],
    column: str | None = None,
    *,
    lenient: bool = False,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> tuple[dict[str, Any], bool]:
    """Update the row whose `column` (a unique column; default the key) equals values[column]
    with the given values (others kept; null clears), or add one. Answers (row, created)."""
    principal.require("tables.write")
    d = _load(tx, principal, slug)
    col = _match_column(d, column, "column", unique=True)
    normal, errors = check_values(d, values, "values", lenient)
    _raise_first(errors, "values")
    if normal.get(col.name) is None:
        raise ValidationError(
            f"values.{col.name}: the upsert matches on {col.name!r} and needs its value", f"values.{col.name}"
        )
    (found,) = store.find_rows(tx.conn, d.seq, col.name, indexed(col, normal[col.name]), limit=1) or (None,)
    if found is None:
        return _insert(tx, principal, d, normal, "values", max_rows), True
    return _update(tx, principal, d, found, normal, "values"), False


def lookup_row(tx: Tx, principal: Principal, slug: str, column: str, value: Any) -> dict[str, Any] | None:
    """The first (oldest) row whose column equals `value` (typed, or text parsed for the column)."""
    principal.require("tables.view")
    d = _load(tx, principal, slug)
    col = _match_column(d, column, "column", unique=False)
    (found,) = store.find_rows(tx.conn, d.seq, col.name, _query_value(col, value, "value"), limit=1) or (None,)
    return None if found is None else present_row(d, found)


def get_row(tx: Tx, principal: Principal, slug: str, row_id: str) -> dict[str, Any]:
    principal.require("tables.view")
    d = _load(tx, principal, slug)
    return present_row(d, _row(tx, d, row_id))


def update_row(
    tx: Tx, principal: Principal, slug: str, row_id: str, values: Mapping[str, Any], *, lenient: bool = False
) -> dict[str, Any]:
    """Change the given values of a row (others kept; null clears)."""
    principal.require("tables.write")
    d = _load(tx, principal, slug)
    row = _row(tx, d, row_id)
    normal, errors = check_values(d, values, "values", lenient)
    _raise_first(errors, "values")
    return _update(tx, principal, d, row, normal, "values")


def delete_row(tx: Tx, principal: Principal, slug: str, row_id: str) -> None:
    principal.require("tables.write")
    d = _load(tx, principal, slug)
    _delete(tx, principal, d, [_row(tx, d, row_id)])


def delete_where(tx: Tx, principal: Principal, slug: str, column: str, value: Any) -> int:
    """Delete every row whose column equals `value`; answers how many."""
    principal.require("tables.write")
    d = _load(tx, principal, slug)
    col = _match_column(d, column, "column", unique=False)
    rows = store.find_rows(tx.conn, d.seq, col.name, _query_value(col, value, "value"))
    _delete(tx, principal, d, rows)
    return len(rows)


def list_rows(
    tx: Tx,
    principal: Principal,
    slug: str,
    filters: Sequence[tuple[str, str]],
    sort: str | None,
    limit: int,
    offset: int,
) -> Page[dict[str, Any]]:
    """Rows where every `filter[column]=value` holds (equality; the value is text parsed for the
    column), ordered by `sort` (`column` or `-column`; rows without a value last) then creation."""
    principal.require("tables.view")
    d = _load(tx, principal, slug)
    matched: list[tuple[str, Any]] = []
    for name, text in filters:
        param = f"filter[{name}]"
        col = d.col(name)
        if col is None:
            raise ValidationError(f"{param}: no column {name!r} (the table has {d.names()})", param)
        matched.append((name, _query_value(col, text, param)))
    order: tuple[str, bool] | None = None
    if sort:
        name = sort[1:] if sort.startswith("-") else sort
        col = d.col(name)
        if col is None:
            raise ValidationError(f"sort: no column {name!r} (the table has {d.names()})", "sort")
        if not col.indexed:
            raise ValidationError(f"sort: json columns cannot be sorted on ({name!r})", "sort")
        order = (name, sort.startswith("-"))
    rows, total = store.list_rows(tx.conn, d.seq, matched, order, limit, offset)
    return Page([present_row(d, r) for r in rows], total, limit, offset)


# --- tables --------------------------------------------------------------------------------------


def _column_problems(columns: Sequence[ColumnInput], taken: set[str], where: str) -> list[Col]:
    out: list[Col] = []
    for i, c in enumerate(columns):
        if c.name.lower() in taken:
            raise ValidationError(f"{where}[{i}].name: {c.name!r} is already a column", f"{where}[{i}].name")
        if c.unique and c.type == "json":
            raise ValidationError(f"{where}[{i}].unique: json columns cannot be unique", f"{where}[{i}].unique")
        taken.add(c.name.lower())
        out.append(Col(c.name, c.type, c.required, c.unique))
    return out


def create_table(tx: Tx, principal: Principal, data: TableCreate, *, max_tables: int = DEFAULT_MAX_TABLES) -> Table:
    principal.require("tables.write")
    cols = _column_problems(data.columns, set(), "columns")
    key = data.key_column or cols[0].name
    position = next((i for i, c in enumerate(cols) if c.name == key), None)
    if position is None:
        raise ValidationError(f"keyColumn: no column {key!r} among the columns", "keyColumn")
    if cols[position].type == "json":
        raise ValidationError("keyColumn: a json column cannot be the key", "keyColumn")
    cols[position] = dataclasses.replace(cols[position], required=True, unique=True)
    if store.slug_taken(tx.conn, principal.org_id, data.slug):
        raise Conflict(f"slug: a table {data.slug!r} exists already", "slug")
    existing = store.count_tables(tx.conn, principal.org_id)
    if existing >= max_tables:
        raise LimitReached(
            f"This org has {existing} tables; max_tables allows {max_tables} (CHRONARY_MAX_TABLES): "
            "delete a table or raise the limit",
            "slug",
        )
    now = iso_ms(tx.now)
    row: dict[str, Any] = {
        "id": ids.new_id("tbl"),
        "org_id": principal.org_id,
        "slug": data.slug,
        "name": data.name,
        "description": data.description,
        "columns": _raw_cols(cols),
        "key_column": key,
        "row_count": 0,
        "created_by": principal.key_id,
        "created_at": now,
        "updated_at": now,
    }
    store.create_table(tx.conn, row)
    return present_table(row)


def get_table(tx: Tx, principal: Principal, slug: str) -> Table:
    principal.require("tables.view")
    return present_table(_load(tx, principal, slug).row)


def list_tables(tx: Tx, principal: Principal, limit: int, offset: int) -> Page[Table]:
    principal.require("tables.view")
    rows, total = store.list_tables(tx.conn, principal.org_id, limit, offset)
    return Page([present_table(r) for r in rows], total, limit, offset)


def delete_table(tx: Tx, principal: Principal, slug: str) -> None:
    """Delete a table with all its rows (no table.row_deleted per row)."""
    principal.require("tables.write")
    store.delete_table(tx.conn, _load(tx, principal, slug).seq)


def _can_require(tx: Tx, d: Def, name: str, param: str) -> None:
    missing = store.row_without(tx.conn, d.seq, name)
    if missing is not None:
        raise Conflict(f"{param}: row {missing} has no value in {name!r}, so it cannot be required", param)


def _can_be_unique(tx: Tx, d: Def, name: str, param: str) -> None:
    dup = store.duplicate(tx.conn, d.seq, name)
    if dup is not None:
        value, rows = dup
        raise Conflict(
            f"{param}: rows {' and '.join(rows)} both hold {_show(value)} in {name!r}, so it cannot be unique", param
        )


def update_table(tx: Tx, principal: Principal, slug: str, data: TableUpdate) -> Table:
    """Rename, re-slug, describe; drop, add and change columns; choose another key column.
    Applied in that order, all or nothing; required/unique only when every row satisfies it."""
    principal.require("tables.write")
    d = _load(tx, principal, slug)
    given = set(set_fields(data))
    if not given:
        raise ValidationError(
            "PATCH needs at least one field (name, slug, description, keyColumn, addColumns, dropColumns, updateColumns)",
            None,
        )
    patch: dict[str, Any] = {}
    if "name" in given:
        patch["name"] = data.name
    if "description" in given:
        patch["description"] = data.description
    if "slug" in given and data.slug != d.slug:
        assert isinstance(data.slug, str)
        if store.slug_taken(tx.conn, principal.org_id, data.slug):
            raise Conflict(f"slug: a table {data.slug!r} exists already", "slug")
        patch["slug"] = data.slug
    key = data.key_column if isinstance(data.key_column, str) else d.key
    cols: list[Col] = list(d.columns)
    for i, name in enumerate(data.drop_columns if isinstance(data.drop_columns, list) else []):
        param = f"dropColumns[{i}]"
        found = next((c for c in cols if c.name == name), None)
        if found is None:
            raise ValidationError(f"{param}: no column {name!r} (the table has {', '.join(c.name for c in cols)})", param)
        if name == key:
            raise ValidationError(f"{param}: {name!r} is the key column; choose another keyColumn to drop it", param)
        cols.remove(found)
        store.drop_column(tx.conn, d.seq, name)
    added = _column_problems(
        data.add_columns if isinstance(data.add_columns, list) else [], {c.name.lower() for c in cols}, "addColumns"
    )
    for i, c in enumerate(added):
        if c.required:
            has_rows = store.any_row(tx.conn, d.seq)
            if has_rows is not None:
                param = f"addColumns[{i}].required"
                raise Conflict(
                    f"{param}: row {has_rows} has no value in the new column {c.name!r}, so it cannot be required", param
                )
    cols.extend(added)
    if len(cols) > MAX_COLUMNS:
        raise ValidationError(f"addColumns: a table has at most {MAX_COLUMNS} columns", "addColumns")
    d = Def(d.row, tuple(cols))
    for i, change in enumerate(data.update_columns if isinstance(data.update_columns, list) else []):
        where = f"updateColumns[{i}]"
        position = next((j for j, c in enumerate(cols) if c.name == change.name), None)
        if position is None:
            raise ValidationError(f"{where}.name: no column {change.name!r} (the table has {d.names()})", f"{where}.name")
        col = cols[position]
        required = col.required if not isinstance(change.required, bool) else change.required
        unique = col.unique if not isinstance(change.unique, bool) else change.unique
        if col.name == key and not (required and unique):
            field = "required" if not required else "unique"
            raise ValidationError(
                f"{where}.{field}: the key column {key!r} is always required and unique", f"{where}.{field}"
            )
        if unique and col.type == "json":
            raise ValidationError(f"{where}.unique: json columns cannot be unique", f"{where}.unique")
        if required and not col.required:
            _can_require(tx, d, col.name, f"{where}.required")
        if unique != col.unique:
            if unique:
                _can_be_unique(tx, d, col.name, f"{where}.unique")
            store.set_unique(tx.conn, d.seq, col.name, unique)
        cols[position] = dataclasses.replace(col, required=required, unique=unique)
        d = Def(d.row, tuple(cols))
    if key != d.key:
        position = next((j for j, c in enumerate(cols) if c.name == key), None)
        if position is None:
            raise ValidationError(f"keyColumn: no column {key!r} (the table has {d.names()})", "keyColumn")
        col = cols[position]
        if col.type == "json":
            raise ValidationError("keyColumn: a json column cannot be the key", "keyColumn")
        if not col.required:
            _can_require(tx, d, key, "keyColumn")
        if not col.unique:
            _can_be_unique(tx, d, key, "keyColumn")
            store.set_unique(tx.conn, d.seq, key, True)
        cols[position] = dataclasses.replace(col, required=True, unique=True)
        patch["key_column"] = key
    if tuple(cols) != _cols(d.row["columns"]):
        patch["columns"] = _raw_cols(cols)
    if patch:
        patch["updated_at"] = iso_ms(tx.now)
        store.patch_table(tx.conn, d.id, patch)
    reloaded = store.get_table(tx.conn, principal.org_id, patch.get("slug", d.slug))
    assert reloaded is not None
    return present_table(reloaded)


# --- import and export ---------------------------------------------------------------------------


@dataclass
class _Candidate:
    index: int
    line: int | None
    values: dict[str, Any]  # normalized
    errors: list[tuple[str | None, str]]


def _from_csv(d: Def, text: str) -> Iterator[_Candidate]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise ValidationError(f"csv: not readable as CSV ({exc})", "csv") from None
    header = [h.strip() for h in header]
    if header and header[0].startswith("\ufeff"):
        header[0] = header[0][1:]
    cols: list[Col] = []
    for name in header:
        col = d.col(name)
        if col is None:
            raise ValidationError(
                f"csv: the header names {name!r}, which is not a column (the table has {d.names()})", "csv"
            )
        if col in cols:
            raise ValidationError(f"csv: the header names {name!r} twice", "csv")
        cols.append(col)
    index = 0
    line = reader.line_num + 1
    try:
        for fields in reader:
            start, line = line, reader.line_num + 1
            if not fields:  # a blank line
                continue
            where = f"rows[{index}]"
            errors: list[tuple[str | None, str]] = []
            values: dict[str, Any] = {}
            if len(fields) != len(cols):
                errors.append((None, f"{where}: {len(fields)} fields, but the header names {len(cols)} (line {start})"))
            else:
                for col, cell in zip(cols, fields, strict=True):
                    try:
                        values[col.name] = from_text(col, cell)
                    except BadValue as exc:
                        errors.append((col.name, f"{where}.{col.name}: {exc.message}"))
            yield _Candidate(index, start, values, errors)
            index += 1
    except csv.Error as exc:
        raise ValidationError(f"csv: line {line} is not readable as CSV ({exc})", "csv") from None


def _from_json(d: Def, rows: list[dict[str, Any]]) -> Iterator[_Candidate]:
    for index, raw in enumerate(rows):
        normal, found = check_values(d, raw, f"rows[{index}]", lenient=False)
        yield _Candidate(index, None, normal, [(c, m) for c, m in found])


def import_rows(
    tx: Tx, principal: Principal, slug: str, data: ImportRequest, *, max_rows: int = DEFAULT_MAX_ROWS
) -> ImportResult:
    """Add many rows: a JSON array of objects (`rows`) or CSV text whose header names columns
    (`csv`; cells parsed per column type, empty = no value). `all_or_nothing` (default): any bad
    row → ImportRejected listing the bad rows, nothing written; `skip`: the good rows are written
    and the bad ones reported. One table.row_created change per row written."""
    principal.require("tables.write")
    d = _load(tx, principal, slug)
    if (data.rows is None) == (data.csv is None):
        raise ValidationError("Send either rows (a JSON array of objects) or csv (CSV text)", "rows")
    candidates = list(_from_csv(d, data.csv) if data.csv is not None else _from_json(d, data.rows or []))
    for cand in candidates:
        if not cand.errors:
            where = f"rows[{cand.index}]"
            cand.errors.extend(_missing(d, cand.values, where))
            cand.values = _stored(d, cand.values)
            if not cand.errors:
                size = len((dumps(cand.values) or "").encode())
                if size > ROW_MAX_BYTES:
                    cand.errors.append(
                        (None, f"{where}: the row is {size} bytes as JSON; a row holds at most {ROW_MAX_BYTES}")
                    )
    # unique columns: against the table, and against earlier good rows of this import
    unique = [c for c in d.columns if c.unique]
    held = {
        c.name: store.holders(
            tx.conn,
            d.seq,
            c.name,
            list({indexed(c, x.values[c.name]) for x in candidates if not x.errors and c.name in x.values}),
        )
        for c in unique
    }
    claimed: dict[str, dict[Any, int]] = {c.name: {} for c in unique}
    for cand in candidates:
        if cand.errors:
            continue
        where = f"rows[{cand.index}]"
        keys = {c.name: indexed(c, cand.values[c.name]) for c in unique if c.name in cand.values}
        for name, key in keys.items():
            shown = _show(cand.values[name])
            if key in held[name]:
                cand.errors.append((name, f"{where}.{name}: {shown} is already in row {held[name][key]} ({name} is unique)"))
            elif key in claimed[name]:
                cand.errors.append(
                    (name, f"{where}.{name}: {shown} is also in rows[{claimed[name][key]}] ({name} is unique)")
                )
        if not cand.errors:
            for name, key in keys.items():
                claimed[name][key] = cand.index
    bad = [cand for cand in candidates if cand.errors]
    good = [cand for cand in candidates if not cand.errors]
    listed = [
        RowError(
            row=cand.index,
            column=column,
            param=f"rows[{cand.index}]" + (f".{column}" if column else ""),
            message=message,
            line=cand.line,
        )
        for cand in bad
        for column, message in cand.errors
    ]
    if bad and data.mode == "all_or_nothing":
        raise ImportRejected(listed[:ERRORS_LISTED], len(listed), len(candidates))
    _row_limit(d, len(good), max_rows)
    now = iso_ms(tx.now)
    prepared = [(ids.new_id("row"), dumps(cand.values) or "{}", _cells(d, cand.values)) for cand in good]
    try:
        store.insert_rows(tx.conn, d.seq, prepared, now)
    except apsw.ConstraintError as exc:
        raise _constraint(exc) from None
    store.add_row_count(tx.conn, d.seq, len(prepared))
    for row_id, text, _ in prepared:
        _record(
            tx, principal, ROW_CREATED, present_row(d, {"id": row_id, "data": text, "created_at": now, "updated_at": now})
        )
    return ImportResult(imported=len(good), skipped=len(bad), errors=listed[:ERRORS_LISTED])


def export_columns(tx: Tx, principal: Principal, slug: str) -> list[str]:
    """The columns an export writes (checks the table and the permission before streaming)."""
    principal.require("tables.view")
    return [c.name for c in _load(tx, principal, slug).columns]


def export_chunk(
    tx: Tx, principal: Principal, slug: str, fmt: str, after: int, size: int = 1000
) -> tuple[list[str], int | None]:
    """The next `size` rows after row seq `after`, in creation order: CSV lines (with their line
    ends) or JSON texts of each row's values; answers (pieces, last seq, or None at the end)."""
    principal.require("tables.view")
    d = _load(tx, principal, slug)
    rows = store.rows_after(tx.conn, d.seq, after, size)
    if not rows:
        return [], None
    if fmt == "csv":
        pieces = []
        for r in rows:
            out = io.StringIO()
            values = json.loads(r["data"])
            csv.writer(out, lineterminator="\r\n").writerow([to_text(c, values.get(c.name)) for c in d.columns])
            pieces.append(out.getvalue())
    else:
        pieces = [json.dumps(_values(d, r), ensure_ascii=False, separators=(",", ":")) for r in rows]
    return pieces, int(rows[-1]["seq"])


def csv_header(columns: Sequence[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(columns)
    return out.getvalue()
