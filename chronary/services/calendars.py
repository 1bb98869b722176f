"""Calendars: org-level or agent-owned, each published at an unguessable feed URL."""

from __future__ import annotations

import secrets
from typing import Any

from chronary import ids
from chronary.errors import ValidationError, not_found
from chronary.schemas.calendars import CalendarCreate, CalendarUpdate
from chronary.schemas.common import set_fields
from chronary.services import outbox
from chronary.services.agents import load as load_agent
from chronary.services.context import Ctx, Page, Principal
from chronary.services.validation import check_metadata, check_reminders
from chronary.store import calendars as cal_store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms, require_timezone

FIELDS = (
    "id", "org_id", "agent_id", "name", "timezone", "agent_status", "default_reminders", "metadata",
    "created_at", "updated_at",
)


def new_feed_token() -> str:
    """192 random bits, URL-safe: the token is the feed's only access control."""
    return secrets.token_urlsafe(24)


def feed_url(base_url: str, token: str) -> str:
    return f"{base_url}/ical/{token}.ics"


def present(row: dict[str, Any], base_url: str) -> dict[str, Any]:
    out = {k: row[k] for k in FIELDS}
    out["ical_url"] = feed_url(base_url, row["feed_token"])
    return out


def load(tx: Tx, principal: Principal, calendar_id: str) -> dict[str, Any]:
    row = cal_store.get(tx.conn, calendar_id)
    if row is None or not principal.can_see_agent(row["agent_id"]):
        raise not_found("calendar", calendar_id)
    return row


def create(tx: Tx, ctx: Ctx, agent_id: str | None, data: CalendarCreate) -> dict[str, Any]:
    if agent_id is None:
        ctx.principal.require_org("org-level calendars")
    else:
        load_agent(tx, ctx.principal, agent_id)
    require_timezone(data.timezone, "timezone")
    now = iso_ms(tx.now)
    row = {
        "id": ids.new_id("cal"),
        "org_id": ctx.principal.org_id,
        "agent_id": agent_id,
        "name": data.name,
        "timezone": data.timezone,
        "agent_status": data.agent_status,
        "default_reminders": check_reminders(data.default_reminders, "default_reminders"),
        "metadata": check_metadata(data.metadata),
        "feed_token": new_feed_token(),
        "revision": 0,
        "created_at": now,
        "updated_at": now,
    }
    cal_store.create(tx.conn, row)
    out = present(row, ctx.base_url)
    outbox.emit(tx, "calendar.created", out, agent_id=agent_id)
    return out


def get(tx: Tx, ctx: Ctx, calendar_id: str) -> dict[str, Any]:
    return present(load(tx, ctx.principal, calendar_id), ctx.base_url)


def list_(tx: Tx, ctx: Ctx, agent_id: str | None, include_all: bool, limit: int, offset: int) -> Page:
    if agent_id is not None:
        load_agent(tx, ctx.principal, agent_id)
    elif not ctx.principal.is_org:
        # an agent key asking for "the org's calendars" sees only its own
        agent_id = ctx.principal.agent_id
    rows, total = cal_store.list_(
        tx.conn, agent_id=agent_id, include_agent_owned=include_all, limit=limit, offset=offset
    )
    return Page([present(r, ctx.base_url) for r in rows], total, limit, offset)


def update(tx: Tx, ctx: Ctx, calendar_id: str, data: CalendarUpdate) -> dict[str, Any]:
    row = load(tx, ctx.principal, calendar_id)
    before = present(row, ctx.base_url)
    changes = set_fields(data)
    if not changes:
        raise ValidationError("PATCH needs at least one field to change", None)
    for required in ("name", "timezone", "agent_status"):
        if required in changes and changes[required] is None:
            raise ValidationError(f"{required} cannot be null", required)
    if "timezone" in changes:
        require_timezone(changes["timezone"], "timezone")
    if "default_reminders" in changes:
        changes["default_reminders"] = check_reminders(changes["default_reminders"], "default_reminders")
    if "metadata" in changes:
        changes["metadata"] = check_metadata(changes["metadata"])
    changes["updated_at"] = iso_ms(tx.now)
    cal_store.patch(tx.conn, calendar_id, changes)
    cal_store.bump_revision(tx.conn, calendar_id)
    after = {**before, **changes}
    outbox.emit(
        tx, "calendar.updated", after, agent_id=row["agent_id"], previous=outbox.changed_fields(before, after)
    )
    return after


def delete(tx: Tx, ctx: Ctx, calendar_id: str) -> None:
    """Deletes its events too (FK cascade); its feed answers 404 from then on."""
    row = load(tx, ctx.principal, calendar_id)
    before = present(row, ctx.base_url)
    cal_store.delete(tx.conn, calendar_id)
    outbox.emit(tx, "calendar.deleted", before, agent_id=row["agent_id"])
