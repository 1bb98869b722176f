"""Web UI sign-in: one-time login tokens and cookie sessions (the SQL of services/sessions.py)."""

from __future__ import annotations

from typing import Any

import apsw

from chronary.store.rows import decode, insert, one


def add_login_token(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, "login_tokens", row)


def take_login_token(conn: apsw.Connection, token_hash: str) -> dict[str, Any] | None:
    """The token's row, deleted in the same step: a sign-in link works once."""
    row = one(conn, "SELECT * FROM login_tokens WHERE token_hash = ?", (token_hash,))
    if row is not None:
        conn.execute("DELETE FROM login_tokens WHERE token_hash = ?", (token_hash,))
    return row


def add_session(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, "web_sessions", row)


def session(conn: apsw.Connection, id_hash: str) -> dict[str, Any] | None:
    """The session with the key it signed in with (revoked_at tells whether that still holds)."""
    return decode(
        one(
            conn,
            """SELECT s.*, k.org_id, k.agent_id, k.revoked_at, k.permissions
                 FROM web_sessions s JOIN api_keys k ON k.id = s.key_id WHERE s.id_hash = ?""",
            (id_hash,),
        ),
        ("permissions",),
    )


def touch(conn: apsw.Connection, id_hash: str, idle_until_ts: int) -> None:
    conn.execute("UPDATE web_sessions SET idle_until_ts = ? WHERE id_hash = ?", (idle_until_ts, id_hash))


def delete_session(conn: apsw.Connection, id_hash: str) -> None:
    conn.execute("DELETE FROM web_sessions WHERE id_hash = ?", (id_hash,))


def prune(conn: apsw.Connection, now_ts: int) -> int:
    conn.execute("DELETE FROM login_tokens WHERE expires_ts <= ?", (now_ts,))
    removed = conn.changes()
    conn.execute("DELETE FROM web_sessions WHERE expires_ts <= ? OR idle_until_ts <= ?", (now_ts, now_ts))
    return removed + conn.changes()


def web_key(conn: apsw.Connection, org_id: str, name: str) -> dict[str, Any] | None:
    """The org's key that sign-in links sign in through (not revoked)."""
    return one(
        conn,
        "SELECT id FROM api_keys WHERE org_id = ? AND name = ? AND agent_id IS NULL AND revoked_at IS NULL",
        (org_id, name),
    )
