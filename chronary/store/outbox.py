"""The webhook outbox is now the change log (store/changes.py): what is left here reads the
changes that are sent as webhooks, in the columns the outbox had (`audience` as JSON text)."""

from __future__ import annotations

from typing import Any

import apsw

from chronary.store.rows import one


def recent(conn: apsw.Connection, limit: int = 100) -> list[dict[str, Any]]:
    """The newest webhook changes first."""
    return list(
        conn.execute(
            """SELECT seq, id, type, agent_id, resource_id, payload, created_at, audience
                 FROM changes WHERE webhook = 1 ORDER BY seq DESC LIMIT ?""",
            (limit,),
        )
    )


def has_receivers(conn: apsw.Connection) -> bool:
    """Is there an endpoint a change could be delivered to (active or paused: paused ones still
    get deliveries at fan-out)? Without one, webhook fan-out has nothing to do."""
    row = one(conn, "SELECT 1 AS x FROM webhook_endpoints WHERE status IN ('active', 'paused') LIMIT 1")
    return row is not None
