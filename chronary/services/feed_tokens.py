"""Feeds per device: extra feed URLs of a calendar, each with its own scope, revocable alone.

A token is 256 random bits, URL-safe; only its SHA-256 is stored (like API keys), so its URL is
in the create answer only: a leaked database or backup opens no feed, and a device that lost
its URL gets a new token (and the old one revoked). The calendar's own `ical_url` is untouched
and stays a full feed.

Serving (`load`): the calendar's own token is tried first, exactly as before; otherwise the
token's hash is looked up, the calendar's full feed is taken from the feed cache as usual, and a
scope other than `full` is derived from it *after* that cache (services/feed_scope.py).

Last fetch (`FetchLog`): a feed poll must stay a read, so the time and User-Agent are written
after the answer and at most once a minute per token (the first fetch at once), in one small
write; the listed `last_fetched_at` is thus accurate to a minute.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from datetime import datetime, timedelta
from typing import Any

from chronary import ids
from chronary.errors import Conflict, NotFound, ValidationError
from chronary.schemas.feed_tokens import FeedScope, FeedScopeOut, FeedToken, FeedTokenCreate, FeedTokenWithUrl
from chronary.services import feed_scope
from chronary.services import feeds as feed_svc
from chronary.services.calendars import feed_url, webcal_url
from chronary.services.calendars import load as load_calendar
from chronary.services.context import Ctx, Page
from chronary.store import calendars as cal_store
from chronary.store import feed_tokens as store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms

MAX_ACTIVE = 100  # live tokens per calendar
USER_AGENT_MAX = 256
RECORD_EVERY = timedelta(minutes=1)
DEFAULT_PAST_DAYS = 30
DEFAULT_FUTURE_DAYS = 365


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _scope(data: FeedScope) -> dict[str, Any]:
    """The stored scope; window bounds only for kind window (defaults filled in)."""
    if data.kind != "window":
        for name in ("past_days", "future_days"):
            if getattr(data, name) is not None:
                raise ValidationError(f"scope.{name} applies to kind window only", f"scope.{name}")
        if data.busy:
            raise ValidationError("scope.busy applies to kind window only (use kind busy)", "scope.busy")
        return {"kind": data.kind}
    return {
        "kind": "window",
        "past_days": DEFAULT_PAST_DAYS if data.past_days is None else data.past_days,
        "future_days": DEFAULT_FUTURE_DAYS if data.future_days is None else data.future_days,
        "busy": data.busy,
    }


def present(row: dict[str, Any]) -> FeedToken:
    scope = row["scope"]
    return FeedToken(
        id=row["id"],
        calendar_id=row["calendar_id"],
        label=row["label"],
        scope=FeedScopeOut(
            kind=scope["kind"],
            past_days=scope.get("past_days"),
            future_days=scope.get("future_days"),
            busy=scope["kind"] == "busy" or bool(scope.get("busy")),
        ),
        created_at=row["created_at"],
        last_fetched_at=row["last_fetched_at"],
        last_user_agent=row["last_user_agent"],
    )


def create(tx: Tx, ctx: Ctx, calendar_id: str, data: FeedTokenCreate) -> FeedTokenWithUrl:
    """A new token; the answer is the only place its URL ever appears."""
    load_calendar(tx, ctx.principal, calendar_id)
    if store.count_active(tx.conn, calendar_id) >= MAX_ACTIVE:
        raise Conflict(f"A calendar has at most {MAX_ACTIVE} feed tokens: revoke one first")
    token = secrets.token_urlsafe(32)
    row: dict[str, Any] = {
        "id": ids.new_id("ftk"),
        "calendar_id": calendar_id,
        "hash": digest(token),
        "label": data.label,
        "scope": _scope(data.scope),
        "created_at": iso_ms(tx.now),
    }
    store.create(tx.conn, row)
    shown = present({**row, "last_fetched_at": None, "last_user_agent": None})
    url = feed_url(ctx.base_url, token)
    return FeedTokenWithUrl(
        **{f: getattr(shown, f) for f in shown.__struct_fields__}, ical_url=url, webcal_url=webcal_url(url)
    )


def list_(tx: Tx, ctx: Ctx, calendar_id: str, limit: int, offset: int) -> Page[FeedToken]:
    load_calendar(tx, ctx.principal, calendar_id)
    rows, total = store.list_active(tx.conn, calendar_id, limit, offset)
    return Page([present(r) for r in rows], total, limit, offset)


def revoke(tx: Tx, ctx: Ctx, calendar_id: str, token_id: str) -> None:
    """Its URL answers 404 from the moment this commits; the calendar's other URLs are untouched."""
    load_calendar(tx, ctx.principal, calendar_id)
    if store.get(tx.conn, calendar_id, token_id) is None:
        raise NotFound(f"No feed token with id {token_id!r}")
    store.revoke(tx.conn, token_id, iso_ms(tx.now))


def load(tx: Tx, token: str, past_days: int) -> tuple[feed_svc.Feed, str | None]:
    """The feed behind `token` and, for a per-device token, its id (None: the calendar's own)."""
    try:
        return feed_svc.load(tx, token, past_days), None
    except NotFound:
        if not 16 <= len(token) <= 128:
            raise
    # a guesser controls the token, not its hash: the index probe reveals nothing of a stored one
    row = store.by_hash(tx.conn, digest(token))
    calendar = cal_store.get(tx.conn, row["calendar_id"]) if row is not None else None
    if row is None or calendar is None:
        raise NotFound("No feed at this address", None)
    full = feed_svc.load(tx, calendar["feed_token"], past_days)
    scope = row["scope"]
    if scope["kind"] == "full":
        return full, row["id"]
    if scope["kind"] == "busy":
        return feed_scope.derive(full, (calendar["id"], ("busy",)), busy=True, window=None, keep=None), row["id"]
    past, future, busy = int(scope["past_days"]), int(scope["future_days"]), bool(scope.get("busy"))
    window = feed_scope.window_bounds(tx.now, calendar["timezone"], past, future)
    key = (calendar["id"], ("window", past, future, busy))
    cached = feed_scope.CACHE.get(key)
    if cached is not None and cached.source_etag == full.etag and cached.window == window:
        return cached.feed, row["id"]
    keep = store.window_ids(tx.conn, calendar["id"], *window)
    return feed_scope.derive(full, key, busy=busy, window=window, keep=keep), row["id"]


class FetchLog:
    """When each token's fetch was last written: `due` says whether this one should be."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._written: dict[str, datetime] = {}

    def due(self, token_id: str, now: datetime) -> bool:
        with self._lock:
            last = self._written.get(token_id)
            if last is not None and now - last < RECORD_EVERY and now >= last:
                return False
            if len(self._written) > 100_000:
                self._written.clear()  # bounded; at worst a few extra writes
            self._written[token_id] = now
            return True


def record_fetch(tx: Tx, token_id: str, when: datetime, user_agent: str | None) -> None:
    agent = user_agent[:USER_AGENT_MAX] if user_agent else None
    store.record_fetches(tx.conn, [(token_id, iso_ms(when), agent)])
