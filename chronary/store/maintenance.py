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

SECRET_COLUMNS = {"api_keys": {"hash"}, "feed_tokens": {"hash"}}


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
        # full-text indexes (virtual tables and their shadow tables) are derived data, rebuilt from
        # the tables they index: not exported
        virtual = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL TABLE%'")]
        names = [t for t in db.table_names() if not t.startswith("sqlite_") and not any(t.startswith(v) for v in virtual)]
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


def consumers(path: Path) -> list[dict[str, Any]]:
    """Every change-log consumer's cursor and how many changes it has not read yet."""
    db = _open(path)
    try:
        rows = db.execute(
            """SELECT consumer, seq, (SELECT count(*) FROM changes c WHERE c.seq > change_cursors.seq) AS behind
                 FROM change_cursors ORDER BY consumer"""
        ).fetchall()
        return [{"consumer": c, "seq": s, "behind": b} for c, s, b in rows]
    finally:
        db.close()


def drop_consumer(path: Path, consumer: str) -> bool:
    """Forget a retired consumer's cursor, so old changes can be pruned past it. A consumer that
    still runs simply starts again from the newest change the next time it opens."""
    db = _open(path)
    try:
        with db.conn:
            cursor = db.execute("DELETE FROM change_cursors WHERE consumer = ?", [consumer])
        return cursor.rowcount > 0
    finally:
        db.close()


def vacuum(path: Path) -> tuple[int, int]:
    """Rewrite the file compactly and switch it to incremental auto-vacuum, so the server hands
    pruned pages back from then on (databases made before that was the default). Run it with the
    server stopped: VACUUM needs the whole database for itself. Answers (bytes before, after)."""
    before = path.stat().st_size
    db = _open(path)
    try:
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        db.vacuum()
    finally:
        db.close()
    return before, path.stat().st_size
