"""Sync state: resource links, the push queue, conflict records, and the event queries sync needs."""

from __future__ import annotations

from typing import Any

import apsw
import msgspec

from chronary.store.events import JSON as EVENT_JSON
from chronary.store.rows import count, decode, dumps, one, page

IN_CHUNK = 500  # values per `IN (…)` list

# -- links: (owner, remote calendar, UID) ↔ local master/single event -----------------------------
# The owner is a connection (con_…) or an iCal subscription (isub_…): one merge serves both.


def links(conn: apsw.Connection, owner_id: str, remote_id: str) -> list[dict[str, Any]]:
    return list(
        conn.execute(
            "SELECT owner_id, remote_id, uid, href, etag, event_id FROM sync_links WHERE owner_id = ? AND remote_id = ?",
            (owner_id, remote_id),
        )
    )


def link_by_uid(conn: apsw.Connection, owner_id: str, remote_id: str, uid: str) -> dict[str, Any] | None:
    return one(
        conn,
        "SELECT * FROM sync_links WHERE owner_id = ? AND remote_id = ? AND uid = ?",
        (owner_id, remote_id, uid),
    )


def links_by_uids(conn: apsw.Connection, owner_id: str, remote_id: str, uids: list[str]) -> dict[str, dict[str, Any]]:
    """The links of many UIDs at once, by UID (a merge batch reads them in one go)."""
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(uids), IN_CHUNK):
        part = uids[i : i + IN_CHUNK]
        marks = ",".join("?" for _ in part)
        for row in conn.execute(
            f"SELECT * FROM sync_links WHERE owner_id = ? AND remote_id = ? AND uid IN ({marks})",
            (owner_id, remote_id, *part),
        ):
            out[row["uid"]] = row
    return out


def link_by_href(conn: apsw.Connection, owner_id: str, remote_id: str, href: str) -> dict[str, Any] | None:
    return one(
        conn,
        "SELECT * FROM sync_links WHERE owner_id = ? AND remote_id = ? AND href = ?",
        (owner_id, remote_id, href),
    )


def link_by_event(conn: apsw.Connection, owner_id: str, remote_id: str, event_id: str) -> dict[str, Any] | None:
    return one(
        conn,
        "SELECT * FROM sync_links WHERE owner_id = ? AND remote_id = ? AND event_id = ?",
        (owner_id, remote_id, event_id),
    )


_PUT_LINK = """INSERT INTO sync_links (owner_id, remote_id, uid, href, etag, event_id, ical)
           VALUES (:owner_id, :remote_id, :uid, :href, :etag, :event_id, :ical)
           ON CONFLICT (owner_id, remote_id, uid) DO UPDATE SET href = excluded.href,
             etag = excluded.etag, event_id = excluded.event_id, ical = excluded.ical"""


def put_link(conn: apsw.Connection, row: dict[str, Any]) -> None:
    conn.execute(_PUT_LINK, row)


def put_links(conn: apsw.Connection, rows: list[dict[str, Any]]) -> None:
    """Many `put_link`s in one executemany (a merge batch of new resources)."""
    if rows:
        conn.executemany(_PUT_LINK, rows)


_JSON = msgspec.json.Encoder()
_EVENT_JSON = frozenset(EVENT_JSON)


def _stored(column: str, value: Any) -> Any:
    """A value as `rows.encode` stores it (JSON columns compact and UTF-8, the same text)."""
    if column in _EVENT_JSON:
        if value is None:
            return None
        try:
            return _JSON.encode(value).decode()
        except (TypeError, UnicodeEncodeError):  # what msgspec refuses: the stdlib's text
            return dumps(value)
    return int(value) if isinstance(value, bool) else value


def insert_events(conn: apsw.Connection, rows: list[dict[str, Any]]) -> None:
    """New event rows, stored as `events.create` stores each, with one executemany per column
    set (a merge batch of new resources: a first import writes thousands)."""
    groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for row in rows:
        cols = tuple(row)
        groups.setdefault(cols, []).append(tuple(_stored(c, row[c]) for c in cols))
    for cols, values in groups.items():
        conn.executemany(f"INSERT INTO events ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})", values)


def delete_link(conn: apsw.Connection, owner_id: str, remote_id: str, uid: str) -> None:
    conn.execute("DELETE FROM sync_links WHERE owner_id = ? AND remote_id = ? AND uid = ?", (owner_id, remote_id, uid))


def delete_links_for_calendar(conn: apsw.Connection, owner_id: str, remote_id: str) -> None:
    conn.execute("DELETE FROM sync_links WHERE owner_id = ? AND remote_id = ?", (owner_id, remote_id))
    conn.execute("DELETE FROM sync_pending WHERE connection_id = ? AND remote_id = ?", (owner_id, remote_id))


# -- push queue -----------------------------------------------------------------------------------


def enqueue(conn: apsw.Connection, row: dict[str, Any]) -> None:
    """Queue (or re-queue) a push; the latest operation for an event wins, its version moves on."""
    conn.execute(
        """INSERT INTO sync_pending (connection_id, remote_id, event_id, op, uid, href, etag, changed_at)
           VALUES (:connection_id, :remote_id, :event_id, :op, :uid, :href, :etag, :changed_at)
           ON CONFLICT (connection_id, remote_id, event_id) DO UPDATE SET op = excluded.op, uid = excluded.uid,
             href = coalesce(excluded.href, sync_pending.href), etag = coalesce(excluded.etag, sync_pending.etag),
             version = sync_pending.version + 1, changed_at = excluded.changed_at""",
        row,
    )


def pending(conn: apsw.Connection, connection_id: str, remote_id: str | None = None) -> list[dict[str, Any]]:
    if remote_id is None:
        return list(conn.execute("SELECT * FROM sync_pending WHERE connection_id = ? ORDER BY changed_at", (connection_id,)))
    return list(
        conn.execute(
            "SELECT * FROM sync_pending WHERE connection_id = ? AND remote_id = ? ORDER BY changed_at",
            (connection_id, remote_id),
        )
    )


def pending_for(conn: apsw.Connection, connection_id: str, remote_id: str, event_id: str) -> dict[str, Any] | None:
    return one(
        conn,
        "SELECT * FROM sync_pending WHERE connection_id = ? AND remote_id = ? AND event_id = ?",
        (connection_id, remote_id, event_id),
    )


def count_pending(conn: apsw.Connection, connection_id: str) -> int:
    return count(conn, "SELECT count(*) AS n FROM sync_pending WHERE connection_id = ?", (connection_id,))


def drop_pending(
    conn: apsw.Connection, connection_id: str, remote_id: str, event_id: str, version: int | None = None
) -> bool:
    """Remove a queued push; with `version`, only if nothing re-queued it since it was read."""
    if version is None:
        conn.execute(
            "DELETE FROM sync_pending WHERE connection_id = ? AND remote_id = ? AND event_id = ?",
            (connection_id, remote_id, event_id),
        )
    else:
        conn.execute(
            "DELETE FROM sync_pending WHERE connection_id = ? AND remote_id = ? AND event_id = ? AND version = ?",
            (connection_id, remote_id, event_id, version),
        )
    return conn.changes() > 0


# -- conflicts ------------------------------------------------------------------------------------


def record_conflict(conn: apsw.Connection, row: dict[str, Any]) -> None:
    conn.execute(
        """INSERT INTO sync_conflicts (connection_id, remote_id, uid, event_id, winner, reason, losing_version,
           created_at) VALUES (:connection_id, :remote_id, :uid, :event_id, :winner, :reason, :losing_version,
           :created_at)""",
        row,
    )


def conflicts(conn: apsw.Connection, connection_id: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """Newest first."""
    return page(conn, "sync_conflicts", ["connection_id = ?"], [connection_id], "id DESC", limit, offset)


# -- events as sync sees them -----------------------------------------------------------------------


def exceptions_of(conn: apsw.Connection, master_id: str) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM events WHERE recurring_event_id = ? ORDER BY recurrence_id_ts", (master_id,))
    return [decode(r, EVENT_JSON) for r in rows]


def master_by_uid(conn: apsw.Connection, calendar_id: str, uid: str) -> dict[str, Any] | None:
    return decode(
        one(
            conn,
            "SELECT * FROM events WHERE calendar_id = ? AND ical_uid = ? AND recurring_event_id IS NULL "
            "ORDER BY created_at LIMIT 1",
            (calendar_id, uid),
        ),
        EVENT_JSON,
    )


def masters_by_uids(conn: apsw.Connection, calendar_id: str, uids: list[str]) -> dict[str, dict[str, Any]]:
    """`master_by_uid` for many UIDs at once: the oldest master or single event of each."""
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(uids), IN_CHUNK):
        part = uids[i : i + IN_CHUNK]
        marks = ",".join("?" for _ in part)
        rows = conn.execute(
            f"SELECT * FROM events WHERE calendar_id = ? AND ical_uid IN ({marks}) AND recurring_event_id IS NULL "
            "ORDER BY created_at",
            (calendar_id, *part),
        )
        for row in rows:
            if row["ical_uid"] not in out:
                out[row["ical_uid"]] = decode(row, EVENT_JSON)
    return out


def detach_events(conn: apsw.Connection, connection_id: str, remote_id: str | None = None) -> list[str]:
    """Mirrors of a deleted connection (or of one unsynced remote calendar) become plain local
    events: source internal, remote NULL, writable. Returns the calendar ids touched."""
    where = "remote IS NOT NULL AND json_extract(remote, '$.connection_id') = ?"
    params: list[Any] = [connection_id]
    if remote_id is not None:
        where += " AND json_extract(remote, '$.calendar_remote_id') = ?"
        params.append(remote_id)
    rows = list(conn.execute(f"SELECT DISTINCT calendar_id FROM events WHERE {where}", params))
    conn.execute(f"UPDATE events SET source = 'internal', remote = NULL, read_only = 0 WHERE {where}", params)
    return sorted(r["calendar_id"] for r in rows)


def set_remote(conn: apsw.Connection, event_ids: list[str], remote: dict[str, Any] | None) -> None:
    """Record a pushed event's link (etag/href) on it and its exceptions; no hooks, no revision."""
    if not event_ids:
        return
    marks = ",".join("?" for _ in event_ids)
    conn.execute(f"UPDATE events SET remote = ? WHERE id IN ({marks})", (dumps(remote), *event_ids))


def forget_remote(conn: apsw.Connection, connection_id: str, remote_id: str, event_id: str) -> None:
    """The remote copy is gone: the queued push must create it anew (no href, no etag)."""
    conn.execute(
        "UPDATE sync_pending SET href = NULL, etag = NULL WHERE connection_id = ? AND remote_id = ? AND event_id = ?",
        (connection_id, remote_id, event_id),
    )


def delete_link_for_event(conn: apsw.Connection, owner_id: str, remote_id: str, event_id: str) -> None:
    conn.execute(
        "DELETE FROM sync_links WHERE owner_id = ? AND remote_id = ? AND event_id = ?",
        (owner_id, remote_id, event_id),
    )


_MIRRORED = """SELECT e.id, 1 AS exception FROM sync_links l JOIN events e ON e.recurring_event_id = l.event_id
     WHERE l.owner_id = :owner AND l.remote_id = :remote
     UNION ALL
     SELECT e.id, 0 AS exception FROM sync_links l JOIN events e ON e.id = l.event_id
     WHERE l.owner_id = :owner AND l.remote_id = :remote"""


def count_mirrored(conn: apsw.Connection, owner_id: str, remote_id: str) -> int:
    """Stored events (masters, singles and exceptions) of one mirror's links."""
    return count(conn, f"SELECT count(*) AS n FROM ({_MIRRORED})", {"owner": owner_id, "remote": remote_id})


def mirrored_event_ids(conn: apsw.Connection, owner_id: str, remote_id: str) -> list[str]:
    """Every stored event of one mirror, exceptions first (so a series goes after its rows)."""
    rows = conn.execute(f"{_MIRRORED} ORDER BY exception DESC, id", {"owner": owner_id, "remote": remote_id})
    return [r["id"] for r in rows]
