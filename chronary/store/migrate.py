"""Named, forward-only migrations recorded in the database.

Each file `migrations/NNNN_name.sql` runs once, in name order, in its own transaction; a file
whose first line is `-- chronary: foreign-keys-off` rebuilds tables, so it runs with foreign keys
off (they cannot change inside a transaction; dropping a parent table with them on would cascade)
and `PRAGMA foreign_key_check` must pass before it commits (SQLite's table-rebuild procedure). A
migration that must rewrite values SQL cannot (stored iCalendar lines) also has a Python step
in `PYTHON_STEPS`, run after its SQL in the same transaction. The applied names are kept in
`schema_migrations`; a database that records a migration this code
does not have was written by a newer Chronary and is refused rather than guessed at.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import apsw

from chronary.errors import SchemaTooNew
from chronary.ical.decode import canonical_lines
from chronary.store.rows import dumps


def _normalize_recurrence(conn: apsw.Connection) -> None:
    """Imported events' recurrence lines in the one codec's format (0009_one_vevent_codec)."""
    rows = list(
        conn.execute("SELECT id, all_day, recurrence FROM events WHERE recurrence IS NOT NULL AND source != 'internal'")
    )
    for row in rows:
        lines = json.loads(row["recurrence"])
        if not isinstance(lines, list):
            continue
        fixed = canonical_lines([str(x) for x in lines], bool(row["all_day"]))
        if fixed != lines:
            conn.execute("UPDATE events SET recurrence = ? WHERE id = ?", (dumps(fixed or None), row["id"]))


FOREIGN_KEYS_OFF = "-- chronary: foreign-keys-off"

PYTHON_STEPS: dict[str, Callable[[apsw.Connection], None]] = {"0009_one_vevent_codec": _normalize_recurrence}


def _migrations_dir() -> Path:
    if getattr(sys, "frozen", False):  # PyInstaller one-file: data files unpack under _MEIPASS
        return Path(sys._MEIPASS) / "chronary" / "store" / "migrations"  # type: ignore[attr-defined]
    return Path(str(resources.files("chronary.store") / "migrations"))


def available() -> list[tuple[str, str]]:
    """(name, sql) for every migration shipped with this code, in order."""
    folder = _migrations_dir()
    return [(p.stem, p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.sql"))]


def applied(conn: apsw.Connection) -> list[str]:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    return [row["name"] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]


def schema_version(conn: apsw.Connection) -> int:
    return len(applied(conn))


def migrate(conn: apsw.Connection) -> list[str]:
    """Apply pending migrations; returns the names applied now."""
    shipped = available()
    known = {name for name, _ in shipped}
    done = applied(conn)
    unknown = [name for name in done if name not in known]
    if unknown:
        raise SchemaTooNew(
            f"this database was created by a newer Chronary (it has migrations {', '.join(unknown)} "
            "that this version does not know); upgrade Chronary or restore a matching backup"
        )
    ran: list[str] = []
    pending = [(name, sql) for name, sql in shipped if name not in done]
    if not pending:
        return ran
    # One flush for the lot, not one per migration (a new database runs ~two dozen): each stays its
    # own transaction, so a crash or power loss between two leaves a consistent database whose
    # lost migrations run again at the next start; the next synchronous=FULL commit (the first
    # key's, right after) fsyncs the WAL with all of them in it.
    synchronous = int(conn.pragma("synchronous"))
    conn.execute("PRAGMA synchronous=NORMAL")
    try:
        _apply(conn, pending, len(done), ran)
    finally:
        conn.execute(f"PRAGMA synchronous={synchronous}")
    return ran


def _apply(conn: apsw.Connection, pending: list[tuple[str, str]], done: int, ran: list[str]) -> None:
    for name, sql in pending:
        rebuild = sql.startswith(FOREIGN_KEYS_OFF)
        if rebuild:
            conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(sql)
            if name in PYTHON_STEPS:
                PYTHON_STEPS[name](conn)
            if rebuild:
                broken = list(conn.execute("PRAGMA foreign_key_check"))
                if broken:
                    raise RuntimeError(f"migration {name} broke {len(broken)} foreign key(s): {broken[:3]}")
            conn.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?, strftime('%Y-%m-%dT%H:%M:%fZ'))",
                (name,),
            )
            conn.execute(f"PRAGMA user_version = {done + len(ran) + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            if rebuild:
                conn.execute("PRAGMA foreign_keys=ON")
        ran.append(name)
