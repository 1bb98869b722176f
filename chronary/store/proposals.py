"""Proposals, their participants' responses, and the holds placed for them."""

from __future__ import annotations

from typing import Any

import apsw

from chronary.store.rows import count, decode, encode, insert, one, update

JSON = ("candidate_slots",)
PARTICIPANT_JSON = ("accepted", "declined")


def create(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, "proposals", row, JSON)


def get(conn: apsw.Connection, proposal_id: str) -> dict[str, Any] | None:
    return decode(one(conn, "SELECT * FROM proposals WHERE id = ?", (proposal_id,)), JSON)


def patch(conn: apsw.Connection, proposal_id: str, values: dict[str, Any]) -> None:
    update(conn, "proposals", proposal_id, values, JSON)


def add_participant(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, "proposal_participants", row, PARTICIPANT_JSON)


def participants(conn: apsw.Connection, proposal_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {p: [] for p in proposal_ids}
    if not proposal_ids:
        return out
    marks = ",".join("?" for _ in proposal_ids)
    for r in conn.execute(
        f"SELECT * FROM proposal_participants WHERE proposal_id IN ({marks}) ORDER BY proposal_id, position",
        proposal_ids,
    ):
        out[r["proposal_id"]].append(decode(r, PARTICIPANT_JSON))
    return out


def patch_participant(conn: apsw.Connection, proposal_id: str, agent_id: str, values: dict[str, Any]) -> None:
    row = encode(values, PARTICIPANT_JSON)
    sets = ", ".join(f"{c} = ?" for c in row)
    conn.execute(
        f"UPDATE proposal_participants SET {sets} WHERE proposal_id = ? AND agent_id = ?",
        (*row.values(), proposal_id, agent_id),
    )


def add_hold(conn: apsw.Connection, row: dict[str, Any]) -> None:
    insert(conn, "proposal_holds", row)


def holds(conn: apsw.Connection, proposal_id: str) -> list[dict[str, Any]]:
    """The proposal's holds that still stand (not expired by the worker, released or confirmed by hand)."""
    return list(
        conn.execute(
            """SELECT h.* FROM proposal_holds h JOIN events e ON e.id = h.event_id AND e.status = 'hold'
           WHERE h.proposal_id = ? ORDER BY h.slot_index, h.agent_id""",
            (proposal_id,),
        )
    )


def clear_holds(conn: apsw.Connection, proposal_id: str, slot_index: int | None = None) -> None:
    if slot_index is None:
        conn.execute("DELETE FROM proposal_holds WHERE proposal_id = ?", (proposal_id,))
    else:
        conn.execute("DELETE FROM proposal_holds WHERE proposal_id = ? AND slot_index = ?", (proposal_id, slot_index))


def list_(
    conn: apsw.Connection,
    org_id: str,
    *,
    status: str | None,
    agent_id: str | None,
    now_ts: int,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """Newest first. status "expired" means open past expires_at; "open" excludes those."""
    where = ["org_id = ?"]
    params: list[Any] = [org_id]
    if status == "expired":
        where.append("status = 'open' AND expires_at IS NOT NULL AND expires_at <= ?")
        params.append(now_ts)
    elif status == "open":
        where.append("status = 'open' AND (expires_at IS NULL OR expires_at > ?)")
        params.append(now_ts)
    elif status is not None:
        where.append("status = ?")
        params.append(status)
    if agent_id is not None:
        where.append("(organizer_agent_id = ? OR id IN (SELECT proposal_id FROM proposal_participants WHERE agent_id = ?))")
        params += [agent_id, agent_id]
    clause = " AND ".join(where)
    total = count(conn, f"SELECT count(*) AS n FROM proposals WHERE {clause}", params)
    rows = conn.execute(
        f"SELECT * FROM proposals WHERE {clause} ORDER BY id DESC LIMIT ? OFFSET ?", (*params, limit, offset)
    )
    return [decode(r, JSON) for r in rows], total
