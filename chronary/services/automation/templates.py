"""Ready-made flows (`/connect/v1/flow-templates`), cloned into real flows.

A template is a flow with parameters: `${name}` in any string is replaced when cloning, from the
clone's `inputs` (or the parameter's default; a parameter without one must be given). `{{ … }}`
stays: those are the run-time templates. Inside a run-time expression or condition a parameter is
written `${name:literal}`: it becomes a quoted string literal there (quotes and backslashes in the
value escaped), so an input is data in the expression, never code. Action steps get their
connection from the clone's `connections` (providerType → connectionId), else the provider's only
connection is used when the step runs; `triggerConnectionId` is the trigger's connection (webhook
and poll triggers).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from chronary.errors import NotFound, ValidationError
from chronary.schemas.automation import Flow, FlowCreate, FlowTemplate, TemplateClone, TemplateInput
from chronary.schemas.tables import TableCreate
from chronary.services import tables
from chronary.services.automation import flows
from chronary.services.context import Principal
from chronary.store.db import Tx

PARAM = re.compile(r"\$\{([a-z_]+)(:literal)?\}")


@dataclass(frozen=True)
class Param:
    description: str
    default: str | None = None


@dataclass(frozen=True)
class Template:
    slug: str
    name: str
    description: str
    trigger: dict[str, Any]
    steps: list[dict[str, Any]]
    params: dict[str, Param] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # slug (may be ${param}) → columns


_AGENDA = (
    "{% for e in steps.today.output.data %}• {{ e.start_time | localtime(trigger.timezone, '%H:%M') }} "
    "{{ e.title }}\n{% else %}Nothing on the calendar today.{% endfor %}"
)

TEMPLATES: tuple[Template, ...] = (
    Template(
        slug="agenda-before-client-calls",
        name="Agenda on my phone before each client call",
        description=(
            "15 minutes before each event whose title mentions a client, push its agenda (the description) with ntfy."
        ),
        trigger={
            "providerType": "chronary",
            "triggerName": "event.starting",
            "kind": "event",
            "config": {
                "minutes": 15,
                "calendarId": "${calendar_id}",
                "condition": "(${keyword:literal} | lower) in (trigger.event.title | lower)",
            },
        },
        steps=[
            {
                "id": "push",
                "type": "action",
                "providerType": "ntfy",
                "action": "publish",
                "inputs": {
                    "topic": "${topic}",
                    "title": "{{ trigger.event.title }} in {{ trigger.minutes }} minutes",
                    "message": "{{ trigger.event.description or 'No agenda yet.' }}",
                    "priority": 4,
                    "tags": ["calendar"],
                },
            }
        ],
        params={
            "calendar_id": Param("The calendar to watch (cal_…)"),
            "topic": Param("Your ntfy topic"),
            "keyword": Param("A word in the titles of client calls (any case)", "client"),
        },
    ),
    Template(
        slug="hold-expired-tell-agent",
        name="Tell the agent when its hold expires",
        description="When a hold expires unconfirmed, post it to the agent that placed it (its own endpoint).",
        trigger={"providerType": "chronary", "triggerName": "event.hold_expired", "kind": "event", "config": {}},
        steps=[
            {
                "id": "tell",
                "type": "http.request",
                "method": "POST",
                "url": "${agent_url}",
                "body": {
                    "type": "hold_expired",
                    "agent_id": "{{ trigger.event.agent_id }}",
                    "event": "{{ trigger.event }}",
                    "message": "Your hold '{{ trigger.event.title }}' expired unconfirmed; the slot is free again.",
                },
            }
        ],
        params={"agent_url": Param("Where the agent listens (https://…)")},
    ),
    Template(
        slug="morning-agenda-slack",
        name="Post the day's agenda to Slack every morning",
        description="Every day at 7:00 (your time zone), post the day's events of a calendar to a Slack channel.",
        trigger={
            "providerType": "chronary",
            "triggerName": "cron",
            "kind": "schedule",
            "config": {"cron": "0 7 * * *", "timezone": "${timezone}"},
        },
        steps=[
            {
                "id": "today",
                "type": "action",
                "providerType": "chronary",
                "action": "list_events",
                "inputs": {
                    "calendar_id": "${calendar_id}",
                    "start_after": "{{ trigger.day_start }}",
                    "start_before": "{{ trigger.day_end }}",
                    "limit": 100,
                },
            },
            {
                "id": "post",
                "type": "action",
                "providerType": "slack",
                "action": "post_message",
                "inputs": {"channel": "${channel}", "text": "*Today, {{ trigger.local_date }}*\n" + _AGENDA},
            },
        ],
        params={
            "calendar_id": Param("The calendar (cal_…)"),
            "channel": Param("The Slack channel id (C…)"),
            "timezone": Param("Your IANA time zone", "UTC"),
        },
    ),
    Template(
        slug="mirror-confirmed-events",
        name="Mirror confirmed events into a table",
        description=(
            "Every confirmed event (created, changed, or a hold that was confirmed) is a row of a table, keyed by "
            "the event id: export it as CSV any time. The table is made when cloning if it does not exist."
        ),
        trigger={
            "providerType": "chronary",
            "triggerName": "event.created",
            "kind": "event",
            "config": {"also": ["event.updated", "event.hold_confirmed"], "where": {"status": "confirmed"}},
        },
        steps=[
            {
                "id": "row",
                "type": "table.upsert",
                "table": "${table}",
                "column": "event_id",
                "values": {
                    "event_id": "{{ trigger.event.id }}",
                    "title": "{{ trigger.event.title }}",
                    "start_time": "{{ trigger.event.start_time or trigger.event.start_date }}",
                    "end_time": "{{ trigger.event.end_time or trigger.event.end_date }}",
                    "calendar_id": "{{ trigger.event.calendar_id }}",
                    "agent_id": "{{ trigger.event.agent_id }}",
                },
            }
        ],
        params={"table": Param("The table's slug (made with the right columns when missing)", "bookings")},
        tables={
            "${table}": [
                {"name": "event_id", "type": "text"},
                {"name": "title", "type": "text"},
                {"name": "start_time", "type": "text"},
                {"name": "end_time", "type": "text"},
                {"name": "calendar_id", "type": "text"},
                {"name": "agent_id", "type": "text"},
            ]
        },
    ),
    Template(
        slug="notify-on-sync-failure",
        name="Tell me when a connection or subscription fails",
        description="When a provider connection errors or an iCal subscription fails to refresh, push a notification.",
        trigger={
            "providerType": "chronary",
            "triggerName": "connection.error",
            "kind": "event",
            "config": {"also": ["ical_subscription.failed"]},
        },
        steps=[
            {
                "id": "push",
                "type": "action",
                "providerType": "ntfy",
                "action": "publish",
                "inputs": {
                    "topic": "${topic}",
                    "title": "{{ 'Connection' if trigger.type == 'connection.error' else 'Subscription' }} failing",
                    # a connection says why in status_reason, a subscription in last_error
                    "message": (
                        "{{ trigger.object.get('status_reason') or trigger.object.get('last_error') or trigger.type }}"
                    ),
                    "priority": 4,
                    "tags": ["warning"],
                },
            }
        ],
        params={"topic": Param("Your ntfy topic")},
    ),
    Template(
        slug="invite-attendees-on-booking",
        name="Email an invitation to the attendees when an agent books",
        description="When an event with attendees is created, email each of them an invitation they can accept.",
        trigger={
            "providerType": "chronary",
            "triggerName": "event.created",
            "kind": "event",
            "config": {"condition": "trigger.event.attendees | length > 0"},
        },
        steps=[
            {
                "id": "invite",
                "type": "action",
                "providerType": "smtp",
                "action": "send_invitation",
                "inputs": {
                    "to": "{{ trigger.event.attendees | map(attribute='email') | list }}",
                    "calendar_id": "{{ trigger.event.calendar_id }}",
                    "event_id": "{{ trigger.event.id }}",
                },
            }
        ],
    ),
)


def _present(t: Template) -> FlowTemplate:
    needs = sorted(
        {s["providerType"] for s in _all_steps(t.steps) if s.get("type") == "action" and s["providerType"] != "chronary"}
    )
    inputs = [TemplateInput(name=n, description=p.description, default=p.default) for n, p in t.params.items()]
    return FlowTemplate(
        slug=t.slug, name=t.name, description=t.description, trigger=t.trigger, steps=t.steps, needs=needs, inputs=inputs
    )


def _all_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for step in steps:
        out.append(step)
        out.extend(_all_steps(step.get("then", [])) + _all_steps(step.get("else", [])))
    return out


def all_templates() -> list[FlowTemplate]:
    return [_present(t) for t in TEMPLATES]


def _find(slug: str) -> Template:
    found = next((t for t in TEMPLATES if t.slug == slug), None)
    if found is None:
        raise NotFound(f"No flow template {slug!r}", "slug")
    return found


def get(slug: str) -> FlowTemplate:
    return _present(_find(slug))


def _fill(value: Any, params: dict[str, str]) -> Any:
    if isinstance(value, str):
        # a JSON string (ASCII, escaped) reads as the same string in a Jinja expression
        return PARAM.sub(lambda m: json.dumps(params[m.group(1)]) if m.group(2) else params[m.group(1)], value)
    if isinstance(value, list):
        return [_fill(v, params) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, params) for k, v in value.items()}
    return value


def _ensure_table(tx: Tx, principal: Principal, slug: str, columns: list[dict[str, Any]], max_tables: int) -> None:
    try:
        tables.get_table(tx, principal, slug)
    except NotFound:
        spec = {"name": slug.replace("-", " ").replace("_", " ").title(), "slug": slug, "columns": columns}
        try:
            tables.create_table(tx, principal, msgspec.convert(spec, TableCreate), max_tables=max_tables)
        except msgspec.ValidationError:
            raise ValidationError(f"inputs.table: {slug!r} is not a usable table slug", "inputs.table") from None


def clone(tx: Tx, principal: Principal, slug: str, data: TemplateClone, max_tables: int = 100) -> Flow:
    principal.require("templates.write")
    template = _find(slug)
    params: dict[str, str] = {}
    for name, param in template.params.items():
        given = data.inputs.get(name)
        if given is None and param.default is None:
            raise ValidationError(f"inputs.{name}: {param.description}", f"inputs.{name}")
        params[name] = str(given if given is not None else param.default)
    for name in data.inputs:
        if name not in template.params:
            raise ValidationError(f"inputs.{name}: the template takes no such input", f"inputs.{name}")
    steps = _fill(template.steps, params)
    for step in _all_steps(steps):
        if step.get("type") == "action" and step["providerType"] in data.connections:
            step["connectionId"] = data.connections[step["providerType"]]
    trigger = _fill(template.trigger, params)
    for slug_spec, columns in template.tables.items():
        _ensure_table(tx, principal, _fill(slug_spec, params), columns, max_tables)
    if data.trigger_connection_id is not None:
        trigger["connectionId"] = data.trigger_connection_id
    payload = {"name": data.name or template.name, "description": template.description, "status": data.status,
               "trigger": trigger, "steps": steps}  # fmt: skip
    try:
        create = msgspec.convert(payload, FlowCreate)
    except msgspec.ValidationError as exc:
        raise ValidationError(f"the template does not fit: {exc}", None) from None
    return flows.create(tx, principal, create, template=slug)
