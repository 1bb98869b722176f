"""OAuth flow state and push channels (the SQL of services/oauth.py and services/sync/push.py)."""

from __future__ import annotations

from typing import Any

import apsw

from chronary.store.rows import decode, insert, one

STATE_JSON = ("scopes",)


def add_state(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, "oauth_states", row, STATE_JSON)


def take_state(conn: apsw.Connection, state_hash: str) -> dict[str, Any] | None:
    """The pending flow for a state, removed in the same step: a state works once."""
    row = decode(one(conn, "SELECT * FROM oauth_states WHERE state_hash = ?", (state_hash,)), STATE_JSON)
    if row is not None:
        conn.execute("DELETE FROM oauth_states WHERE state_hash = ?", (state_hash,))
    return row


def prune_states(conn: apsw.Connection, now_ts: int) -> int:
    conn.execute("DELETE FROM oauth_states WHERE expires_ts <= ?", (now_ts,))
    return conn.changes()


# -- push channels -----------------------------------------------------------------------------


def add_channel(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, "push_channels", row, ())


def get_channel(conn: apsw.Connection, channel_id: str) -> dict[str, Any] | None:
    return one(conn, "SELECT * FROM push_channels WHERE id = ?", (channel_id,))


def channels(conn: apsw.Connection, connection_id: str) -> list[dict[str, Any]]:
    return list(conn.execute("SELECT * FROM push_channels WHERE connection_id = ? ORDER BY expires_ts", (connection_id,)))


def delete_channel(conn: apsw.Connection, channel_id: str) -> None:
    conn.execute("DELETE FROM push_channels WHERE id = ?", (channel_id,))


def expire_channel(conn: apsw.Connection, channel_id: str) -> None:
    """Make a channel due for renewal at the next round (the provider asked for it)."""
    conn.execute("UPDATE push_channels SET expires_ts = 0 WHERE id = ?", (channel_id,))
