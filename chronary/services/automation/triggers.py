"""What starts a flow: a trigger subscription (trg_), checked when saved, matched when things happen.

Kinds:
- ``event`` (providerType chronary): every change type webhooks carry (`event.created`,
  `event.hold_expired`, `proposal.resolved`, `connection.error`, `event.started`,
  `event.reminder`, …; `config.also` lists more types the same trigger fires on) — matched by
  the in-transaction change listener `on_change`, so the run is queued in the very transaction
  of the change; and `event.starting` (`config.minutes` before
  each occurrence's start), found by the automation worker's scan. Filters in config: `agentId`,
  `calendarId`, `where` ({dotted.path: value} on the changed object) and `condition` (a template
  expression over `trigger`).
- ``webhook``: what a provider pushed to Connect's inbound URL (`telegram` + `message`, `slack` +
  `app_mention`, …; `connectionId` narrows it to one connection) — also changes, also matched
  in their transaction.
- ``schedule`` (chronary + `cron`): `config.cron` in `config.timezone`, fired by the worker.
- ``poll``: a provider action (`triggerName` = the action, `config.inputs`) run every
  `config.intervalSeconds`; each new item of `config.itemsPath` in its output fires once
  (`config.key`, `config.updated` name the item's id and timestamp fields).
"""

from __future__ import annotations

from typing import Any

from chronary import ids
from chronary.errors import NotFound, ValidationError
from chronary.schemas.automation import TriggerCreate
from chronary.services import changes
from chronary.services.automation import cron, runs
from chronary.services.automation.poll import PollCursor
from chronary.services.connect import catalogue as org_catalogue
from chronary.services.connect.connections import receives_inbound
from chronary.services.context import Principal
from chronary.store import automation as store
from chronary.store import connections as con_store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms, to_ts
from chronary.webhooks.types import EVENT_TYPES

STARTING = "event.starting"
CRON = "cron"
FILTER_KEYS = ("agentId", "calendarId", "where", "condition")
MIN_POLL_SECONDS = 10


def _bad(where: str | None, field: str, message: str) -> ValidationError:
    param = f"{where}.{field}" if where else field
    return ValidationError(f"{param}: {message}", param)


def _check_filters(config: dict[str, Any], allowed: tuple[str, ...], where: str | None) -> None:
    for key in config:
        if key not in allowed:
            raise _bad(where, f"config.{key}", f"not a setting of this trigger (it takes {', '.join(allowed) or 'none'})")
    if "where" in config and not isinstance(config["where"], dict):
        raise _bad(where, "config.where", "must be an object of dotted.path: value")
    for key in ("agentId", "calendarId"):
        if key in config and not isinstance(config[key], str):
            raise _bad(where, f"config.{key}", "must be a string id")
    if "condition" in config:
        if not isinstance(config["condition"], str):
            raise _bad(where, "config.condition", "must be an expression string")
        param = f"{where}.config.condition" if where else "config.condition"
        from chronary.services.automation import templating  # jinja2, imported when first used

        try:
            templating.check_condition(config["condition"], param)
        except templating.TemplateError as exc:
            raise ValidationError(str(exc), exc.where) from None


def create(tx: Tx, principal: Principal, flow: dict[str, Any], data: TriggerCreate, where: str | None) -> dict[str, Any]:
    """Check the trigger and store it (`where` prefixes error params when it came inside a flow)."""
    config = dict(data.config)
    now_ts = to_ts(tx.now)
    match_types: list[str] = []
    next_run: int | None = None
    state: dict[str, Any] | None = None
    try:
        provider = org_catalogue.get(tx, principal.org_id, data.provider_type)
    except NotFound:
        raise _bad(where, "providerType", f"no provider {data.provider_type!r}") from None
    if data.connection_id is not None:
        con = con_store.get(tx.conn, data.connection_id)
        if con is None or con["org_id"] != principal.org_id or con["provider"] != provider.type:
            raise _bad(where, "connectionId", f"no {provider.type} connection {data.connection_id}")
    if data.kind == "event":
        if provider.type != "chronary":
            raise _bad(where, "providerType", "event triggers are Chronary's own changes: providerType chronary")
        if data.trigger_name == STARTING:
            minutes = config.get("minutes")
            if not isinstance(minutes, int) or isinstance(minutes, bool) or not 0 <= minutes <= 7 * 24 * 60:
                raise _bad(where, "config.minutes", "event.starting needs minutes before the start (0-10080)")
            _check_filters({k: v for k, v in config.items() if k != "minutes"}, FILTER_KEYS, where)
            next_run, state = now_ts, {"cursor": now_ts}
        elif data.trigger_name in EVENT_TYPES:
            _check_filters(config, (*FILTER_KEYS, "also"), where)
            also = config.get("also", [])
            if not isinstance(also, list) or any(t not in EVENT_TYPES for t in also):
                raise _bad(where, "config.also", "a list of further change types this trigger also fires on")
            match_types = list(dict.fromkeys([data.trigger_name, *also]))
        else:
            raise _bad(where, "triggerName", f"unknown change type {data.trigger_name!r} (or event.starting)")
    elif data.kind == "webhook":
        events = {e.name for e in provider.webhook_events}
        if not receives_inbound(provider) or data.trigger_name not in events:
            names = ", ".join(sorted(events)) if receives_inbound(provider) else "none: it does not push to Connect"
            raise _bad(where, "triggerName", f"{provider.name} sends no {data.trigger_name!r} events ({names})")
        _check_filters(config, ("where", "condition"), where)
        match_types = [f"{provider.type}.{data.trigger_name}"]
    elif data.kind == "schedule":
        if provider.type != "chronary" or data.trigger_name != CRON:
            raise _bad(where, "triggerName", "schedule triggers are providerType chronary, triggerName cron")
        _check_filters(config, ("cron", "timezone"), where)
        expr, zone = config.get("cron"), config.get("timezone", "UTC")
        if not isinstance(expr, str) or not isinstance(zone, str):
            raise _bad(where, "config.cron", "a cron expression (5 fields) and a timezone are needed")
        try:
            cron.validate(expr, zone)
        except ValueError as exc:
            raise _bad(where, "config.cron", str(exc)) from None
        config["timezone"] = zone
        next_run = to_ts(cron.next_after(expr, zone, tx.now))
        state = {"last_fired": None}
    elif data.kind == "poll":
        action = provider.action(data.trigger_name)
        if action is None:
            raise _bad(where, "triggerName", f"{provider.name} has no action {data.trigger_name!r} to poll")
        if provider.type != "chronary" and data.connection_id is None:
            raise _bad(where, "connectionId", "a poll trigger runs through one connection: name it")
        _check_filters(config, ("inputs", "intervalSeconds", "itemsPath", "key", "updated"), where)
        interval = config.get("intervalSeconds", 300)
        if not isinstance(interval, int) or interval < MIN_POLL_SECONDS:
            raise _bad(where, "config.intervalSeconds", f"at least {MIN_POLL_SECONDS} seconds")
        if not isinstance(config.get("inputs", {}), dict):
            raise _bad(where, "config.inputs", "the action's inputs, an object")
        for key in ("itemsPath", "key", "updated"):
            if key in config and not isinstance(config[key], str):
                raise _bad(where, f"config.{key}", "a dotted path")
        config["intervalSeconds"] = interval
        next_run, state = now_ts, {"cursor": PollCursor(None, (), ()).to_json()}
    row: dict[str, Any] = {
        "id": ids.new_id("trg"),
        "flow_id": flow["id"],
        "org_id": principal.org_id,
        "provider_type": provider.type,
        "trigger_name": data.trigger_name,
        "kind": data.kind,
        "connection_id": data.connection_id,
        "config": config,
        "state": state,
        "next_run_ts": next_run,
        "created_at": iso_ms(tx.now),
    }
    store.create_trigger(tx.conn, row, match_types)
    return row


# --- matching ------------------------------------------------------------------------------------


def _path(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if isinstance(obj, dict):
            obj = obj.get(part)
        elif isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        else:
            return None
    return obj


def trigger_data(change: changes.Change, created_at: str) -> dict[str, Any]:
    """What `trigger` is in a flow's templates: the webhook payload, plus short names."""
    obj = changes.plain(change.object) if change.object is not None else {}
    data: dict[str, Any] = {"object": obj}
    if change.previous:
        data["previous"] = change.previous
    out: dict[str, Any] = {"id": change.log_id, "type": change.type, "created_at": created_at, "data": data, "object": obj}
    if change.type and change.type.startswith("event."):
        out["event"] = obj
    if isinstance(obj, dict) and obj.get("object") == "provider_event":
        out["payload"] = obj.get("payload")
    return out


def matches(trigger: dict[str, Any], data: dict[str, Any], agent_ids: set[str]) -> bool:
    config = trigger["config"] or {}
    obj = data.get("object") or {}
    if trigger["kind"] == "webhook" and trigger["connection_id"] and obj.get("connection_id") != trigger["connection_id"]:
        return False
    if "agentId" in config and config["agentId"] not in agent_ids:
        return False
    if "calendarId" in config and obj.get("calendar_id") != config["calendarId"]:
        return False
    for dotted, wanted in (config.get("where") or {}).items():
        if _path(obj, dotted) != wanted:
            return False
    if "condition" in config:
        from chronary.services.automation import templating  # jinja2, imported when first used

        try:
            return templating.condition(config["condition"], {"trigger": data}, "trigger.config.condition")
        except templating.TemplateError:
            return False  # a condition that cannot be evaluated on this change does not match it
    return True


def on_change(tx: Tx, change: changes.Change, payload_limit: int) -> None:
    """The in-transaction listener: queue a run of every enabled flow whose trigger wants this change."""
    if change.type is None or not change.webhook or change.log_id is None:
        return
    listening = store.listening(tx.conn, change.type)
    if not listening:
        return
    data = trigger_data(change, iso_ms(tx.now))
    agent_ids = {a for a in (change.agent_id, *change.audience) if a}
    for trigger in listening:
        flow = store.get_flow(tx.conn, trigger["flow_id"])
        if flow is None:
            continue
        if flow["agent_id"] is not None and flow["agent_id"] not in agent_ids:
            continue  # an agent key's flow sees its agent's changes only
        if matches(trigger, data, agent_ids):
            runs.enqueue(tx, flow, trigger, data, f"change:{change.log_id}", limit=payload_limit)
