"""`chronary db` maintenance with sqlite-utils.

Runs only in the CLI's own process, never inside `serve`: sqlite-utils uses the stdlib sqlite3,
and two SQLite libraries in one process do not share locks (see STACK-NOTES). Across processes
the mix is safe, which is what makes `db backup` of a live server consistent.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import sqlite_utils

SECRET_COLUMNS = {"api_keys": {"hash"}}


def _open(path: Path) -> sqlite_utils.Database:
    return sqlite_utils.Database(path)


def info(path: Path) -> dict[str, Any]:
    db = _open(path)
    try:
        version = 0
        if "schema_migrations" in db.table_names():
            version = db.execute("SELECT count(*) FROM schema_migrations").fetchone()[0]
        tables = {name: db[name].count for name in sorted(db.table_names()) if not name.startswith("sqlite_")}
        return {"path": str(path), "schema_version": version, "size_bytes": path.stat().st_size, "tables": tables}
    finally:
        db.close()


def export(path: Path, out_dir: Path, fmt: str, tables: list[str] | None) -> list[Path]:
    db = _open(path)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        names = [t for t in db.table_names() if not t.startswith("sqlite_")]
        unknown = set(tables or []) - set(names)
        if unknown:
            raise SystemExit(f"no such table(s): {', '.join(sorted(unknown))}")
        for name in tables or names:
            hidden = SECRET_COLUMNS.get(name, set())
            columns = [c.name for c in db[name].columns if c.name not in hidden]
            rows = (dict(zip(columns, r, strict=True)) for r in db.execute(f"SELECT {', '.join(columns)} FROM [{name}]"))
            target = out_dir / f"{name}.{fmt}"
            with target.open("w", encoding="utf-8", newline="") as fh:
                if fmt == "json":
                    json.dump(list(rows), fh, ensure_ascii=False, indent=1)
                else:
                    writer = csv.DictWriter(fh, fieldnames=columns)
                    writer.writeheader()
                    writer.writerows(rows)
            written.append(target)
    finally:
        db.close()
    return written


def backup(path: Path, target: Path) -> None:
    if target.exists():
        raise SystemExit(f"{target} already exists; refusing to overwrite")
    source = _open(path)
    dest = sqlite_utils.Database(target)
    try:
        source.conn.backup(dest.conn)
    finally:
        dest.close()
        source.close()
