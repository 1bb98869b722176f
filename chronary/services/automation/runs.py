"""Executions: queued durably, run step by step, every step logged, resumable after anything.

A run is queued (`enqueue`) in the transaction of whatever started it — the change that matched
a trigger, the cron tick, the poll that found an item — with a dedup key saying what that was,
so the same change, tick or item never starts two runs (a unique index, not a check). The
worker claims due runs with a lease (one process serves a database: on start it takes back the
runs a killed process left `running`) and walks the steps:

- a step's record is written (`running`, attempt n) and committed *before* its side effect; its
  output is written after. A crash in between re-runs that one step on recovery (at least once),
  and `http.request` steps send `Idempotency-Key: <execution>/<step path>` so a receiver can drop
  the repeat; steps already `succeeded` are never run again, their outputs are read back;
- transient failures (429, 5xx, timeouts, unreachable) are retried with backoff, up to the step's
  `retries`; anything else fails the run with the error and the step named;
- `filter` stops the run (succeeded, step `stopped`), `branch` records the side it took,
  `delay` parks the run (`waiting`, `run_after_ts`) in the database: it survives restarts;
- the step log's inputs and outputs are capped (`execution_payload_max_bytes`); trigger data is
  what the run works on, kept whole up to `record_payload_max_bytes` (what a record may hold);
  finished runs are pruned after `execution_retention_days`.

Templates (`templating`) see `trigger`, `steps.<id>.output`, `flow`, `execution` and `now`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from chronary import ids
from chronary.errors import ChronaryError, NotFound, Unauthorized
from chronary.schemas.automation import (
    TABLE_STEPS,
    ActionStep,
    BranchStep,
    DelayStep,
    Execution,
    ExecutionStep,
    FilterStep,
    HttpStep,
    Step,
)
from chronary.services.automation import effects
from chronary.services.context import Principal
from chronary.services.keys import granted
from chronary.store import automation as store
from chronary.store import keys as key_store
from chronary.store.db import Tx
from chronary.timeutil import from_ts, iso_ms, parse_stored, to_ts

if TYPE_CHECKING:
    from chronary.runtime import Runtime

log = logging.getLogger("chronary.automation")
OWNER = f"automation:{os.getpid()}:{secrets.token_hex(4)}"
LEASE_SECONDS = 300
BACKOFF_SECONDS = (2.0, 10.0, 60.0, 300.0, 900.0)  # after the 1st, 2nd, … failed attempt


# --- queueing ------------------------------------------------------------------------------------


def cap(value: Any, limit: int) -> Any:
    """The value, or a marker with a preview when its JSON is larger than `limit` bytes."""
    text = json.dumps(value, default=str)
    if len(text.encode()) <= limit:
        return value
    return {"truncated": True, "bytes": len(text.encode()), "preview": text[: min(1000, limit // 2)]}


def enqueue(
    tx: Tx,
    flow: dict[str, Any],
    trigger: dict[str, Any] | None,
    data: Any,
    dedup_key: str | None,
    *,
    mode: str = "trigger",
    replay_of: str | None = None,
    limit: int = 64 * 1024,
) -> str | None:
    """Queue a run; None when `dedup_key` already started one of this flow."""
    execution_id = ids.new_id("exe")
    created = store.create_execution(
        tx.conn,
        {
            "id": execution_id,
            "org_id": flow["org_id"],
            "flow_id": flow["id"],
            "trigger_id": trigger["id"] if trigger else None,
            "status": "queued",
            "mode": mode,
            "replay_of": replay_of,
            "dedup_key": dedup_key,
            "trigger_data": cap(data, limit),
            "run_after_ts": to_ts(tx.now),
            "created_at": iso_ms(tx.now),
        },
    )
    return execution_id if created else None


# --- shapes --------------------------------------------------------------------------------------


def present(row: dict[str, Any]) -> Execution:
    return Execution(
        id=row["id"],
        object="execution",
        flow_id=row["flow_id"],
        trigger_id=row["trigger_id"],
        status=row["status"],
        mode=row["mode"],
        replay_of=row["replay_of"],
        trigger_data=row["trigger_data"],
        error=row["error"],
        error_step=row["error_step"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        duration_ms=row["duration_ms"],
    )


def present_step(row: dict[str, Any]) -> ExecutionStep:
    return ExecutionStep(
        path=row["path"],
        step_id=row["step_id"],
        type=row["type"],
        status=row["status"],
        input=row["input"],
        output=row["output"],
        error=row["error"],
        attempts=row["attempts"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        duration_ms=row["duration_ms"],
    )


def decode_steps(raw: list[dict[str, Any]]) -> list[Step]:
    """The stored steps (the API's JSON) as structs again."""
    return msgspec.convert(raw, list[Step])


# --- who a run acts as ---------------------------------------------------------------------------


def flow_principal(tx: Tx, flow: dict[str, Any]) -> Principal:
    """The rights of the key that saved the flow, as they are now (revoked: no more runs)."""
    key = key_store.get(tx.conn, flow["created_by"]) if flow["created_by"] else None
    if key is None or key["revoked_at"] is not None:
        raise Unauthorized("The API key that saved this flow was revoked; save the flow again with a live key")
    return Principal(org_id=key["org_id"], key_id=key["id"], agent_id=key["agent_id"], permissions=granted(key))


# --- running -------------------------------------------------------------------------------------


@dataclass
class Stop:
    """A filter said no: the run ends, succeeded."""


@dataclass
class Wait:
    until_ts: int


@dataclass
class Retry:
    at_ts: int


@dataclass
class Fail:
    path: str
    error: str


Outcome = Stop | Wait | Retry | Fail | None


@dataclass
class Run:
    runtime: Runtime
    execution: dict[str, Any]
    flow: dict[str, Any]
    principal: Principal
    done: dict[str, dict[str, Any]]
    context: dict[str, Any]
    seq: int
    stepped: list[str] = field(default_factory=list)

    @property
    def limit(self) -> int:
        return self.runtime.settings.execution_payload_max_bytes

    def now(self) -> datetime:
        return self.runtime.clock.now()

    async def record(self, path: str, step: Step, **values: Any) -> None:
        previous = self.done.get(path) or {}
        row = {
            "execution_id": self.execution["id"],
            "path": path,
            "step_id": step.id,
            "type": type(step).__struct_config__.tag or "step",
            "status": previous.get("status", "running"),
            "input": previous.get("input"),
            "output": previous.get("output"),
            "error": previous.get("error"),
            "attempts": previous.get("attempts", 0),
            "started_at": previous.get("started_at"),
            "finished_at": previous.get("finished_at"),
            "duration_ms": previous.get("duration_ms"),
            "seq": previous.get("seq", self.seq),
            **values,
        }
        for key in ("input", "output"):
            row[key] = cap(row[key], self.limit)
        if "seq" not in previous:
            self.seq += 1
        self.done[path] = row
        await self.runtime.db.write(lambda tx: store.upsert_step(tx.conn, row))


def _tag(step: Step) -> str:
    return str(type(step).__struct_config__.tag)


async def run_execution(runtime: Runtime, execution_id: str) -> str:
    """Run (or resume) one claimed execution; answers its status afterwards."""

    def load(tx: Tx) -> tuple[dict[str, Any], dict[str, Any] | None, list[dict[str, Any]]]:
        exe = store.get_execution(tx.conn, execution_id)
        if exe is None:
            raise NotFound(f"No execution {execution_id}")
        return exe, store.get_flow(tx.conn, exe["flow_id"]), store.steps_of(tx.conn, execution_id)

    exe, flow, steps_done = await runtime.db.read(load)
    if flow is None:
        return "cancelled"
    if flow["status"] != "enabled" and exe["mode"] == "trigger":
        await _finish(runtime, exe, "cancelled", "the flow was disabled before this run started", None)
        return "cancelled"
    try:
        principal = await runtime.db.read(lambda tx: flow_principal(tx, flow))
    except Unauthorized as exc:
        await _finish(runtime, exe, "failed", str(exc), None)
        return "failed"
    if exe["started_at"] is None:
        stamp = iso_ms(runtime.clock.now())
        exe["started_at"] = stamp
        await runtime.db.write(lambda tx: store.patch_execution(tx.conn, execution_id, {"started_at": stamp}))
    done = {r["path"]: r for r in steps_done}
    context: dict[str, Any] = {
        "trigger": exe["trigger_data"],
        "steps": {r["step_id"]: {"output": r["output"], "status": r["status"]} for r in steps_done},
        "flow": {"id": flow["id"], "name": flow["name"]},
        "execution": {"id": exe["id"], "mode": exe["mode"]},
        "now": iso_ms(runtime.clock.now()),
    }
    run = Run(runtime, exe, flow, principal, done, context, seq=len(done))
    outcome = await _walk(run, decode_steps(flow["steps"]), "")
    if isinstance(outcome, Wait):
        await _park(runtime, exe, "waiting", outcome.until_ts)
        return "waiting"
    if isinstance(outcome, Retry):
        await _park(runtime, exe, "queued", outcome.at_ts)
        return "queued"
    if isinstance(outcome, Fail):
        await _finish(runtime, exe, "failed", outcome.error, outcome.path)
        return "failed"
    await _finish(runtime, exe, "succeeded", None, None)
    return "succeeded"


async def _park(runtime: Runtime, exe: dict[str, Any], status: str, at_ts: int) -> None:
    values = {"status": status, "run_after_ts": at_ts, "lease_owner": None, "lease_until_ts": None}
    await runtime.db.write(lambda tx: store.patch_execution(tx.conn, exe["id"], values))


async def _finish(runtime: Runtime, exe: dict[str, Any], status: str, error: str | None, path: str | None) -> None:
    now = runtime.clock.now()
    started = (parse_stored(exe["started_at"]) if exe["started_at"] else None) or now
    values = {
        "status": status,
        "error": error,
        "error_step": path,
        "finished_at": iso_ms(now),
        "duration_ms": max(0, int((now - started).total_seconds() * 1000)),
        "lease_owner": None,
        "lease_until_ts": None,
    }
    await runtime.db.write(lambda tx: store.patch_execution(tx.conn, exe["id"], values))


async def _walk(run: Run, steps: list[Step], base: str) -> Outcome:
    for i, step in enumerate(steps):
        path = f"{base}{i}"
        record = run.done.get(path)
        if record is not None and record["status"] in ("succeeded", "skipped"):
            run.context["steps"][step.id] = {"output": record["output"], "status": record["status"]}
            if isinstance(step, BranchStep):
                taken = (record["output"] or {}).get("taken")
                inner = await _walk(run, step.then if taken == "then" else step.otherwise, f"{path}.{taken}.")
                if inner is not None:
                    return inner
            continue
        if record is not None and record["status"] == "stopped":
            return Stop()
        outcome = await _step(run, step, path, record)
        if outcome is not None:
            return outcome
    return None


def _where(path: str) -> str:
    return "steps[" + path.replace(".", "][").replace("][then][", "].then[").replace("][else][", "].else[") + "]"


async def _step(run: Run, step: Step, path: str, record: dict[str, Any] | None) -> Outcome:
    from chronary.services.automation import templating  # jinja2, imported when first used

    where = _where(path)
    started = iso_ms(run.now())
    clock = time.monotonic()
    try:
        if isinstance(step, FilterStep):
            passed = templating.condition(step.condition, run.context, f"{where}.condition")
            status = "succeeded" if passed else "stopped"
            await run.record(path, step, status=status, output={"passed": passed}, started_at=started, finished_at=started)
            run.context["steps"][step.id] = {"output": {"passed": passed}, "status": status}
            return None if passed else Stop()
        if isinstance(step, BranchStep):
            taken = "then" if templating.condition(step.condition, run.context, f"{where}.condition") else "else"
            await run.record(
                path, step, status="succeeded", output={"taken": taken}, started_at=started, finished_at=started
            )
            run.context["steps"][step.id] = {"output": {"taken": taken}, "status": "succeeded"}
            return await _walk(run, step.then if taken == "then" else step.otherwise, f"{path}.{taken}.")
        if isinstance(step, DelayStep):
            return await _delay(run, step, path, record, where, started)
    except templating.TemplateError as exc:
        await run.record(path, step, status="failed", error=str(exc), started_at=started, finished_at=iso_ms(run.now()))
        return Fail(path, str(exc))
    return await _side_effect(run, step, path, record, where, started, clock)


async def _delay(run: Run, step: DelayStep, path: str, record: dict[str, Any] | None, where: str, started: str) -> Outcome:
    from chronary.services.automation import templating  # jinja2, imported when first used

    now_ts = to_ts(run.now())
    if record is not None and record["status"] == "waiting":
        resume = int((record["output"] or {}).get("resume_ts", now_ts))
    elif step.seconds is not None:
        resume = now_ts + step.seconds
    else:
        text = templating.render(step.until, run.context, f"{where}.until")
        try:
            resume = to_ts(datetime.fromisoformat(str(text).replace("Z", "+00:00")))
        except ValueError:
            raise templating.TemplateError(f"{where}.until", f"{text!r} is not an ISO 8601 instant") from None
    output = {"resume_ts": resume, "resume_at": iso_ms(from_ts(resume))}
    if resume > now_ts:
        await run.record(path, step, status="waiting", output=output, started_at=started)
        return Wait(resume)
    await run.record(path, step, status="succeeded", output=output, finished_at=iso_ms(run.now()))
    run.context["steps"][step.id] = {"output": output, "status": "succeeded"}
    return None


async def _side_effect(
    run: Run, step: Step, path: str, record: dict[str, Any] | None, where: str, started: str, clock: float
) -> Outcome:
    from chronary.services.automation import templating  # jinja2, imported when first used

    attempts = (record or {}).get("attempts", 0) + 1
    try:
        if isinstance(step, ActionStep):
            inputs = templating.render(step.inputs, run.context, f"{where}.inputs")
        elif isinstance(step, HttpStep):
            inputs = {
                "method": step.method,
                "url": templating.render(step.url, run.context, f"{where}.url"),
                "headers": templating.render(step.headers, run.context, f"{where}.headers"),
                "body": templating.render(step.body, run.context, f"{where}.body"),
            }
        elif isinstance(step, TABLE_STEPS):
            inputs = await effects.table_inputs(run.runtime, run.principal, step, run.context, where)
        else:  # every other step type is handled in _step
            raise AssertionError(_tag(step))
    except templating.TemplateError as exc:
        await run.record(path, step, status="failed", error=str(exc), attempts=attempts, started_at=started)
        return Fail(path, str(exc))
    # committed before the side effect: a crash from here on re-runs this step, never the earlier ones
    await run.record(path, step, status="running", input=inputs, attempts=attempts, started_at=started, error=None)
    retry_after: float | None = None
    try:
        if isinstance(step, ActionStep):
            output = await effects.action(run.runtime, run.principal, step, inputs)
        elif isinstance(step, HttpStep):
            output = await effects.http(run.runtime, f"{run.execution['id']}/{path}", inputs)
        else:
            output = await effects.table(run.runtime, run.principal, step, inputs)
    except effects.Transient as exc:
        error, retry_after = exc.message, exc.retry_after
    except (ChronaryError, effects.Permanent) as exc:
        await _failed(run, step, path, str(exc), clock)
        return Fail(path, str(exc))
    else:
        duration = int((time.monotonic() - clock) * 1000)
        await run.record(path, step, status="succeeded", output=output, finished_at=iso_ms(run.now()), duration_ms=duration)
        run.context["steps"][step.id] = {"output": output, "status": "succeeded"}
        return None
    retries = step.retries if isinstance(step, (ActionStep, HttpStep)) else 0
    if attempts > retries:
        message = f"{error} (gave up after {attempts} attempt{'s' if attempts > 1 else ''})"
        await _failed(run, step, path, message, clock)
        return Fail(path, message)
    wait = max(BACKOFF_SECONDS[min(attempts - 1, len(BACKOFF_SECONDS) - 1)], retry_after or 0.0)
    await run.record(path, step, status="retrying", error=error, duration_ms=int((time.monotonic() - clock) * 1000))
    return Retry(to_ts(run.now()) + max(1, math.ceil(wait)))


async def _failed(run: Run, step: Step, path: str, error: str, clock: float) -> None:
    duration = int((time.monotonic() - clock) * 1000)
    await run.record(path, step, status="failed", error=error, finished_at=iso_ms(run.now()), duration_ms=duration)


# --- the worker's side: claiming, recovery, pruning ----------------------------------------------


def claim_due(tx: Tx, default_concurrency: int, limit: int = 20) -> list[str]:
    """Take due runs (respecting each flow's concurrency) under this process's lease."""
    now_ts = to_ts(tx.now)
    taken: list[str] = []
    running: dict[str, int] = {}
    for exe in store.claimable(tx.conn, now_ts, limit):
        flow = store.get_flow(tx.conn, exe["flow_id"])
        if flow is None:
            continue
        allowed = flow["concurrency"] or default_concurrency
        busy = running.setdefault(flow["id"], store.running_count(tx.conn, flow["id"], now_ts))
        if busy >= allowed:
            continue
        if store.claim(tx.conn, exe["id"], OWNER, now_ts, now_ts + LEASE_SECONDS):
            running[flow["id"]] = busy + 1
            taken.append(exe["id"])
    return taken


def recover(tx: Tx) -> int:
    """On start: runs another (killed) process left running are due again, now."""
    return store.requeue_foreign(tx.conn, OWNER, to_ts(tx.now))


def prune(tx: Tx, retention: timedelta) -> int:
    return store.prune_executions(tx.conn, iso_ms(tx.now - retention))


async def run_now(runtime: Runtime, execution_id: str) -> None:
    """Claim one queued run and execute it in the caller (the test endpoint: "runs now"), or wait
    until the worker that claimed it first has finished or parked it."""
    claimed = await runtime.db.write(lambda tx: store.claim_one(tx.conn, execution_id, OWNER, tx.now))
    if claimed:
        await run_execution(runtime, execution_id)
    else:  # the worker was quicker: wait for its answer
        await wait_for(runtime, execution_id, timeout=60.0)


async def wait_for(runtime: Runtime, execution_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Poll until the run is finished or parked (tests and `POST /flows/{id}/test`)."""
    deadline = time.monotonic() + timeout
    while True:
        exe = await runtime.db.read(lambda tx: store.get_execution(tx.conn, execution_id))
        assert exe is not None
        if exe["status"] in ("succeeded", "failed", "cancelled", "waiting") or time.monotonic() > deadline:
            return exe
        await asyncio.sleep(0.05)
