-- Connect tables (issue 18): user-defined tables that flows and people read and write.
-- Plain SQL readable by SQLite 3.40. Times are iso_ms text.
--
-- A table's columns live in its definition (JSON); each row keeps its values as one JSON object
-- (data). Every value of a non-json column is also a cell (table_cells: one per row and column),
-- so lookups, filters, sorting, upserts and uniqueness use an index instead of scanning rows:
--   table_cells_value   (table_seq, col, value)              equality, ranges, ORDER BY
--   table_cells_unique  (table_seq, col, value) WHERE uniq=1  unique columns (the key among them)
-- Cell values keep their SQLite type: text columns TEXT, numbers INTEGER or REAL (they compare
-- numerically), booleans 0/1, datetimes REAL unix seconds (the row's JSON holds the UTC ISO text).
-- json columns have no cells. Rows and tables point at each other by integer seq (small cells).

CREATE TABLE data_tables (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,            -- tbl_
    org_id TEXT NOT NULL REFERENCES orgs(id),
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    columns TEXT NOT NULL,              -- JSON: [{name, type, required, unique}]
    key_column TEXT NOT NULL,
    row_count INTEGER NOT NULL DEFAULT 0,
    created_by TEXT,                    -- the key that made it
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL            -- the definition's last change (not row writes)
);
CREATE UNIQUE INDEX data_tables_slug ON data_tables(org_id, slug);

CREATE TABLE table_rows (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,            -- row_
    table_seq INTEGER NOT NULL REFERENCES data_tables(seq) ON DELETE CASCADE,
    data TEXT NOT NULL,                 -- JSON object: column -> value (absent: no value)
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX table_rows_table ON table_rows(table_seq, seq);

CREATE TABLE table_cells (
    row_seq INTEGER NOT NULL REFERENCES table_rows(seq) ON DELETE CASCADE,
    col TEXT NOT NULL,
    table_seq INTEGER NOT NULL,
    value NOT NULL,                     -- no declared type: no affinity, values keep their type
    uniq INTEGER NOT NULL DEFAULT 0,    -- 1: the column is unique (table_cells_unique holds it)
    PRIMARY KEY (row_seq, col)
) WITHOUT ROWID;
CREATE INDEX table_cells_value ON table_cells(table_seq, col, value);
CREATE UNIQUE INDEX table_cells_unique ON table_cells(table_seq, col, value) WHERE uniq = 1;
