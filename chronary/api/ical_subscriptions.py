"""/v1/agents/{agent_id}/ical-subscriptions and /v1/ical-subscriptions/{id}: read-only imports.

Creating a subscription, changing its URL/credentials or POSTing …/sync marks it due in the
request's own transaction and wakes the subscription worker, which does the sync moments later.
Nothing runs inside the response cycle (design rule): a failing sync can never break the
client's connection or a request pipelined behind this one.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from msgspec import UNSET, Meta, UnsetType

from chronary.api._common import ERRORS, Limit, Offset, page_dict
from chronary.schemas.common import Input, Timestamp, set_fields
from chronary.services import subscriptions as svc
from chronary.services.context import Ctx
from chronary.services.validation import check_callable_url
from chronary.store.db import Database
from chronary.workers import subscriptions as worker

Url = Annotated[str, Meta(min_length=1, max_length=2048, description="http, https or webcal URL of an .ics feed")]
Label = Annotated[str, Meta(max_length=255)]
Interval = Annotated[int, Meta(ge=15, le=1440, description="Minutes between refreshes, 15–1440")]
Username = Annotated[str, Meta(max_length=255, description="HTTP basic-auth user; stored encrypted, never returned")]
Password = Annotated[str, Meta(max_length=1024, description="HTTP basic-auth password; stored encrypted, never returned")]


class IcalSubscriptionCreate(Input):
    calendar_id: str
    url: Url
    label: Label | None = None
    refresh_interval_minutes: Interval = 60
    username: Username | None = None
    password: Password | None = None


class IcalSubscriptionUpdate(Input):
    url: Url | UnsetType = UNSET
    label: Label | None | UnsetType = UNSET
    refresh_interval_minutes: Interval | UnsetType = UNSET
    status: Literal["active", "paused"] | UnsetType = UNSET
    username: Username | None | UnsetType = UNSET
    password: Password | None | UnsetType = UNSET


class IcalSubscription(msgspec.Struct):
    id: str
    agent_id: str
    calendar_id: str
    url: str
    label: str | None
    refresh_interval_minutes: int
    status: str
    last_synced_at: Timestamp | None
    last_error: str | None
    event_count: int
    has_credentials: bool
    created_at: Timestamp
    updated_at: Timestamp


class IcalSubscriptionList(msgspec.Struct):
    data: list[IcalSubscription]
    total: int
    limit: int
    offset: int


URL_SCHEMES = ("http", "https", "webcal", "webcals")


async def _check_url(url: str, request: Request[Any, Any, Any]) -> None:
    """Syntax, then this server's own addresses (DNS: off the loop, before the transaction)."""
    await asyncio.to_thread(check_callable_url, url, "url", request.app.state.settings, URL_SCHEMES)


def _wake_worker(request: Request[Any, Any, Any]) -> None:
    """The subscription is already marked due (committed); the worker syncs it right away."""
    request.app.state.runtime.signals.notify(worker.SIGNAL)


class AgentIcalSubscriptionController(Controller):
    path = "/agents/{agent_id:str}/ical-subscriptions"
    tags = ["ical-subscriptions"]

    @post(
        "/",
        summary="Subscribe one of the agent's calendars to an .ics URL",
        responses=ERRORS,
        description="The calendar must belong to this agent. The URL must be http(s) or webcal, without "
        "credentials, and not this server. The first sync starts right away in the background; "
        "imported events are source external_ical and read-only.",
    )
    async def create(
        self, agent_id: str, data: IcalSubscriptionCreate, db: Database, ctx: Ctx, request: Request[Any, Any, Any]
    ) -> Response[IcalSubscription]:
        await _check_url(data.url, request)
        secrets = request.app.state.runtime.secrets
        fields = msgspec.structs.asdict(data)
        out = await db.write(lambda tx: svc.create(tx, ctx, secrets, agent_id, fields))
        _wake_worker(request)
        return Response(out, status_code=201)  # type: ignore[arg-type]

    @get("/", summary="List the agent's iCal subscriptions", responses=ERRORS)
    async def list_subscriptions(
        self, agent_id: str, db: Database, ctx: Ctx, limit: Limit = 50, offset: Offset = 0
    ) -> IcalSubscriptionList:
        page = await db.read(lambda tx: svc.list_(tx, ctx, agent_id, limit, offset))
        return page_dict(page)  # type: ignore[return-value]


class IcalSubscriptionController(Controller):
    path = "/ical-subscriptions"
    tags = ["ical-subscriptions"]

    @get(
        "/{sub_id:str}",
        summary="Get an iCal subscription (status, last_synced_at, last_error, event_count)",
        responses=ERRORS,
    )
    async def get_subscription(self, sub_id: str, db: Database, ctx: Ctx) -> IcalSubscription:
        return await db.read(lambda tx: svc.get(tx, ctx, sub_id))  # type: ignore[return-value]

    @patch(
        "/{sub_id:str}",
        summary="Change an iCal subscription (≥ 1 field)",
        responses=ERRORS,
        description="status active|paused pauses or resumes refreshing; username/password null clears "
        "the credentials. A new URL or new credentials sync at once.",
    )
    async def update(
        self, sub_id: str, data: IcalSubscriptionUpdate, db: Database, ctx: Ctx, request: Request[Any, Any, Any]
    ) -> Response[IcalSubscription]:
        if isinstance(data.url, str):
            await _check_url(data.url, request)
        secrets = request.app.state.runtime.secrets
        changes = set_fields(data)
        out = await db.write(lambda tx: svc.update(tx, ctx, secrets, sub_id, changes))
        if {"url", "username", "password"} & changes.keys() or changes.get("status") == "active":
            _wake_worker(request)
        return Response(out, status_code=200)  # type: ignore[arg-type]

    @delete("/{sub_id:str}", summary="Delete an iCal subscription and the events it imported", responses=ERRORS)
    async def remove(self, sub_id: str, db: Database, ctx: Ctx) -> None:
        await db.write(lambda tx: svc.delete(tx, ctx, sub_id))

    @post(
        "/{sub_id:str}/sync",
        status_code=202,
        summary="Sync now",
        responses=ERRORS,
        description="Accepted: the subscription is marked due and the background worker syncs it within "
        "moments; poll the subscription for last_synced_at / last_error.",
    )
    async def sync(self, sub_id: str, db: Database, ctx: Ctx, request: Request[Any, Any, Any]) -> Response[IcalSubscription]:
        out = await db.write(lambda tx: svc.request_sync(tx, ctx, sub_id))
        _wake_worker(request)
        return Response(out, status_code=202)  # type: ignore[arg-type]


ROUTES = [AgentIcalSubscriptionController, IcalSubscriptionController]
