"""SQL for the moments scanner (services/moments.py): what already fired, and its cursor."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import apsw

from chronary.store.rows import one

CURSOR = "cursor"


def cursor(conn: apsw.Connection) -> int | None:
    """The last instant scanned (unix seconds), or None before the first scan."""
    row = one(conn, "SELECT value FROM moments_state WHERE key = ?", (CURSOR,))
    return None if row is None else int(row["value"])


def set_cursor(conn: apsw.Connection, ts: int) -> None:
    """Move the cursor to `ts`; it never moves back (a clock set backwards re-fires nothing)."""
    conn.execute(
        """INSERT INTO moments_state (key, value) VALUES (?, ?)
           ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)""",
        (CURSOR, ts),
    )


def mark_fired(conn: apsw.Connection, kind: str, event_id: str, minutes: int, at_ts: int, fired_at: str) -> bool:
    """Remember a moment; False when it was already there (it fired before: do not fire again)."""
    conn.execute(
        """INSERT OR IGNORE INTO moments_fired (kind, event_id, minutes, at_ts, fired_at)
           VALUES (?, ?, ?, ?, ?)""",
        (kind, event_id, minutes, at_ts, fired_at),
    )
    return bool(conn.changes())


def fired_keys(conn: apsw.Connection, after_ts: int, until_ts: int) -> set[tuple[str, str, int, int]]:
    """(kind, event_id, minutes, at_ts) of the moments in (after_ts, until_ts] that fired."""
    rows = conn.execute(
        "SELECT kind, event_id, minutes, at_ts FROM moments_fired WHERE at_ts > ? AND at_ts <= ?",
        (after_ts, until_ts),
    )
    return {(r["kind"], r["event_id"], int(r["minutes"]), int(r["at_ts"])) for r in rows}


def prune(conn: apsw.Connection, before_ts: int) -> int:
    """Forget moments earlier than `before_ts` (no scan reaches them any more); returns how many."""
    conn.execute("DELETE FROM moments_fired WHERE at_ts < ?", (before_ts,))
    return int(conn.changes())


def reminder_minutes_in_use(conn: apsw.Connection) -> list[int]:
    """Every reminder minute any event or calendar default names (a superset of what applies:
    an event's own list replaces its calendar's defaults)."""
    rows = conn.execute(
        """SELECT DISTINCT CAST(j.value AS INTEGER) AS m
             FROM events AS e,
                  json_each(CASE WHEN json_valid(e.reminders) THEN e.reminders ELSE '[]' END) AS j
            WHERE e.reminders IS NOT NULL AND j.type = 'integer'
           UNION
           SELECT DISTINCT CAST(j.value AS INTEGER) AS m
             FROM calendars AS c,
                  json_each(CASE WHEN json_valid(c.default_reminders) THEN c.default_reminders ELSE '[]' END) AS j
            WHERE c.default_reminders IS NOT NULL AND j.type = 'integer'
           ORDER BY m"""
    )
    return [int(r["m"]) for r in rows if r["m"] is not None and int(r["m"]) > 0]


@contextmanager
def savepoint(conn: apsw.Connection) -> Iterator[None]:
    """Inside the caller's transaction: what the block writes is undone if it raises (one
    moment's failing listener must not undo the others, or the cursor)."""
    conn.execute("SAVEPOINT moment")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK TO moment")
        conn.execute("RELEASE moment")
        raise
    conn.execute("RELEASE moment")


def calendar_ids(conn: apsw.Connection) -> list[str]:
    """Every calendar (the scanner falls back to one calendar at a time when a scan fails)."""
    return [r["id"] for r in conn.execute("SELECT id FROM calendars ORDER BY id")]
