"""The time-driven triggers: cron schedules, polls and `event.starting`, fired by the worker.

Each due trigger is handled in its own transaction that queues the runs *and* moves the
trigger's state (last tick, poll cursor, scan cursor) together, and every run carries a dedup
key (`tick:<instant>`, `poll:<item>`, `starting:<occurrence>:<start>:<minutes>`), so a crash or a
restart between the two can neither lose a firing nor double it. After downtime, what was missed
within `moments_grace_minutes` (at least a minute, as for the moments) still fires (a schedule
fires its latest missed tick once); older is skipped. A poll's action runs outside any
transaction (it goes to the network), through the same `run_action` as everything else:
rate-limited, audited, with the flow's key's rights.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from chronary.errors import ChronaryError, PayloadTooLarge
from chronary.services import moments, records
from chronary.services.automation import cron, runs
from chronary.services.automation import triggers as trigger_rules
from chronary.services.automation.poll import PollCursor, new_items, value_at
from chronary.services.connect import calls
from chronary.services.context import Ctx
from chronary.services.event_present import present as present_event
from chronary.store import automation as store
from chronary.store import calendars as cal_store
from chronary.store import records as record_store
from chronary.store.db import Tx
from chronary.timeutil import from_ts, iso_ms, parse_stored, to_ts

if TYPE_CHECKING:
    from chronary.runtime import Runtime

log = logging.getLogger("chronary.automation")
STARTING_SCAN_SECONDS = 1
# every trigger due is looked at each tick: an idle event.starting scan writes nothing, so its
# trigger stays due (oldest first), and a small page of those would starve the schedules and
# polls due behind them
DUE_LIMIT = 5000


async def fire_due(runtime: Runtime) -> int:
    """Handle every due time-driven trigger; answers how many runs were queued."""
    now_ts = to_ts(runtime.clock.now())
    due = await runtime.db.read(lambda tx: store.due_triggers(tx.conn, now_ts, DUE_LIMIT))
    queued = 0
    for trigger in due:
        try:
            if trigger["kind"] == "schedule":
                queued += await runtime.db.write(partial(_schedule, runtime=runtime, trigger=trigger))
            elif trigger["kind"] == "poll":
                queued += await _poll(runtime, trigger)
            elif trigger["trigger_name"] == trigger_rules.STARTING and await runtime.db.read(
                partial(_starting_due, runtime=runtime, trigger=trigger)
            ):
                queued += await runtime.db.write(partial(_starting, runtime=runtime, trigger=trigger))
        except Exception:  # one broken trigger must not stop the others
            log.exception("trigger %s failed", trigger["id"])
            await runtime.db.write(partial(_later, trigger_id=trigger["id"], at_ts=now_ts + 60))
    return queued


def _grace(runtime: Runtime) -> timedelta:
    """How far back a scan reaches: the grace, but at least what the moments scan reaches (worker
    delays are not downtime: with a grace of 0 a tick a second late would otherwise fire nothing)."""
    return timedelta(seconds=max(60 * runtime.settings.moments_grace_minutes, moments.MIN_GRACE_SECONDS))


def _later(tx: Tx, trigger_id: str, at_ts: int) -> None:
    store.patch_trigger(tx.conn, trigger_id, {"next_run_ts": at_ts})


def _cap(runtime: Runtime) -> int:
    return runtime.settings.record_payload_max_bytes


def _fresh(tx: Tx, trigger: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The trigger and its flow as they are now (it may have been deleted or disabled since the read)."""
    current = store.get_trigger(tx.conn, trigger["id"])
    if current is None:
        return None
    flow = store.get_flow(tx.conn, current["flow_id"])
    if flow is None or flow["status"] != "enabled":
        return None
    return current, flow


def _schedule(tx: Tx, runtime: Runtime, trigger: dict[str, Any]) -> int:
    found = _fresh(tx, trigger)
    if found is None:
        return 0
    trigger, flow = found
    config, state = trigger["config"], dict(trigger["state"] or {})
    last = parse_stored(state["last_fired"]) if state.get("last_fired") else None
    ticks, following = cron.due(config["cron"], config["timezone"], last, tx.now, _grace(runtime))
    queued = 0
    for tick in ticks:
        data = {
            "type": "schedule",
            "scheduled_at": iso_ms(tick),
            "fired_at": iso_ms(tx.now),
            "cron": config["cron"],
            "timezone": config["timezone"],
            **_local_day(tick, config["timezone"]),
        }
        if runs.enqueue(tx, flow, trigger, data, f"tick:{iso_ms(tick)}", limit=_cap(runtime)):
            queued += 1
        state["last_fired"] = iso_ms(tick)
    if not ticks and last is None:
        state["last_fired"] = None
    values = {"state": state, "next_run_ts": to_ts(following) if following else None}
    store.patch_trigger(tx.conn, trigger["id"], values)
    return queued


def _local_day(moment: datetime, zone_name: str) -> dict[str, str]:
    """The tick's local date and that day's bounds as UTC instants ("today's agenda" flows)."""
    zone = ZoneInfo(zone_name)
    local = moment.astimezone(zone)
    start = datetime.combine(local.date(), time(0), tzinfo=zone)
    end = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)
    return {"local_date": local.date().isoformat(), "day_start": iso_ms(start), "day_end": iso_ms(end)}


def _starting_window(tx: Tx, runtime: Runtime, trigger: dict[str, Any]) -> tuple[int, int]:
    now_ts = to_ts(tx.now)
    oldest = now_ts - int(_grace(runtime).total_seconds())
    return max(int((trigger["state"] or {}).get("cursor") or now_ts), oldest), now_ts


def _starting_due(tx: Tx, runtime: Runtime, trigger: dict[str, Any]) -> bool:
    """Anything to fire, or a cursor a minute old? Else the scan writes nothing (idle ticks stay
    read-only: a commit would wake every worker); the next scan covers the longer window."""
    after, now_ts = _starting_window(tx, runtime, trigger)
    if now_ts - after >= 60:
        return True
    return bool(moments.occurrences_at(tx, "start", int(trigger["config"]["minutes"]), after, now_ts))


def _starting(tx: Tx, runtime: Runtime, trigger: dict[str, Any]) -> int:
    found = _fresh(tx, trigger)
    if found is None:
        return 0
    trigger, flow = found
    config, state = trigger["config"], dict(trigger["state"] or {})
    after, now_ts = _starting_window(tx, runtime, trigger)
    queued = 0
    calendars: dict[str, dict[str, Any]] = {}
    for row, at_ts in moments.occurrences_at(tx, "start", int(config["minutes"]), after, now_ts):
        calendar = calendars.get(row["calendar_id"]) or cal_store.get(tx.conn, row["calendar_id"])
        if calendar is None:
            continue
        calendars[row["calendar_id"]] = calendar
        event = present_event(row, calendar)
        agent_ids = {calendar["agent_id"]} if calendar.get("agent_id") else set()
        if flow["agent_id"] is not None and flow["agent_id"] not in agent_ids:
            continue
        data = {
            "type": trigger_rules.STARTING,
            "minutes": config["minutes"],
            "fires_at": iso_ms(from_ts(at_ts)),
            "event": event,
            "object": event,
            "data": {"object": event},
        }
        if not trigger_rules.matches(trigger, data, agent_ids):
            continue
        # the lead time is part of the key: a flow whose trigger changed from 30 to 15 minutes
        # before fires at the new one too (a re-added trigger with the same minutes does not)
        key = f"starting:{row['id']}:{row['start_ts']}:{config['minutes']}"
        if runs.enqueue(tx, flow, trigger, data, key, limit=_cap(runtime)):
            queued += 1
    state["cursor"] = now_ts
    store.patch_trigger(tx.conn, trigger["id"], {"state": state, "next_run_ts": now_ts + STARTING_SCAN_SECONDS})
    return queued


def _items(output: Any, path: str | None) -> list[dict[str, Any]]:
    found = output
    for part in (path or "").split("."):
        if not part:
            continue
        found = found.get(part) if isinstance(found, dict) else None
    if isinstance(found, dict):
        for name in ("data", "items", "results"):
            if isinstance(found.get(name), list):
                found = found[name]
                break
    return [i for i in found if isinstance(i, dict)] if isinstance(found, list) else []


async def _poll(runtime: Runtime, trigger: dict[str, Any]) -> int:
    found = await runtime.db.read(lambda tx: _fresh(tx, trigger))
    if found is None:
        return 0
    trigger, flow = found
    config = trigger["config"]
    now_ts = to_ts(runtime.clock.now())
    try:
        principal = await runtime.db.read(lambda tx: runs.flow_principal(tx, flow))
        ctx = Ctx(principal=principal, base_url=runtime.settings.base_url)
        result = await calls.run_action(
            runtime, ctx, trigger["provider_type"], trigger["trigger_name"], dict(config.get("inputs", {})),
            trigger["connection_id"],
        )  # fmt: skip
        status = result.output.get("status") if isinstance(result.output, dict) else None
        # the http request action answers an API's errors as output; for a poll they are failures
        error = f"the API answered HTTP {status}" if isinstance(status, int) and status >= 400 else None
        items = [] if error else _items(result.output, config.get("itemsPath"))
    except ChronaryError as exc:
        error, items = f"{exc.type}: {exc}", []

    def store_poll(tx: Tx) -> int:
        current = _fresh(tx, trigger)
        if current is None:
            return 0
        fresh, flow_now = current
        state = dict(fresh["state"] or {})
        values: dict[str, Any] = {"next_run_ts": now_ts + int(config["intervalSeconds"])}
        if error is not None:
            state["last_error"] = error
            log.warning("poll trigger %s: %s", fresh["id"], error)
            store.patch_trigger(tx.conn, fresh["id"], {**values, "state": state})
            return 0
        cursor = PollCursor.from_json(state.get("cursor"))
        key, updated = config.get("key", "id"), config.get("updated", "updated_at")
        fresh_items, cursor = new_items(items, cursor, key=key, updated=updated)
        queued = 0
        for item in fresh_items:
            item_key = f"{value_at(item, key)}@{value_at(item, updated)}"
            record_id = _keep_item(tx, runtime, fresh, item, item_key)
            data = {"type": "poll", "item": item, "polled_at": iso_ms(tx.now), "object": item, "record_id": record_id}
            execution_id = runs.enqueue(tx, flow_now, fresh, data, f"poll:{item_key}", limit=_cap(runtime))
            if execution_id:
                queued += 1
                if record_id:
                    record_store.link(tx.conn, record_id, execution_id, False)
        state.update(cursor=cursor.to_json(), last_error=None)
        store.patch_trigger(tx.conn, fresh["id"], {**values, "state": state})
        return queued

    return await runtime.db.write(store_poll)


def _keep_item(tx: Tx, runtime: Runtime, trigger: dict[str, Any], item: dict[str, Any], item_key: str) -> str | None:
    """Every polled item is a record too (source poll), like every inbound delivery; one too big
    to keep still starts its run, it just is not kept."""
    try:
        return records.keep(
            tx,
            org_id=trigger["org_id"],
            provider_type=trigger["provider_type"],
            resource_type=trigger["trigger_name"],
            source="poll",
            payload=item,
            limit=runtime.settings.record_payload_max_bytes,
            connection_id=trigger["connection_id"],
            dedup_key=f"poll:{trigger['id']}:{item_key}",
        )
    except PayloadTooLarge:
        return None
