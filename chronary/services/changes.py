"""One path for every change: `record(tx, change)`, and the consumers that act on changes.

Every writer — the events service, iCal subscription imports, the sync merge, calendar
re-anchoring, hold expiry, and every service that announces agent.*, calendar.*, proposal.*,
connection.* or ical_subscription.* changes (through `outbox.emit`, a thin wrapper) — hands each
change to `record`, inside the transaction that makes it. A `Change` says what changed (its
webhook type and the public object, with the old values of the changed fields), whom it concerns
(the owning agent and an audience of other agents), and where it came from (`origin`). Changes to
stored event rows also carry `kind` (created | updated | deleted), the before/after rows and the
calendar row: what in-transaction listeners need.

`record` does, in this order, in the caller's transaction:
1. for an event-row change, moves the calendar's `revision` (once per calendar and transaction,
   or commit group: feed caches and sync cursors key on it);
2. for a change with a type, appends it to the durable change log (store/changes.py: table
   `changes`, payload in the exact webhook shape, written only when some consumer `wants` the
   change: with no webhook endpoint that could receive it, nobody would read it) — so it commits
   or rolls back with the change;
3. calls the in-transaction listeners the runtime registered (`Tx.changes`, a `Pipeline` built by
   `chronary.runtime.open_runtime`; nothing registers itself on import). A listener runs inside
   the same transaction, so it sees each change exactly once by construction: if the
   transaction rolls back, so does whatever the listener wrote.

Async consumers (webhook fan-out today; automation triggers and MCP notifications later) read the
log after their own cursor (`change_cursors`) with `consume(db, name, handler, batch)`: the
handler runs in the write transaction that also moves the cursor, so what it writes happens
exactly once per change, in seq order, across crashes and restarts. Writes are serialized on one
writer connection, so seq order is commit order and a consumer never skips a change that commits
later with a smaller seq. A handler with effects outside the database (a network call) is
at-least-once: record the intent in the handler, act on it after the commit. A change's payload
is kept only while some cursor has not passed it (`consume_batch` drops it then); `prune`
forgets the rest of old changes only once every cursor has passed them.

A consumer is woken (the signal of its name, notified after the commit) only by a transaction
that logged a change it `wants` (the webhook consumer: a change some endpoint could receive);
otherwise it reads the log on its own schedule.

Changes without a type are bookkeeping steps of a larger change (the exception rows deleted with
their series, the EXDATE added to a series when one occurrence is deleted): they move the
revision and reach in-transaction listeners but are not logged; the change they belong to is.
Changes with `webhook=False` are logged for consumers but never sent as webhooks (events
imported from subscriptions and a connection's first import, which never produced webhooks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from chronary import ids
from chronary.store import calendars as cal_store
from chronary.store import changes as store
from chronary.store.db import Tx
from chronary.store.rows import dumps
from chronary.timeutil import iso_ms

if TYPE_CHECKING:
    from chronary.store.db import Database

# A resource as a service returns it: its msgspec struct (schemas/*), or a dict of the same shape
# from services that still answer with dicts.
Resource = msgspec.Struct | Mapping[str, Any]

KINDS = ("created", "updated", "deleted")
_JSON = msgspec.json.Encoder()
ORIGIN_PREFIXES = ("sync:", "subscription:", "inbound:")


def plain(obj: Resource) -> dict[str, Any]:
    """JSON-ready form of a resource: a struct becomes a dict in field order (as the API encodes
    it), nested structs included; a dict is taken as it is."""
    if isinstance(obj, msgspec.Struct):
        out: dict[str, Any] = msgspec.to_builtins(obj)
        return out
    return obj if isinstance(obj, dict) else dict(obj)


def changed_fields(before: Resource, after: Resource, ignore: tuple[str, ...] = ("updated_at",)) -> dict[str, Any]:
    """Old values of the fields that changed: the `previous` part of an *.updated payload."""
    old, new = plain(before), plain(after)
    return {k: old.get(k) for k in new if k not in ignore and old.get(k) != new.get(k)}


def check_origin(origin: str) -> str:
    """`api`, `system`, `sync:<connection id>`, `subscription:<subscription id>` or
    `inbound:<connection id>` (a provider pushed it to Connect's inbound URL)."""
    if origin in ("api", "system") or any(origin.startswith(p) and len(origin) > len(p) for p in ORIGIN_PREFIXES):
        return origin
    raise ValueError(f"unknown change origin {origin!r}")


def sync_origin(connection_id: str) -> str:
    return f"sync:{connection_id}"


def subscription_origin(subscription_id: str) -> str:
    return f"subscription:{subscription_id}"


def inbound_origin(connection_id: str) -> str:
    return f"inbound:{connection_id}"


@dataclass(frozen=True, eq=False)
class Change:
    """One change, as its writer describes it (see the module docstring)."""

    type: str | None  # the webhook type (event.updated, agent.created, …); None: bookkeeping only
    object: Resource | None = None  # the resource as the API returns it (the payload's data.object)
    previous: dict[str, Any] | None = None  # old values of the changed fields (*.updated)
    agent_id: str | None = None  # the agent that owns the change
    audience: Iterable[str] = ()  # other agents it concerns (proposal participants)
    origin: str | None = None  # None: the transaction's origin (Tx.origin)
    webhook: bool = True  # False: logged for consumers, never sent as a webhook
    # event-row changes only
    kind: str | None = None  # created | updated | deleted
    before: dict[str, Any] | None = None  # the stored row before (None when created)
    after: dict[str, Any] | None = None  # the stored row after (None when deleted)
    calendar: dict[str, Any] | None = None  # the calendar row of the event
    log_id: str | None = None  # set by `record`: the change's payload id (whe_…) once logged

    @property
    def row(self) -> dict[str, Any] | None:
        return self.after if self.after is not None else self.before


Listener = Callable[[Tx, Change], None]
Handler = Callable[[Tx, list[dict[str, Any]]], None]
Idle = Callable[[Tx], bool]
Wants = Callable[[Tx, Change], bool]


def _always(tx: Tx, change: Change) -> bool:
    return True


class Pipeline:
    """What a change reaches, assembled by `chronary.runtime.open_runtime` and carried by every
    Tx (`Database.changes` → `Tx.changes`): in-transaction listeners by name, and the names of
    async consumers (each has a cursor from the first start that declares it)."""

    def __init__(self) -> None:
        self.listeners: list[tuple[str, Listener]] = []
        self.consumers: list[str] = []
        self.wants: dict[str, Wants | None] = {}
        self._when: dict[str, Wants] = {}

    def listen(self, name: str, listener: Listener, when: Wants | None = None) -> None:
        """Register an in-transaction listener; `when`, a cheap check, skips it for changes it
        could have nothing to do with (it must say yes whenever the listener would act)."""
        if any(n == name for n, _ in self.listeners):
            raise ValueError(f"listener {name!r} is already registered")
        self.listeners.append((name, listener))
        self._when[name] = when or _always

    def call_listeners(self, tx: Tx, change: Change) -> None:
        for name, listener in self.listeners:
            if self._when.get(name, _always)(tx, change):
                listener(tx, change)

    def consumer(self, name: str, wants: Wants | None = None) -> None:
        """Declare an async consumer. A transaction that logs a change it `wants` (every logged
        change without `wants`) notifies the signal named `name` once it has committed."""
        if name not in self.consumers:
            self.consumers.append(name)
        self.wants[name] = wants

    def wake(self, tx: Tx, change: Change) -> bool:
        """Mark the consumers this logged change gives work, for `Database` to wake after commit;
        False when it gives none any (nobody will read its payload)."""
        wanted = False
        for name in self.consumers:
            wants = self.wants.get(name)
            if wants is None or wants(tx, change):
                tx.wake.add(name)
                wanted = True
        return wanted

    def declare(self, tx: Tx) -> None:
        """Give every declared consumer its cursor (a new one starts after the newest change)."""
        for name in self.consumers:
            store.ensure_cursor(tx.conn, name)


def record(tx: Tx, change: Change) -> str | None:
    """Record `change` in the caller's transaction; returns its payload id (`whe_…`) when logged."""
    origin = check_origin(change.origin or tx.origin)
    event_id = ids.new_id("whe") if change.type is not None else None
    if change.origin != origin or event_id is not None:  # one copy: it is on every write's path
        change = dataclasses.replace(change, origin=origin, log_id=event_id)
    if change.kind is not None:
        _check_event_change(change)
        assert change.calendar is not None
        bumped: set[str] = tx.scratch.setdefault("changes.revision_bumped", set())
        if change.calendar["id"] not in bumped:
            bumped.add(change.calendar["id"])
            cal_store.bump_revision(tx.conn, change.calendar["id"])
    pipeline: Pipeline | None = tx.changes
    if event_id is not None:
        # a change no consumer wants now (no webhook endpoint could receive it) is logged without
        # its payload: nobody would ever read it, and it is most of what a write adds to the file
        _append(tx, change, origin, event_id, with_payload=pipeline is None or pipeline.wake(tx, change))
    if pipeline is not None:
        pipeline.call_listeners(tx, change)
    return event_id


def _check_event_change(change: Change) -> None:
    if change.kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {change.kind!r}")
    if change.calendar is None or change.row is None:
        raise ValueError("an event change needs its calendar row and its before or after row")


def _append(tx: Tx, change: Change, origin: str, event_id: str, *, with_payload: bool) -> None:
    assert change.type is not None
    body = plain(change.object) if change.object is not None else {}
    created = iso_ms(tx.now)
    payload = None
    if with_payload:
        data: dict[str, Any] = {"object": body}
        if change.previous:
            data["previous"] = change.previous
        payload = _JSON.encode({"id": event_id, "type": change.type, "created_at": created, "data": data}).decode()
    audience = list(change.audience)
    if change.calendar is not None:
        calendar_id = change.calendar["id"]
    elif change.type.startswith("calendar."):
        calendar_id = body.get("id")
    else:
        calendar_id = body.get("calendar_id")
    store.append(
        tx.conn,
        {
            "id": event_id,
            "type": change.type,
            "resource_id": body.get("id", ""),
            "agent_id": change.agent_id,
            "audience": dumps(sorted({a for a in audience if a and a != change.agent_id})) if audience else None,
            "calendar_id": calendar_id,
            "origin": origin,
            "webhook": 1 if change.webhook else 0,
            "payload": payload,  # compact UTF-8 JSON (msgspec, like rows.dumps), or None
            "created_at": created,
        },
    )


# -- async consumers ------------------------------------------------------------------------------


def pending(tx: Tx, name: str) -> bool:
    """Anything after the consumer's cursor? Read-only, so an idle consumer never writes."""
    seq = store.cursor(tx.conn, name)
    return True if seq is None else store.any_after(tx.conn, seq)


def consume_batch(tx: Tx, name: str, handler: Handler, batch: int = 500, idle: Idle | None = None) -> int:
    """In one write transaction: the next `batch` changes after the cursor go to `handler` (oldest
    first, rows of store/changes.after), then the cursor moves past them, and the payloads every
    cursor has now passed are dropped (nobody will read them again). Returns how many. When
    `idle(tx)` says the handler has nothing to do with any change now (webhooks: no endpoint),
    the cursor moves past every change at once, unread."""
    seq = store.ensure_cursor(tx.conn, name)
    if idle is not None and idle(tx):
        return _pass_all(tx, name, seq)
    rows = store.after(tx.conn, seq, batch)
    if not rows:
        return 0
    passed = store.passed_by_all(tx.conn)
    handler(tx, rows)
    store.advance(tx.conn, name, rows[-1]["seq"])
    store.drop_payloads(tx.conn, passed, store.passed_by_all(tx.conn))
    return len(rows)


def _pass_all(tx: Tx, name: str, seq: int) -> int:
    newest = store.high_water(tx.conn)
    if newest <= seq:
        return 0
    passed = store.passed_by_all(tx.conn)
    count = store.count_between(tx.conn, seq, newest)
    store.advance(tx.conn, name, newest)
    store.drop_payloads(tx.conn, passed, store.passed_by_all(tx.conn))
    return count


async def consume(db: Database, name: str, handler: Handler, batch: int = 500, idle: Idle | None = None) -> int:
    """Hand every change after the consumer's cursor to `handler`, a batch per transaction, until
    caught up; returns how many changes were handled (or passed: see `consume_batch`'s `idle`)."""
    total = 0
    while await db.read(lambda tx: pending(tx, name)):
        n = await db.write(lambda tx: consume_batch(tx, name, handler, batch, idle))
        total += n
        if n < batch:
            break
    return total


def prune(tx: Tx, older_than: datetime) -> int:
    """Forget changes created before `older_than` that every consumer's cursor has passed."""
    return store.prune(tx.conn, iso_ms(older_than))
