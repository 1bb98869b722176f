"""SQL for iCal feeds: what a feed shows, its token, and when its content last changed."""

from __future__ import annotations

from typing import Any

import apsw

from chronary.store.rows import loads, one

FEED_COLUMNS = (
    "id",
    "ical_uid",
    "title",
    "description",
    "location",
    "start_ts",
    "end_ts",
    "all_day",
    "status",
    "reminders",
    "recurrence",
    "recurring_event_id",
    "recurrence_id_ts",
    "attendees",
    "remote",
    "sequence",
    "created_at",
    "updated_at",
    "transparency",
)
_FEED_JSON = ("reminders", "recurrence", "attendees", "remote")


def feed_rows(conn: apsw.Connection, calendar_id: str, since_ts: int) -> list[dict[str, Any]]:
    """Every series master and occurrence exception, plus single events ending after `since_ts`.

    Only the columns a feed shows, and rows built here rather than by the connection's dict row
    tracer: a 10k-event feed spends most of its cold time in this loop.
    """
    cursor = conn.cursor()
    cursor.row_trace = lambda _cursor, row: row
    rows = cursor.execute(
        f"""SELECT {", ".join(FEED_COLUMNS)} FROM events WHERE calendar_id = ?
             AND (recurrence IS NOT NULL OR recurring_event_id IS NOT NULL OR end_ts > ?)
           ORDER BY start_ts, id""",
        (calendar_id, since_ts),
    )
    out = []
    for values in rows:
        row = dict(zip(FEED_COLUMNS, values, strict=True))
        for col in _FEED_JSON:
            if row[col] is not None:
                row[col] = loads(row[col])
        out.append(row)
    return out


def set_token(conn: apsw.Connection, calendar_id: str, token: str) -> None:
    conn.execute("UPDATE calendars SET feed_token = ? WHERE id = ?", (token, calendar_id))


def touch(conn: apsw.Connection, calendar_id: str, changed_at: str) -> None:
    conn.execute(
        """INSERT INTO feed_state (calendar_id, changed_at) VALUES (?, ?)
           ON CONFLICT (calendar_id) DO UPDATE SET changed_at = excluded.changed_at""",
        (calendar_id, changed_at),
    )


def changed_at(conn: apsw.Connection, calendar_id: str) -> str | None:
    row = one(conn, "SELECT changed_at FROM feed_state WHERE calendar_id = ?", (calendar_id,))
    return None if row is None else row["changed_at"]
