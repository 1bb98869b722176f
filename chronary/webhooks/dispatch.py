"""The delivery state machine, in short write transactions (run by the worker).

fan_out   the change-log consumer "webhooks" (services/changes.consume): changes after its cursor
          → one `dlv_` per matching endpoint, created in the transaction that moves the cursor,
          so each change is fanned out exactly once, across restarts too.
claim     pick due deliveries of an endpoint in change order (at most one per resource: the
          earliest open one), record an in-flight attempt for each and take them off the due
          list — committed
          *before* the HTTP requests, so a crash mid-request leaves evidence that `recover` turns
          into an immediate retry with the same payload id (at-least-once).
record    store the outcome; schedule a retry, finish the delivery, or disable the endpoint.
settle    the sender's one transaction per batch: record what finished, claim the next batch.

Paused endpoints still get deliveries at fan-out; they wait (pending) until the endpoint is
resumed. Disabled endpoints get none.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from chronary import ids
from chronary.services import changes
from chronary.store import connections as con_store
from chronary.store import outbox as outbox_store
from chronary.store import webhooks as store
from chronary.store.db import Tx
from chronary.store.rows import loads
from chronary.timeutil import iso_ms, parse_stored
from chronary.webhooks import policy
from chronary.webhooks.types import ALL, CALENDAR_PROVIDER_TYPES, matches

CONSUMER = "webhooks"  # its cursor in change_cursors (created by migration 0008)
INTERRUPTED = "interrupted: the server stopped before the receiver answered; retried with the same id"


@dataclass
class Claim:
    delivery_id: str
    event_id: str
    payload: str
    attempt_id: int
    number: int
    url: str
    secret_enc: str
    last_attempt_at: str | None = None  # the delivery's values before the claim (for `release`)
    due_at: str | None = None


@dataclass
class Outcome:
    status_code: int | None = None
    body: str | None = None
    error: str | None = None
    duration_ms: int | None = None
    retryable: bool = False
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and policy.succeeded(self.status_code)


def new_delivery(endpoint_id: str, event: Mapping[str, Any], payload: str, seq: int, now: str) -> dict[str, Any]:
    return {
        "id": ids.new_id("dlv"),
        "endpoint_id": endpoint_id,
        "event_id": event["id"],
        "event_type": event["type"],
        "resource_id": event["resource_id"],
        "seq": seq,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def concerns(row: Mapping[str, Any], agent_id: str) -> bool:
    """Does this change concern the agent (its owner, or one listed in its audience)?"""
    return row["agent_id"] == agent_id or agent_id in (row.get("audience") or ())


def _connection_of(row: Mapping[str, Any]) -> str | None:
    origin = row["origin"] or ""
    for prefix in ("sync:", "inbound:"):
        if origin.startswith(prefix):
            return str(origin[len(prefix) :])
    if row["type"].startswith("connection."):
        return str(row["resource_id"])
    return None


def _provider_kind(tx: Tx, row: Mapping[str, Any], connection_id: str, kinds: dict[str, str | None]) -> str | None:
    if connection_id not in kinds:
        con = con_store.get(tx.conn, connection_id)
        if con is not None:
            kinds[connection_id] = con["provider"]
        else:  # connection.deleted: the payload still says which provider it was
            obj = (loads(row["payload"]) or {}).get("data", {}).get("object", {})
            kinds[connection_id] = obj.get("provider") if isinstance(obj, dict) else None
    return kinds[connection_id]


def from_provider(tx: Tx, row: Mapping[str, Any], ep: Mapping[str, Any], kinds: dict[str, str | None]) -> bool:
    """Does a Connect provider subscription want this change? Its provider's inbound events
    (`<provider>.<event>`), or for calendar providers the changes their sync brought in and the
    health of their connections; only the named connection's when it has one."""
    provider, subscribed = ep["provider_type"], ep["events"]
    if row["type"] not in subscribed and ALL not in subscribed:
        return False
    connection_id = _connection_of(row)
    if connection_id is None or (ep["connection_id"] and ep["connection_id"] != connection_id):
        return False
    if (row["origin"] or "").startswith("inbound:"):
        return bool(row["type"].startswith(provider + "."))
    if row["type"] not in CALENDAR_PROVIDER_TYPES:
        return False
    return _provider_kind(tx, row, connection_id, kinds) == provider


def nobody_receives(tx: Tx) -> bool:
    """No endpoint is active or paused: fan-out would make no delivery of any change."""
    return not outbox_store.has_receivers(tx.conn)


def fan_out(tx: Tx, rows: list[dict[str, Any]]) -> None:
    """The consumer's handler: changes (store/changes.after rows, in seq order) become deliveries
    to every active or paused endpoint that wants them. Changes not sent as webhooks are passed,
    and so are those logged without a payload: no endpoint could receive them when they were made
    (services/changes.record), so none that exists now was meant to."""
    rows = [r for r in rows if r["webhook"] and r["payload"] is not None]
    if not rows:
        return
    endpoints = store.active_endpoints(tx.conn)
    now = iso_ms(tx.now)
    kinds: dict[str, str | None] = {}
    for row in rows:
        for ep in endpoints:
            if row["seq"] <= ep["since_seq"]:
                continue
            if ep["provider_type"] is None or ep["provider_type"] == "chronary":
                if not matches(ep["events"], row["type"]):
                    continue
            elif not from_provider(tx, row, ep, kinds):
                continue
            if ep["agent_id"] is not None and not concerns(row, ep["agent_id"]):
                continue
            store.create_delivery(tx.conn, new_delivery(ep["id"], row, row["payload"], row["seq"], now))


def claim(tx: Tx, endpoint_id: str) -> Claim | None:
    claimed = claim_batch(tx, endpoint_id, 1)
    return claimed[0] if claimed else None


def claim_batch(tx: Tx, endpoint_id: str, limit: int) -> list[Claim]:
    """Claim up to `limit` due deliveries of an active endpoint, in change order: sent one after
    another, they arrive exactly as one-at-a-time claims would send them (the batch stops before
    a delivery whose resource it already holds; one blocked by an open delivery outside it is
    passed over, as one-at-a-time claims pass it over)."""
    if limit < 1:
        return []
    ep = store.get_endpoint(tx.conn, endpoint_id)
    if ep is None or ep["status"] != "active":
        return []
    now = iso_ms(tx.now)
    rows: list[dict[str, Any]] = []
    held: set[str] = set()
    for row in store.due_in_order(tx.conn, endpoint_id, now, limit * 4 + 16):
        if row["resource_id"] in held or len(rows) == limit:
            break
        if row["blocked"]:
            continue
        held.add(row["resource_id"])
        rows.append(row)
    claimed = []
    for row in rows:
        number = row["attempts"] + 1
        attempt_id = store.start_attempt(tx.conn, row["id"], number, now)
        # next_attempt_at NULL + an in-flight attempt = "being sent"; still open, so it keeps
        # later deliveries of the same resource waiting.
        store.patch_delivery(
            tx.conn, row["id"], {"attempts": number, "last_attempt_at": now, "next_attempt_at": None, "updated_at": now}
        )
        claimed.append(
            Claim(
                row["id"],
                row["event_id"],
                row["payload"],
                attempt_id,
                number,
                ep["url"],
                ep["secret_enc"],
                row["last_attempt_at"],
                row["next_attempt_at"],
            )
        )
    return claimed


def release(tx: Tx, claimed: Claim) -> None:
    """Undo a claim whose request was never sent (the sender is stopping): as if never claimed."""
    store.delete_attempt(tx.conn, claimed.attempt_id)
    row = store.get_delivery(tx.conn, claimed.delivery_id)
    if row is None or row["status"] not in ("pending", "retrying") or row["next_attempt_at"] is not None:
        return
    store.patch_delivery(
        tx.conn,
        claimed.delivery_id,
        {
            "attempts": claimed.number - 1,
            "last_attempt_at": claimed.last_attempt_at,
            "next_attempt_at": claimed.due_at,
            "updated_at": iso_ms(tx.now),
        },
    )


def settle(
    tx: Tx,
    endpoint_id: str,
    finished: Sequence[tuple[Claim, Outcome]],
    want: int,
    *,
    unsent: Sequence[Claim] = (),
    schedule: Sequence[float] = policy.RETRY_SCHEDULE,
    jitter: float = policy.JITTER,
    disable_after: timedelta = policy.DISABLE_AFTER,
    rng: random.Random | None = None,
) -> tuple[list[str | None], list[Claim]]:
    """One transaction per round of an endpoint's sender: record the attempts that finished,
    release the claims it did not send, then claim up to `want` more. Returns the new statuses
    (as `record` returns them) and the new claims."""
    statuses = [
        record(tx, c, o, schedule=schedule, jitter=jitter, disable_after=disable_after, rng=rng) for c, o in finished
    ]
    for claimed in unsent:
        release(tx, claimed)
    return statuses, claim_batch(tx, endpoint_id, want)


def record(
    tx: Tx,
    claimed: Claim,
    outcome: Outcome,
    *,
    schedule: Sequence[float] = policy.RETRY_SCHEDULE,
    jitter: float = policy.JITTER,
    disable_after: timedelta = policy.DISABLE_AFTER,
    rng: random.Random | None = None,
) -> str | None:
    """Store an attempt's outcome; returns the delivery's new status (None if it is gone)."""
    now = iso_ms(tx.now)
    attempt_outcome = "succeeded" if outcome.ok else "failed"
    delivery = store.get_delivery(tx.conn, claimed.delivery_id)
    values: dict[str, Any] = {
        "last_status_code": outcome.status_code,
        "last_response_body": outcome.body,
        "last_error": outcome.error,
        "last_duration_ms": outcome.duration_ms,
        "updated_at": now,
    }
    if outcome.ok:
        values.update(status="succeeded", next_attempt_at=None, completed_at=now)
    else:
        delay = policy.retry_delay(claimed.number, outcome.retry_after, schedule, jitter, rng) if outcome.retryable else None
        if delay is None:
            values.update(status="failed", next_attempt_at=None, completed_at=now)
        else:
            attempt_outcome = "retry"
            values.update(status="retrying", next_attempt_at=iso_ms(tx.now + timedelta(seconds=delay)))
    store.finish_attempt(
        tx.conn,
        claimed.attempt_id,
        {
            "outcome": attempt_outcome,
            "finished_at": now,
            "status_code": outcome.status_code,
            "response_body": outcome.body,
            "error": outcome.error,
            "duration_ms": outcome.duration_ms,
        },
    )
    if delivery is None:
        return None
    if delivery["status"] in ("pending", "retrying"):
        store.patch_delivery(tx.conn, claimed.delivery_id, values)
    _endpoint_health(tx, delivery["endpoint_id"], outcome, disable_after)
    return values.get("status", delivery["status"])


def _endpoint_health(tx: Tx, endpoint_id: str, outcome: Outcome, disable_after: timedelta) -> None:
    ep = store.get_endpoint(tx.conn, endpoint_id)
    if ep is None:
        return
    now = iso_ms(tx.now)
    if outcome.ok:
        if ep["failing_since"] is not None:
            store.patch_endpoint(tx.conn, endpoint_id, {"failing_since": None})
        return
    since = ep["failing_since"] or now
    if ep["failing_since"] is None:
        store.patch_endpoint(tx.conn, endpoint_id, {"failing_since": since})
    started = parse_stored(since)
    if ep["status"] == "active" and started is not None and tx.now - started >= disable_after:
        last = outcome.error or f"HTTP {outcome.status_code}"
        reason = (
            f"disabled automatically: every delivery attempt failed since {since} "
            f"(last: {last}); fix the receiver, then PATCH status to active"
        )
        store.patch_endpoint(tx.conn, endpoint_id, {"status": "disabled", "disabled_reason": reason, "updated_at": now})
        store.close_open_deliveries(tx.conn, endpoint_id, "endpoint disabled after 3 days of failures", now)


def recover(tx: Tx) -> int:
    """At worker start: attempts left in flight by a previous process become retries due now."""
    now = iso_ms(tx.now)
    stale = store.interrupted_attempts(tx.conn)
    for attempt in stale:
        store.finish_attempt(tx.conn, attempt["id"], {"outcome": "interrupted", "finished_at": now, "error": INTERRUPTED})
        store.patch_delivery(tx.conn, attempt["delivery_id"], {"last_error": INTERRUPTED, "updated_at": now})
    store.reopen_stranded(tx.conn, now)
    return len(stale)


def prune(tx: Tx, retention: timedelta) -> int:
    """Finished deliveries older than the retention go, and so do changes older than it that every
    consumer of the change log has passed."""
    changes.prune(tx, tx.now - retention)
    return store.prune_deliveries(tx.conn, iso_ms(tx.now - retention))
