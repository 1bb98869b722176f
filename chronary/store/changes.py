"""SQL for the change log and its consumers' cursors (see services/changes.py).

A change is a row of `change_log` and, while some consumer has not read it, its payload in
`change_payloads` (migration 0020); the view `changes` shows both as one row (payload NULL once
dropped).
"""

from __future__ import annotations

from typing import Any

import apsw

from chronary.store.rows import loads, one

_COLUMNS = ("id", "type", "resource_id", "agent_id", "audience", "calendar_id", "origin", "webhook", "created_at")
_INSERT = f"INSERT INTO change_log ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"


def append(conn: apsw.Connection, row: dict[str, Any]) -> int:
    """Add a change (the columns of `changes`, payload included: None keeps none); returns its seq."""
    conn.execute(_INSERT, tuple(row[c] for c in _COLUMNS))
    seq = conn.last_insert_rowid()
    if row["payload"] is not None:
        conn.execute("INSERT INTO change_payloads (seq, payload) VALUES (?, ?)", (seq, row["payload"]))
    return seq


def high_water(conn: apsw.Connection) -> int:
    """The seq of the newest change ever recorded (pruned ones included; 0 before the first)."""
    row = one(conn, "SELECT seq FROM sqlite_sequence WHERE name = 'change_log'")
    return int(row["seq"]) if row and row["seq"] is not None else 0


def cursor(conn: apsw.Connection, consumer: str) -> int | None:
    row = one(conn, "SELECT seq FROM change_cursors WHERE consumer = ?", (consumer,))
    return None if row is None else int(row["seq"])


def ensure_cursor(conn: apsw.Connection, consumer: str) -> int:
    """The consumer's cursor; a consumer seen for the first time starts after the newest change."""
    conn.execute(
        """INSERT INTO change_cursors (consumer, seq) VALUES (?, ?) ON CONFLICT (consumer) DO NOTHING""",
        (consumer, high_water(conn)),
    )
    return cursor(conn, consumer) or 0


def advance(conn: apsw.Connection, consumer: str, seq: int) -> None:
    conn.execute("UPDATE change_cursors SET seq = max(seq, ?) WHERE consumer = ?", (seq, consumer))


def passed_by_all(conn: apsw.Connection) -> int:
    """The newest seq every consumer's cursor has passed (the high water when there is none)."""
    row = one(conn, "SELECT min(seq) AS seq FROM change_cursors")
    return high_water(conn) if row is None or row["seq"] is None else int(row["seq"])


def drop_payloads(conn: apsw.Connection, after_seq: int, upto_seq: int) -> None:
    """Forget the payloads of the changes in (after_seq, upto_seq]: every consumer has them."""
    if upto_seq > after_seq:
        conn.execute("DELETE FROM change_payloads WHERE seq > ? AND seq <= ?", (after_seq, upto_seq))


def count_between(conn: apsw.Connection, after_seq: int, upto_seq: int) -> int:
    """How many changes are logged in (after_seq, upto_seq]."""
    row = one(conn, "SELECT count(*) AS n FROM change_log WHERE seq > ? AND seq <= ?", (after_seq, upto_seq))
    return int(row["n"]) if row else 0


def any_after(conn: apsw.Connection, seq: int) -> bool:
    return one(conn, "SELECT 1 AS x FROM change_log WHERE seq > ? LIMIT 1", (seq,)) is not None


def after(conn: apsw.Connection, seq: int, limit: int) -> list[dict[str, Any]]:
    """Changes after `seq`, oldest first; `audience` parsed (a list), `webhook` a bool."""
    rows = list(conn.execute("SELECT * FROM changes WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)))
    for row in rows:
        row["audience"] = loads(row["audience"]) or []
        row["webhook"] = bool(row["webhook"])
    return rows


def prune(conn: apsw.Connection, created_before: str) -> int:
    """Forget changes older than the cutoff that every consumer has passed (a consumer that is
    behind keeps what it has not seen yet, at any age)."""
    passed = passed_by_all(conn)
    conn.execute("DELETE FROM change_log WHERE created_at < ? AND seq <= ?", (created_before, passed))
    pruned = conn.changes()
    # payloads every consumer has passed that are still there (logged before migration 0020)
    conn.execute("DELETE FROM change_payloads WHERE seq <= ?", (passed,))
    return pruned


def recent(conn: apsw.Connection, limit: int = 100) -> list[dict[str, Any]]:
    """The newest changes first, as stored (for tests and diagnostics)."""
    return list(conn.execute("SELECT * FROM changes ORDER BY seq DESC LIMIT ?", (limit,)))
