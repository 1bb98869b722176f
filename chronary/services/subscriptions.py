"""iCal subscriptions (`isub_`): read-only import of a .ics URL into one of an agent's calendars.

CRUD here, plus the three write steps of a sync (success, not modified, failure). The fetch and
parse happen outside any transaction (see workers/subscriptions.py); `apply_success` then writes
the whole parsed feed in one transaction, so a feed that fails to fetch or parse changes nothing.
Imported events are `source: external_ical`, `read_only: true`. The import itself runs on the
same provider interface (`providers/ics.py`) and merge (`services/sync/merge.py`) as connections
(`services/sync/feeds.py`); its changes go through the one change path with origin
`subscription:<id>`.

The CRUD operations answer with `schemas.subscriptions.IcalSubscription` structs (`to_struct`;
`Page[…]` for lists). `load` stays the row and `present` the dict form that the
ical_subscription.* payloads carry (has_credentials last) and the sync steps answer with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from chronary import ids
from chronary.crypto import SecretBox
from chronary.errors import ValidationError, not_found
from chronary.providers.ics import FEED_CALENDAR
from chronary.schemas.subscriptions import IcalSubscription
from chronary.services import events as event_service
from chronary.services import outbox
from chronary.services.agents import load as load_agent
from chronary.services.calendars import load as load_calendar
from chronary.services.changes import subscription_origin
from chronary.services.context import Ctx, Page, Principal
from chronary.store import events as event_store
from chronary.store import subscriptions as store
from chronary.store import sync as sync_store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms, parse_stored, to_ts

FIELDS = (
    "id",
    "agent_id",
    "calendar_id",
    "url",
    "label",
    "refresh_interval_minutes",
    "status",
    "last_synced_at",
    "last_error",
    "event_count",
    "created_at",
    "updated_at",
)


def present(row: dict[str, Any]) -> dict[str, Any]:
    """The dict form (ical_subscription.* payloads, the sync steps' answers)."""
    out = {k: row[k] for k in FIELDS}
    out["has_credentials"] = row["credentials"] is not None  # the credentials themselves never leave
    return out


def to_struct(row: dict[str, Any]) -> IcalSubscription:
    """The API shape of a row, the same values as `present` (built directly, no msgspec.convert)."""
    return IcalSubscription(
        id=row["id"],
        agent_id=row["agent_id"],
        calendar_id=row["calendar_id"],
        url=row["url"],
        label=row["label"],
        refresh_interval_minutes=row["refresh_interval_minutes"],
        status=row["status"],
        last_synced_at=row["last_synced_at"],
        last_error=row["last_error"],
        event_count=row["event_count"],
        has_credentials=row["credentials"] is not None,  # the credentials themselves never leave
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def normalize_url(url: str) -> str:
    """http(s) as given; webcal:// → http://, webcals:// → https://."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValidationError("url is not a valid URL", "url") from None
    scheme = {"webcal": "http", "webcals": "https"}.get(parts.scheme.lower(), parts.scheme.lower())
    if scheme not in ("http", "https"):
        raise ValidationError("url must start with http://, https:// or webcal://", "url")
    if not parts.hostname:
        raise ValidationError("url has no host", "url")
    if parts.username or parts.password:
        raise ValidationError("put credentials in username/password, not in the url", "url")
    return urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, ""))


def load(tx: Tx, principal: Principal, sub_id: str) -> dict[str, Any]:
    row = store.get(tx.conn, sub_id)
    if row is None or not principal.can_see_agent(row["agent_id"]):
        raise not_found("ical_subscription", sub_id)
    return row


def _credentials(secrets: SecretBox, username: str | None, password: str | None) -> str | None:
    if username is None and password is None:
        return None
    if not username:
        raise ValidationError("username is required when a password is given", "username")
    return secrets.encrypt(json.dumps({"username": username, "password": password or ""}))


def create(tx: Tx, ctx: Ctx, secrets: SecretBox, agent_id: str, data: dict[str, Any]) -> IcalSubscription:
    load_agent(tx, ctx.principal, agent_id)
    calendar = load_calendar(tx, ctx.principal, data["calendar_id"])
    if calendar["agent_id"] != agent_id:
        raise ValidationError(f"calendar_id must be a calendar of agent {agent_id}", "calendar_id")
    now = iso_ms(tx.now)
    row: dict[str, Any] = {
        "id": ids.new_id("isub"),
        "org_id": ctx.principal.org_id,
        "agent_id": agent_id,
        "calendar_id": calendar["id"],
        "url": normalize_url(data["url"]),
        "label": data.get("label"),
        "refresh_interval_minutes": data.get("refresh_interval_minutes") or 60,
        "credentials": _credentials(secrets, data.get("username"), data.get("password")),
        "status": "active",
        "last_synced_at": None,
        "last_attempt_at": None,
        "last_error": None,
        "event_count": 0,
        "next_sync_ts": 0,  # due now: the first sync runs at once
        "etag": None,
        "last_modified": None,
        "created_at": now,
        "updated_at": now,
    }
    store.create(tx.conn, row)
    return to_struct(row)


def get(tx: Tx, ctx: Ctx, sub_id: str) -> IcalSubscription:
    return to_struct(load(tx, ctx.principal, sub_id))


def list_(tx: Tx, ctx: Ctx, agent_id: str, limit: int, offset: int) -> Page[IcalSubscription]:
    load_agent(tx, ctx.principal, agent_id)
    rows, total = store.list_for_agent(tx.conn, agent_id, limit, offset)
    return Page([to_struct(r) for r in rows], total, limit, offset)


def update(tx: Tx, ctx: Ctx, secrets: SecretBox, sub_id: str, changes: dict[str, Any]) -> IcalSubscription:
    row = load(tx, ctx.principal, sub_id)
    if not changes:
        raise ValidationError("PATCH needs at least one field to change", None)
    for required in ("url", "refresh_interval_minutes", "status"):
        if required in changes and changes[required] is None:
            raise ValidationError(f"{required} cannot be null", required)
    values: dict[str, Any] = {}
    if "url" in changes:
        values["url"] = normalize_url(changes["url"])
        if values["url"] != row["url"]:  # a different feed: forget validators, sync at once
            values.update(etag=None, last_modified=None, next_sync_ts=0)
    if "label" in changes:
        values["label"] = changes["label"]
    if "refresh_interval_minutes" in changes:
        values["refresh_interval_minutes"] = changes["refresh_interval_minutes"]
    if "status" in changes:
        values["status"] = changes["status"]
        if changes["status"] == "active" and row["status"] != "active":
            values["next_sync_ts"] = 0
    if "username" in changes or "password" in changes:
        old = json.loads(secrets.decrypt(row["credentials"])) if row["credentials"] else {}
        username = changes.get("username", old.get("username"))
        password = changes.get("password", old.get("password"))
        values["credentials"] = _credentials(secrets, username, password) if username or password else None
        values.update(etag=None, last_modified=None, next_sync_ts=0)
    values["updated_at"] = iso_ms(tx.now)
    store.patch(tx.conn, sub_id, values)
    return to_struct({**row, **values})


def delete(tx: Tx, ctx: Ctx, sub_id: str) -> None:
    """Deletes the subscription and every event it imported (each deletion logged)."""
    row = load(tx, ctx.principal, sub_id)
    calendar = event_service.calendar_of(tx, row)
    changes: list[tuple[str, Any, Any]] = []
    for event_id in sync_store.mirrored_event_ids(tx.conn, sub_id, FEED_CALENDAR):
        before = event_store.get(tx.conn, event_id)
        if before is not None:
            event_store.delete(tx.conn, event_id)
            changes.append(("deleted", before, None))
    event_service.record_changes(tx, changes, calendar)
    store.delete(tx.conn, sub_id)  # its links go with it (trigger)


def request_sync(tx: Tx, ctx: Ctx, sub_id: str) -> IcalSubscription:
    row = load(tx, ctx.principal, sub_id)
    store.patch(tx.conn, sub_id, {"next_sync_ts": 0})
    return to_struct(row)


# -- sync steps (the worker calls these around its fetch) ---------------------------------------


@dataclass(frozen=True)
class SyncJob:
    sub_id: str
    url: str
    auth: tuple[str, str] | None
    cursor: str | None  # the ics provider's cursor: the feed's validators (ETag, Last-Modified)
    timezone: str
    calendar_id: str
    known: dict[str, str | None]  # UID → digest of what is imported


def job(tx: Tx, sub_id: str, secrets: SecretBox, only_if_due: bool) -> SyncJob | None:
    """What to fetch; None when gone or (only_if_due) when another sync already ran meanwhile."""
    row = store.get(tx.conn, sub_id)
    if row is None or (only_if_due and row["next_sync_ts"] > to_ts(tx.now)):
        return None
    calendar = event_service.calendar_of(tx, row)
    auth = None
    if row["credentials"]:
        creds = json.loads(secrets.decrypt(row["credentials"]))
        auth = (creds["username"], creds.get("password") or "")
    validators = {"etag": row["etag"], "last_modified": row["last_modified"]}
    cursor = json.dumps(validators) if any(validators.values()) else None
    known = {link["href"]: link["etag"] for link in sync_store.links(tx.conn, sub_id, FEED_CALENDAR) if link["href"]}
    return SyncJob(sub_id, row["url"], auth, cursor, calendar["timezone"], calendar["id"], known)


def _finish(tx: Tx, row: dict[str, Any], values: dict[str, Any], kind: str, delay: int | None = None) -> dict[str, Any]:
    values.update(
        last_attempt_at=iso_ms(tx.now),
        updated_at=iso_ms(tx.now),
        next_sync_ts=to_ts(tx.now) + (60 * row["refresh_interval_minutes"] if delay is None else delay),
    )
    if row["status"] == "paused":
        values.pop("status", None)
    store.patch(tx.conn, row["id"], values)
    out = present({**row, **values})
    outbox.emit(tx, kind, out, agent_id=row["agent_id"], origin=subscription_origin(row["id"]))
    return out


FIRST_RETRY_SECONDS = 60


def retry_delay(row: dict[str, Any], now_ts: int) -> int:
    """Seconds until the next attempt after a failure: 1 min, then doubling, capped at the interval.

    No failure counter is stored: while failing, the gap since the previous (failed) attempt is
    the previous delay, so twice that gap is the next one. A "sync now" while failing starts the
    ladder again from the bottom, which is what someone fixing the feed wants.
    """
    interval = 60 * row["refresh_interval_minutes"]
    previous = parse_stored(row["last_attempt_at"]) if row["status"] == "error" else None
    delay = FIRST_RETRY_SECONDS if previous is None else 2 * (now_ts - to_ts(previous))
    return max(FIRST_RETRY_SECONDS, min(delay, interval))


def apply_failure(tx: Tx, sub_id: str, message: str) -> bool | None:
    """Record a failed sync (status error, last_error, backoff); True when it is a new failure
    (the subscription was not already failing with this message), None when it is gone."""
    row = store.get(tx.conn, sub_id)
    if row is None:
        return None
    message = message[:1000]
    new = row["status"] != "error" or row["last_error"] != message
    delay = retry_delay(row, to_ts(tx.now))
    _finish(tx, row, {"status": "error", "last_error": message}, "ical_subscription.failed", delay)
    return new


def apply_not_modified(tx: Tx, sub_id: str) -> dict[str, Any] | None:
    row = store.get(tx.conn, sub_id)
    if row is None:
        return None
    values = {"status": "active", "last_error": None, "last_synced_at": iso_ms(tx.now)}
    values.update(
        last_attempt_at=iso_ms(tx.now),
        updated_at=iso_ms(tx.now),
        next_sync_ts=to_ts(tx.now) + 60 * row["refresh_interval_minutes"],
    )
    if row["status"] == "paused":
        values.pop("status")
    store.patch(tx.conn, sub_id, values)
    return present({**row, **values})


def apply_success(tx: Tx, sub_id: str, cursor: str | None, event_count: int) -> dict[str, Any] | None:
    """Record a successful import (the merge already wrote the events in this transaction)."""
    row = store.get(tx.conn, sub_id)
    if row is None:
        return None
    validators = json.loads(cursor) if cursor else {}
    values = {
        "status": "active",
        "last_error": None,
        "last_synced_at": iso_ms(tx.now),
        "etag": validators.get("etag"),
        "last_modified": validators.get("last_modified"),
        "event_count": event_count,
    }
    return _finish(tx, row, values, "ical_subscription.synced")
