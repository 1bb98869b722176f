"""/v1/calendars/{id}/feed-tokens: feeds per device (create with the URL shown once, list, revoke),
and `lookup`, which GET /ical/{token}.ics (api/feeds.py) calls to find any token's feed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Controller, Request, delete, get, post

from chronary.api._common import ERRORS, Limit, Offset, page_body
from chronary.schemas.feed_tokens import FeedTokenCreate, FeedTokenList, FeedTokenWithUrl
from chronary.services import feed_tokens as svc
from chronary.services.context import Ctx
from chronary.services.feeds import Feed
from chronary.store.db import Database, Tx

_SCOPES = (
    "Scope `full` (default) is the calendar's feed as its `ical_url` serves it; `busy` keeps each "
    "event's times, recurrence, status and transparency with the title Busy and nothing else; "
    "`window` {past_days, future_days, busy?} only the events overlapping that rolling window "
    "of days around today (in the calendar's timezone)."
)


class FeedTokenController(Controller):
    path = "/calendars/{calendar_id:str}/feed-tokens"
    tags = ["feeds"]

    @post(
        "/",
        summary="Create a feed URL for one device or person; the URL is in this response only",
        description=_SCOPES + " Each token is its own feed URL (`ical_url`, `webcal_url`), revocable alone.",
        responses=ERRORS,
    )
    async def create(self, calendar_id: str, data: FeedTokenCreate, db: Database, ctx: Ctx) -> FeedTokenWithUrl:
        return await db.write(lambda tx: svc.create(tx, ctx, calendar_id, data))

    @get(
        "/",
        summary="List a calendar's live feed tokens with their last fetch (time and User-Agent)",
        description="No URLs: a token is stored as a hash. `last_fetched_at` is recorded at most once a minute.",
        responses=ERRORS,
    )
    async def list_tokens(
        self, calendar_id: str, db: Database, ctx: Ctx, limit: Limit = 50, offset: Offset = 0
    ) -> FeedTokenList:
        page = await db.read(lambda tx: svc.list_(tx, ctx, calendar_id, limit, offset))
        return page_body(FeedTokenList, page)

    @delete(
        "/{token_id:str}",
        summary="Revoke one feed token: its URL answers 404 at once, the calendar's others keep working",
        responses=ERRORS,
    )
    async def revoke(self, calendar_id: str, token_id: str, db: Database, ctx: Ctx) -> None:
        await db.write(lambda tx: svc.revoke(tx, ctx, calendar_id, token_id))


def _fetch_log(request: Request[Any, Any, Any]) -> svc.FetchLog:
    state = request.app.state
    if not hasattr(state, "feed_fetch_log"):
        state.feed_fetch_log = svc.FetchLog()
    log: svc.FetchLog = state.feed_fetch_log
    return log


async def lookup(request: Request[Any, Any, Any], db: Database, token: str, past_days: int) -> Feed:
    """The feed behind a calendar's own token or a per-device one (404 otherwise). A per-device
    token's fetch (time, User-Agent) is written before the answer when due — at most once a
    minute per token, so polling stays a read; never as a background task of the response,
    which would hold the connection's next request (tests/cli/test_keepalive.py)."""

    def read(tx: Tx) -> tuple[Feed, str | None, datetime]:
        feed, token_id = svc.load(tx, token, past_days)
        return feed, token_id, tx.now

    feed, token_id, now = await db.read(read)
    if token_id is not None and _fetch_log(request).due(token_id, now):
        agent = request.headers.get("user-agent")
        await db.write(lambda tx: svc.record_fetch(tx, token_id, now, agent))
    return feed


ROUTES = [FeedTokenController]
