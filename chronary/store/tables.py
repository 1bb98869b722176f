"""Connect tables storage (migration 0016): table definitions, rows (JSON) and their index cells.

A row's values are one JSON object in `table_rows.data`; every value of an indexed (non-json)
column is also a `table_cells` row, so lookups, filters, sorting and uniqueness go through
`table_cells_value` / `table_cells_unique`. The service keeps cells and data in step: it hands
each write the row's cells as (column, value, unique) triples.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import apsw

from chronary.store.rows import count, decode, insert, one, update

TABLE_JSON = ("columns",)
Cell = tuple[str, Any, bool]  # (column, indexed value, unique column)
IN_CHUNK = 500  # values per `IN (…)` (well under SQLite's bound-parameter limit)


def _path(column: str) -> str:
    """A JSON path naming one member (column names are identifiers: nothing to escape)."""
    return f'$."{column}"'


# --- tables --------------------------------------------------------------------------------------


def create_table(conn: apsw.Connection, row: dict[str, Any]) -> int:
    insert(conn, "data_tables", row, TABLE_JSON)
    return int(conn.last_insert_rowid())


def get_table(conn: apsw.Connection, org_id: str, slug: str) -> dict[str, Any] | None:
    return decode(one(conn, "SELECT * FROM data_tables WHERE org_id = ? AND slug = ?", (org_id, slug)), TABLE_JSON)


def slug_taken(conn: apsw.Connection, org_id: str, slug: str) -> bool:
    return one(conn, "SELECT 1 AS x FROM data_tables WHERE org_id = ? AND slug = ?", (org_id, slug)) is not None


def count_tables(conn: apsw.Connection, org_id: str) -> int:
    return count(conn, "SELECT count(*) AS n FROM data_tables WHERE org_id = ?", (org_id,))


def list_tables(conn: apsw.Connection, org_id: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    total = count_tables(conn, org_id)
    rows = conn.execute("SELECT * FROM data_tables WHERE org_id = ? ORDER BY slug LIMIT ? OFFSET ?", (org_id, limit, offset))
    return [decode(r, TABLE_JSON) for r in rows], total


def patch_table(conn: apsw.Connection, table_id: str, values: dict[str, Any]) -> None:
    update(conn, "data_tables", table_id, values, TABLE_JSON)


def add_row_count(conn: apsw.Connection, table_seq: int, delta: int) -> None:
    if delta:
        conn.execute("UPDATE data_tables SET row_count = row_count + ? WHERE seq = ?", (delta, table_seq))


def delete_table(conn: apsw.Connection, table_seq: int) -> None:
    conn.execute("DELETE FROM table_cells WHERE table_seq = ?", (table_seq,))
    conn.execute("DELETE FROM table_rows WHERE table_seq = ?", (table_seq,))
    conn.execute("DELETE FROM data_tables WHERE seq = ?", (table_seq,))


# --- columns -------------------------------------------------------------------------------------


def drop_column(conn: apsw.Connection, table_seq: int, column: str) -> None:
    """Forget a column's cells and remove its value from every row's data."""
    conn.execute("DELETE FROM table_cells WHERE table_seq = ? AND col = ?", (table_seq, column))
    conn.execute(
        "UPDATE table_rows SET data = json_remove(data, ?) WHERE table_seq = ? AND json_type(data, ?) IS NOT NULL",
        (_path(column), table_seq, _path(column)),
    )


def set_unique(conn: apsw.Connection, table_seq: int, column: str, unique: bool) -> None:
    conn.execute("UPDATE table_cells SET uniq = ? WHERE table_seq = ? AND col = ?", (int(unique), table_seq, column))


def duplicate(conn: apsw.Connection, table_seq: int, column: str) -> tuple[Any, list[str]] | None:
    """A value of the column that two rows share, with (two of) those rows' ids."""
    found = one(
        conn,
        """SELECT value FROM table_cells WHERE table_seq = ? AND col = ?
           GROUP BY value HAVING count(*) > 1 LIMIT 1""",
        (table_seq, column),
    )
    if found is None:
        return None
    rows = conn.execute(
        """SELECT r.id FROM table_cells c JOIN table_rows r ON r.seq = c.row_seq
           WHERE c.table_seq = ? AND c.col = ? AND c.value = ? ORDER BY r.seq LIMIT 2""",
        (table_seq, column, found["value"]),
    )
    return found["value"], [r["id"] for r in rows]


def row_without(conn: apsw.Connection, table_seq: int, column: str) -> str | None:
    """The id of a row with no value in the column (json columns included: read from data)."""
    found = one(
        conn,
        "SELECT id FROM table_rows WHERE table_seq = ? AND json_type(data, ?) IS NULL ORDER BY seq LIMIT 1",
        (table_seq, _path(column)),
    )
    return None if found is None else str(found["id"])


def any_row(conn: apsw.Connection, table_seq: int) -> str | None:
    found = one(conn, "SELECT id FROM table_rows WHERE table_seq = ? ORDER BY seq LIMIT 1", (table_seq,))
    return None if found is None else str(found["id"])


# --- rows ----------------------------------------------------------------------------------------


def _cells(conn: apsw.Connection, table_seq: int, row_seq: int, cells: Iterable[Cell]) -> None:
    conn.executemany(
        "INSERT INTO table_cells (row_seq, col, table_seq, value, uniq) VALUES (?, ?, ?, ?, ?)",
        [(row_seq, col, table_seq, value, int(uniq)) for col, value, uniq in cells],
    )


def insert_row(conn: apsw.Connection, table_seq: int, row_id: str, data: str, created_at: str, cells: Iterable[Cell]) -> int:
    conn.execute(
        "INSERT INTO table_rows (id, table_seq, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        (row_id, table_seq, data, created_at, created_at),
    )
    seq = int(conn.last_insert_rowid())
    _cells(conn, table_seq, seq, cells)
    return seq


def insert_rows(
    conn: apsw.Connection, table_seq: int, rows: Sequence[tuple[str, str, list[Cell]]], created_at: str
) -> list[int]:
    """Many rows at once, (row id, data JSON, cells) each: the bulk path of imports."""
    top = one(conn, "SELECT coalesce(max(seq), 0) AS n FROM table_rows")
    first = int(top["n"]) + 1 if top else 1  # the writer is serialized: nobody else takes these
    seqs = list(range(first, first + len(rows)))
    conn.executemany(
        "INSERT INTO table_rows (seq, id, table_seq, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        [(seq, row_id, table_seq, data, created_at, created_at) for seq, (row_id, data, _) in zip(seqs, rows, strict=True)],
    )
    conn.executemany(
        "INSERT INTO table_cells (row_seq, col, table_seq, value, uniq) VALUES (?, ?, ?, ?, ?)",
        [
            (seq, col, table_seq, value, int(uniq))
            for seq, (_, _, cells) in zip(seqs, rows, strict=True)
            for col, value, uniq in cells
        ],
    )
    return seqs


def update_row(
    conn: apsw.Connection, row_seq: int, table_seq: int, data: str, updated_at: str, cells: Iterable[Cell]
) -> None:
    conn.execute("UPDATE table_rows SET data = ?, updated_at = ? WHERE seq = ?", (data, updated_at, row_seq))
    conn.execute("DELETE FROM table_cells WHERE row_seq = ?", (row_seq,))
    _cells(conn, table_seq, row_seq, cells)


def delete_rows(conn: apsw.Connection, row_seqs: Sequence[int]) -> None:
    for start in range(0, len(row_seqs), IN_CHUNK):
        chunk = list(row_seqs[start : start + IN_CHUNK])
        marks = ", ".join("?" * len(chunk))
        conn.execute(f"DELETE FROM table_cells WHERE row_seq IN ({marks})", chunk)
        conn.execute(f"DELETE FROM table_rows WHERE seq IN ({marks})", chunk)


def get_row(conn: apsw.Connection, table_seq: int, row_id: str) -> dict[str, Any] | None:
    return one(conn, "SELECT * FROM table_rows WHERE id = ? AND table_seq = ?", (row_id, table_seq))


def find_rows(
    conn: apsw.Connection, table_seq: int, column: str, value: Any, limit: int | None = None
) -> list[dict[str, Any]]:
    """Rows whose column holds `value` (through the value index), oldest first."""
    sql = """SELECT r.* FROM table_cells c JOIN table_rows r ON r.seq = c.row_seq
             WHERE c.table_seq = ? AND c.col = ? AND c.value = ? ORDER BY c.row_seq"""
    params: list[Any] = [table_seq, column, value]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return list(conn.execute(sql, params))


def holders(conn: apsw.Connection, table_seq: int, column: str, values: Sequence[Any]) -> dict[Any, str]:
    """Which row (id) already holds each of `values` in the column (unique columns: one each)."""
    found: dict[Any, str] = {}
    for start in range(0, len(values), IN_CHUNK):
        chunk = list(values[start : start + IN_CHUNK])
        marks = ", ".join("?" * len(chunk))
        rows = conn.execute(
            f"""SELECT c.value AS value, r.id AS id FROM table_cells c JOIN table_rows r ON r.seq = c.row_seq
                WHERE c.table_seq = ? AND c.col = ? AND c.value IN ({marks})""",
            [table_seq, column, *chunk],
        )
        for r in rows:
            found.setdefault(r["value"], r["id"])
    return found


def list_rows(
    conn: apsw.Connection,
    table_seq: int,
    filters: Sequence[tuple[str, Any]],
    sort: tuple[str, bool] | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """A page of rows: `filters` (column, value) all hold (each through the value index);
    `sort` (column, descending) orders by the column's value — descending reverses the whole
    order, ties newest first — with rows that have no value last (in creation order); without
    `sort`, creation order."""
    where = ["r.table_seq = ?"]
    params: list[Any] = [table_seq]
    for column, value in filters:
        where.append("r.seq IN (SELECT row_seq FROM table_cells WHERE table_seq = ? AND col = ? AND value = ?)")
        params.extend([table_seq, column, value])
    clause = " AND ".join(where)
    total = count(conn, f"SELECT count(*) AS n FROM table_rows r WHERE {clause}", params)
    if sort is None:
        sql = f"SELECT r.* FROM table_rows r WHERE {clause} ORDER BY r.seq LIMIT ? OFFSET ?"
        return list(conn.execute(sql, [*params, limit, offset])), total
    column, desc = sort
    direction = "DESC" if desc else "ASC"
    if filters:  # the filtered rows, sorted (filters usually leave few)
        sql = f"""SELECT r.* FROM table_rows r
                  LEFT JOIN table_cells s ON s.row_seq = r.seq AND s.col = ?
                  WHERE {clause}
                  ORDER BY s.value IS NULL, s.value {direction}, CASE WHEN s.value IS NULL THEN r.seq END,
                           r.seq {direction}
                  LIMIT ? OFFSET ?"""
        return list(conn.execute(sql, [column, *params, limit, offset])), total
    # the whole table: walk the value index in order (no sort), then the rows without a value
    valued = count(conn, "SELECT count(*) AS n FROM table_cells WHERE table_seq = ? AND col = ?", (table_seq, column))
    rows: list[dict[str, Any]] = []
    if offset < valued:
        rows = list(
            conn.execute(
                f"""SELECT r.* FROM table_cells s JOIN table_rows r ON r.seq = s.row_seq
                    WHERE s.table_seq = ? AND s.col = ?
                    ORDER BY s.value {direction}, s.row_seq {direction} LIMIT ? OFFSET ?""",
                (table_seq, column, limit, offset),
            )
        )
    if len(rows) < limit:
        rows.extend(
            conn.execute(
                """SELECT r.* FROM table_rows r WHERE r.table_seq = ?
                   AND NOT EXISTS (SELECT 1 FROM table_cells c WHERE c.row_seq = r.seq AND c.col = ?)
                   ORDER BY r.seq LIMIT ? OFFSET ?""",
                (table_seq, column, limit - len(rows), max(0, offset - valued)),
            )
        )
    return rows, total


def rows_after(conn: apsw.Connection, table_seq: int, after_seq: int, limit: int) -> list[dict[str, Any]]:
    """The next rows in creation order after `after_seq` (keyset paging for exports)."""
    return list(
        conn.execute(
            "SELECT * FROM table_rows WHERE table_seq = ? AND seq > ? ORDER BY seq LIMIT ?", (table_seq, after_seq, limit)
        )
    )
