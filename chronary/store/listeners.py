"""Cheap questions the change pipeline asks before calling an in-transaction listener: could it
have anything to do with this change? (runtime.default_pipeline). Each is one indexed lookup on
one table, a superset of what the listener's own query selects, so a "no" skips only listeners
that would have done nothing; the listeners' joins cost several times more, on every change."""

from __future__ import annotations

import apsw

from chronary.store.rows import one


def calendar_is_mapped(conn: apsw.Connection, calendar_id: str) -> bool:
    """Does a connection mirror this calendar (a `connection_calendars` row with sync on)?"""
    row = one(conn, "SELECT 1 AS x FROM connection_calendars WHERE calendar_id = ? AND sync = 1 LIMIT 1", (calendar_id,))
    return row is not None


def type_has_trigger(conn: apsw.Connection, change_type: str) -> bool:
    """Does any flow trigger match this change type (enabled or not)?"""
    row = one(conn, "SELECT 1 AS x FROM flow_trigger_types WHERE match_type = ? LIMIT 1", (change_type,))
    return row is not None
