"""/v1/agents/{agent_id}/ical-subscriptions and /v1/ical-subscriptions/{id}: read-only imports.

Creating a subscription, changing its URL/credentials or POSTing …/sync marks it due in the
request's own transaction and wakes the subscription worker, which does the sync moments later.
Nothing runs inside the response cycle (design rule): a failing sync can never break the
client's connection or a request pipelined behind this one.
"""

from __future__ import annotations

import asyncio

import msgspec
from litestar import Controller, Response, delete, get, patch, post

from chronary.api._common import ERRORS, Limit, Offset, RuntimeDep, page_body
from chronary.config import Settings
from chronary.crypto import SecretBox
from chronary.runtime import Runtime
from chronary.schemas.common import set_fields
from chronary.schemas.subscriptions import (
    IcalSubscription,
    IcalSubscriptionCreate,
    IcalSubscriptionList,
    IcalSubscriptionUpdate,
)
from chronary.services import subscriptions as svc
from chronary.services.context import Ctx
from chronary.services.validation import check_callable_url
from chronary.store.db import Database
from chronary.workers import subscriptions as worker

URL_SCHEMES = ("http", "https", "webcal", "webcals")


async def _check_url(url: str, settings: Settings) -> None:
    """Syntax, then this server's own addresses (DNS: off the loop, before the transaction)."""
    await asyncio.to_thread(check_callable_url, url, "url", settings, URL_SCHEMES)


def _wake_worker(runtime: Runtime) -> None:
    """The subscription is already marked due (committed); the worker syncs it right away."""
    runtime.signals.notify(worker.SIGNAL)


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
        self,
        agent_id: str,
        data: IcalSubscriptionCreate,
        db: Database,
        ctx: Ctx,
        settings: Settings,
        secrets: SecretBox,
        runtime: RuntimeDep,
    ) -> Response[IcalSubscription]:
        await _check_url(data.url, settings)
        fields = msgspec.structs.asdict(data)
        out = await db.write(lambda tx: svc.create(tx, ctx, secrets, agent_id, fields))
        _wake_worker(runtime)
        return Response(out, status_code=201)

    @get("/", summary="List the agent's iCal subscriptions", responses=ERRORS)
    async def list_subscriptions(
        self, agent_id: str, db: Database, ctx: Ctx, limit: Limit = 50, offset: Offset = 0
    ) -> IcalSubscriptionList:
        page = await db.read(lambda tx: svc.list_(tx, ctx, agent_id, limit, offset))
        return page_body(IcalSubscriptionList, page)


class IcalSubscriptionController(Controller):
    path = "/ical-subscriptions"
    tags = ["ical-subscriptions"]

    @get(
        "/{sub_id:str}",
        summary="Get an iCal subscription (status, last_synced_at, last_error, event_count)",
        responses=ERRORS,
    )
    async def get_subscription(self, sub_id: str, db: Database, ctx: Ctx) -> IcalSubscription:
        return await db.read(lambda tx: svc.get(tx, ctx, sub_id))

    @patch(
        "/{sub_id:str}",
        summary="Change an iCal subscription (≥ 1 field)",
        responses=ERRORS,
        description="status active|paused pauses or resumes refreshing; username/password null clears "
        "the credentials. A new URL or new credentials sync at once.",
    )
    async def update(
        self,
        sub_id: str,
        data: IcalSubscriptionUpdate,
        db: Database,
        ctx: Ctx,
        settings: Settings,
        secrets: SecretBox,
        runtime: RuntimeDep,
    ) -> Response[IcalSubscription]:
        if isinstance(data.url, str):
            await _check_url(data.url, settings)
        changes = set_fields(data)
        out = await db.write(lambda tx: svc.update(tx, ctx, secrets, sub_id, changes))
        if {"url", "username", "password"} & changes.keys() or changes.get("status") == "active":
            _wake_worker(runtime)
        return Response(out, status_code=200)

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
    async def sync(self, sub_id: str, db: Database, ctx: Ctx, runtime: RuntimeDep) -> Response[IcalSubscription]:
        out = await db.write(lambda tx: svc.request_sync(tx, ctx, sub_id))
        _wake_worker(runtime)
        return Response(out, status_code=202)


ROUTES = [AgentIcalSubscriptionController, IcalSubscriptionController]
