"""Records: every payload that entered Chronary from outside, kept to be searched and replayed.

Sources: `inbound` (a provider pushed it to a connection's inbound URL), `poll` (an item a poll
trigger found), `import` (`POST /connect/v1/records/import`, to backfill). Each new record is a
`record.received` change — a flow trigger like any other — and remembers the runs it started
(`record_executions`). A dedup key (the provider's delivery id, or the import's field) keeps a
payload once. Payloads over `record_payload_max_bytes` are refused (413); records older than
`record_retention_days` are pruned by the automation worker.

Replay runs, again, every enabled flow whose trigger matches the record (its own event type and
`record.received`), each run an execution marked `replay`.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

from chronary import ids
from chronary.errors import PayloadTooLarge, ValidationError
from chronary.schemas.records import (
    ImportError_,
    ImportResult,
    Record,
    RecordExecution,
    RecordImport,
    RecordKind,
    RecordList,
    RecordSummary,
    Replayed,
)
from chronary.services import changes
from chronary.services.automation import runs
from chronary.services.automation import triggers as trigger_rules
from chronary.services.context import Principal
from chronary.services.record_shapes import as_dict, load, obj
from chronary.store import automation as automation_store
from chronary.store import records as store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms

RECEIVED = "record.received"
__all__ = ["as_dict", "keep", "load", "obj"]
MAX_IMPORT = 10_000


def keep(
    tx: Tx,
    *,
    org_id: str,
    provider_type: str,
    resource_type: str,
    source: str,
    payload: Any,
    limit: int,
    connection_id: str | None = None,
    dedup_key: str | None = None,
) -> str | None:
    """Store one record and announce it (`record.received`); None when its dedup key was seen."""
    text = json.dumps(payload, separators=(",", ":"), default=str)
    if len(text.encode()) > limit:
        raise PayloadTooLarge(f"the payload is {len(text.encode())} bytes; records keep at most {limit}", "payload")
    record_id = ids.new_id("rec")
    row: dict[str, Any] = {
        "id": record_id,
        "org_id": org_id,
        "provider_type": provider_type,
        "resource_type": resource_type,
        "source": source,
        "connection_id": connection_id,
        "dedup_key": dedup_key,
        "payload": text,
        "size": len(text.encode()),
        "received_at": iso_ms(tx.now),
    }
    if not store.add(tx.conn, row):
        return None
    log_id = changes.record(tx, changes.Change(RECEIVED, obj(row, payload), agent_id=None))
    if log_id:
        link_runs(tx, record_id, log_id)
    return record_id


def link_runs(tx: Tx, record_id: str, log_id: str) -> None:
    """Remember the runs a change about this record queued (the listener ran in this transaction)."""
    for execution_id in automation_store.by_dedup(tx.conn, f"change:{log_id}"):
        store.link(tx.conn, record_id, execution_id, False)


# --- reading -------------------------------------------------------------------------------------


def _present(row: dict[str, Any], executions: list[dict[str, Any]]) -> Record:
    return Record(
        id=row["id"],
        object="record",
        provider_type=row["provider_type"],
        resource_type=row["resource_type"],
        source=row["source"],
        connection_id=row["connection_id"],
        dedup_key=row["dedup_key"],
        received_at=row["received_at"],
        size=row["size"],
        payload=json.loads(row["payload"]),
        executions=[
            RecordExecution(
                execution_id=e["execution_id"], flow_id=e["flow_id"], status=e["status"], replay=bool(e["replay"])
            )
            for e in executions
        ],
    )


def list_(
    tx: Tx,
    principal: Principal,
    provider_type: str | None,
    resource_type: str | None,
    source: str | None,
    search: str | None,
    page: int,
    limit: int,
) -> RecordList:
    principal.require("records.view")
    rows, total = store.list_(
        tx.conn, principal.org_id, provider_type, resource_type, source, search, limit, (page - 1) * limit
    )
    runs_of = store.executions_of(tx.conn, [r["id"] for r in rows])
    return RecordList(data=[_present(r, runs_of[r["id"]]) for r in rows], total=total, page=page, limit=limit)


def summary(tx: Tx, principal: Principal) -> RecordSummary:
    principal.require("records.view")
    kinds = [
        RecordKind(
            provider_type=r["provider_type"],
            resource_type=r["resource_type"],
            count=r["count"],
            first_seen=r["first_seen"],
            last_seen=r["last_seen"],
        )
        for r in store.summary(tx.conn, principal.org_id)
    ]
    return RecordSummary(data=kinds, total=sum(k.count for k in kinds))


def get(tx: Tx, principal: Principal, record_id: str) -> Record:
    principal.require("records.view")
    row = load(tx, principal, record_id)
    return _present(row, store.executions_of(tx.conn, [record_id])[record_id])


def delete(tx: Tx, principal: Principal, record_id: str) -> None:
    principal.require("records.write")
    load(tx, principal, record_id)
    store.delete(tx.conn, record_id)


# --- replay and import ---------------------------------------------------------------------------


def _replay_data(row: dict[str, Any], payload: Any) -> list[tuple[str, dict[str, Any]]]:
    """(change type, trigger data) the record stands for: its own event (inbound) and record.received."""
    out: list[tuple[str, dict[str, Any]]] = []
    if row["source"] == "inbound":
        event = {
            "id": row["id"],
            "object": "provider_event",
            "provider_type": row["provider_type"],
            "connection_id": row["connection_id"],
            "event": row["resource_type"],
            "received_at": row["received_at"],
            "payload": payload,
        }
        kind = f"{row['provider_type']}.{row['resource_type']}"
        out.append((kind, {"id": None, "type": kind, "data": {"object": event}, "object": event, "payload": payload}))
    record = obj(row, payload)
    out.append((RECEIVED, {"id": None, "type": RECEIVED, "data": {"object": record}, "object": record}))
    return out


def replay(tx: Tx, principal: Principal, record_id: str, limit: int) -> Replayed:
    principal.require("records.write")
    principal.require("actions.execute")
    row = load(tx, principal, record_id)
    payload = json.loads(row["payload"])
    started: list[str] = []
    for kind, data in _replay_data(row, payload):
        for trigger in automation_store.listening(tx.conn, kind):
            flow = automation_store.get_flow(tx.conn, trigger["flow_id"])
            if flow is None or flow["org_id"] != principal.org_id:
                continue
            if not principal.is_org and flow["agent_id"] != principal.agent_id:
                continue
            if not trigger_rules.matches(trigger, data, set()):
                continue
            execution_id = runs.enqueue(tx, flow, trigger, data, None, mode="replay", limit=limit)
            if execution_id:
                store.link(tx.conn, record_id, execution_id, True)
                started.append(execution_id)
    return Replayed(record_id=record_id, executions=started)


def _rows(data: RecordImport) -> list[Any]:
    if data.format == "json":
        if not isinstance(data.data, list):
            raise ValidationError("data must be an array of objects for format json", "data")
        return list(data.data)
    if not isinstance(data.data, str):
        raise ValidationError("data must be the CSV text (a header row, then one row per record)", "data")
    reader = csv.DictReader(io.StringIO(data.data))
    if not reader.fieldnames:
        raise ValidationError("the CSV has no header row", "data")
    return [dict(r) for r in reader]


def import_(tx: Tx, principal: Principal, data: RecordImport, limit: int) -> ImportResult:
    """Backfill records; every row is checked first, and any bad row imports nothing (400)."""
    principal.require("records.write")
    items = _rows(data)
    if len(items) > MAX_IMPORT:
        raise PayloadTooLarge(f"an import takes at most {MAX_IMPORT} records; split it", "data")
    errors: list[ImportError_] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(ImportError_(row=i, message="not an object"))
        elif data.dedup_key is not None and item.get(data.dedup_key) in (None, ""):
            errors.append(ImportError_(row=i, message=f"has no {data.dedup_key}"))
        elif len(json.dumps(item, default=str).encode()) > limit:
            errors.append(ImportError_(row=i, message=f"larger than the {limit}-byte record limit"))
    if errors:
        shown = "; ".join(f"rows[{e.row}]: {e.message}" for e in errors[:10])
        raise ValidationError(f"{len(errors)} row(s) cannot be imported, nothing was: {shown}", f"data[{errors[0].row}]")
    imported, duplicates = [], 0
    for item in items:
        key = f"import:{data.resource_type}:{item[data.dedup_key]}" if data.dedup_key else None
        record_id = keep(
            tx, org_id=principal.org_id, provider_type=data.provider_type, resource_type=data.resource_type,
            source="import", payload=item, limit=limit, dedup_key=key,
        )  # fmt: skip
        if record_id is None:
            duplicates += 1
        else:
            imported.append(record_id)
    return ImportResult(imported=len(imported), duplicates=duplicates, errors=[], record_ids=imported)


def prune(tx: Tx, retention: timedelta) -> int:
    return store.prune(tx.conn, iso_ms(tx.now - retention))
