"""When a connection syncs next and what state it is in, after each round.

Success: status active, counters reset, the next round `interval + jitter` away. Failure:
exponential backoff (1, 2, 4 … 60 min, with jitter), never sooner than the provider's own
`retry_after`; five failures in a row (three for rejected credentials) set status error and send
connection.error once. A grant only the user can repair (`reauthorize`) is given up on at once,
with status_reason `reauthorization_required`: retrying cannot help and would only hammer the
provider. Rejected passwords are then tried once a day (an Apple ID gets locked by retries).
"""

from __future__ import annotations

import random
from typing import Any

from chronary.services.changes import sync_origin
from chronary.services.connection_shapes import emit
from chronary.store import connections as con_store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms, to_ts

AUTH_RETRIES = 3  # credential failures in a row before status error
ERROR_RETRIES = 5  # other failures in a row before status error
MAX_BACKOFF = 3600
AUTH_ERROR_RETRY = 86400  # seconds between tries once credentials were given up on
REAUTHORIZE = "reauthorization_required"
NEVER = 2**53  # next_sync_at of a connection that waits for its user


def backoff_seconds(failures: int) -> float:
    return min(MAX_BACKOFF, 60 * 2 ** max(0, failures - 1))


def finish_ok(
    tx: Tx, cid: str, summary: dict[str, Any], was_full: bool, secret: str | None = None, *, token_checked: bool = True
) -> None:
    """`token_checked`: the credentials were used afresh this round (a password login, an OAuth
    refresh), which is what token_refresh.last_at reports."""
    con = con_store.get(tx.conn, cid)
    if con is None:
        return
    tx.origin = sync_origin(cid)  # connection.synced comes from this connection's round
    interval = con["sync_interval_minutes"] * 60
    jitter = random.uniform(0, min(60.0, interval * 0.1))
    values: dict[str, Any] = {
        "status": "active",
        "status_reason": None,
        "failures": 0,
        "token_failures": 0,
        "last_synced_at": summary["finished_at"],
        "last_sync": summary,
        "next_sync_at": to_ts(tx.now) + int(interval + jitter),
        "updated_at": iso_ms(tx.now),
    }
    if token_checked:
        values["token_last_at"] = summary["finished_at"]
    if was_full:
        values["full_resync"] = 0
    if secret is not None:
        values["secret"] = secret
    con_store.patch(tx.conn, cid, values)
    emit(tx, "connection.synced", cid)


def finish_failed(
    tx: Tx,
    cid: str,
    summary: dict[str, Any],
    auth: bool,
    *,
    reauthorize: bool = False,
    retry_after: float | None = None,
    secret: str | None = None,
) -> None:
    con = con_store.get(tx.conn, cid)
    if con is None:
        return
    tx.origin = sync_origin(cid)  # connection.error too
    failures = con["failures"] + 1
    token_failures = con["token_failures"] + (1 if auth else 0)
    wait = backoff_seconds(failures) * random.uniform(1, 1.2)
    if retry_after is not None:
        wait = max(wait, retry_after)
    values: dict[str, Any] = {
        "failures": failures,
        "token_failures": token_failures,
        "last_sync": summary,
        "next_sync_at": to_ts(tx.now) + int(wait),
        "updated_at": iso_ms(tx.now),
    }
    if secret is not None:
        values["secret"] = secret  # a token refreshed before the failure is still the newest one
    give_up = reauthorize or (token_failures >= AUTH_RETRIES if auth else failures >= ERROR_RETRIES)
    if give_up:
        values["status"] = "error"
        values["status_reason"] = REAUTHORIZE if reauthorize else summary["error"]
        if reauthorize:
            values["next_sync_at"] = NEVER  # only the user can fix it: /start with connection_id, or /refresh
        elif auth:
            # a rejected password retried every hour can get an Apple ID locked: once a day
            # from now on, or at once through POST /v1/connections/{id}/refresh
            values["next_sync_at"] = to_ts(tx.now) + AUTH_ERROR_RETRY
    con_store.patch(tx.conn, cid, values)
    if give_up and con["status"] != "error":
        emit(tx, "connection.error", cid)
