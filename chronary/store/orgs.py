"""The single org of this server (self-hosted: one org per database)."""

from __future__ import annotations

from typing import Any

import apsw

from chronary.store.rows import insert, one


def get_default(conn: apsw.Connection) -> dict[str, Any] | None:
    return one(conn, "SELECT * FROM orgs ORDER BY id LIMIT 1")


def create(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, "orgs", row)
