"""The webhook outbox is now the change log (store/changes.py): what is left here reads the
changes that are sent as webhooks, in the columns the outbox had (`audience` as JSON text)."""

from __future__ import annotations

from typing import Any

import apsw


def recent(conn: apsw.Connection, limit: int = 100) -> list[dict[str, Any]]:
    """The newest webhook changes first."""
    return list(
        conn.execute(
            """SELECT seq, id, type, agent_id, resource_id, payload, created_at, audience
                 FROM changes WHERE webhook = 1 ORDER BY seq DESC LIMIT ?""",
            (limit,),
        )
    )
