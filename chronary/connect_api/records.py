"""`/connect/v1/records`: what came in from outside — search, summary, replay, import."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.params import Parameter

from chronary.api._common import ERRORS, Limit, RuntimeDep
from chronary.schemas.records import ImportResult, Record, RecordImport, RecordList, RecordSummary, Replayed, Source
from chronary.services import records as svc
from chronary.services.context import Ctx

Kind = Annotated[str | None, Parameter(max_length=80)]


class RecordController(Controller):
    path = "/records"
    tags = ["connect: records"]

    @get(
        "/",
        summary="Records, newest first; search finds words in the payload (full text, prefixes match)",
        responses=ERRORS,
    )
    async def list_records(
        self,
        ctx: Ctx,
        runtime: RuntimeDep,
        resource_type: Annotated[str | None, Parameter(query="resourceType", max_length=80)] = None,
        provider_type: Annotated[str | None, Parameter(query="providerType", max_length=40)] = None,
        source: Source | None = None,
        search: Annotated[str | None, Parameter(max_length=500)] = None,
        page: Annotated[int, Parameter(ge=1, le=100_000)] = 1,
        limit: Limit = 50,
    ) -> RecordList:
        return await runtime.db.read(
            lambda tx: svc.list_(tx, ctx.principal, provider_type, resource_type, source, search, page, limit)
        )

    @get("/summary", summary="Counts by provider and resource type, first and last seen", responses=ERRORS)
    async def summary(self, ctx: Ctx, runtime: RuntimeDep) -> RecordSummary:
        return await runtime.db.read(lambda tx: svc.summary(tx, ctx.principal))

    @post(
        "/import",
        status_code=201,
        summary="Backfill records from a JSON array or CSV text (all or nothing; dedupKey skips known ones)",
        responses=ERRORS,
    )
    async def import_records(self, data: RecordImport, ctx: Ctx, runtime: RuntimeDep) -> ImportResult:
        limit = runtime.settings.record_payload_max_bytes
        return await runtime.db.write(lambda tx: svc.import_(tx, ctx.principal, data, limit))

    @get("/{record_id:str}", summary="One record with the runs it started", responses=ERRORS)
    async def get_record(self, record_id: str, ctx: Ctx, runtime: RuntimeDep) -> Record:
        return await runtime.db.read(lambda tx: svc.get(tx, ctx.principal, record_id))

    @delete("/{record_id:str}", summary="Forget a record", responses=ERRORS)
    async def delete_record(self, record_id: str, ctx: Ctx, runtime: RuntimeDep) -> None:
        await runtime.db.write(lambda tx: svc.delete(tx, ctx.principal, record_id))

    @post(
        "/{record_id:str}/replay",
        status_code=202,
        summary="Run again every flow whose trigger matches the record (each run marked replay)",
        responses=ERRORS,
    )
    async def replay(self, record_id: str, ctx: Ctx, runtime: RuntimeDep) -> Replayed:
        limit = runtime.settings.record_payload_max_bytes
        return await runtime.db.write(lambda tx: svc.replay(tx, ctx.principal, record_id, limit))


ROUTES = [RecordController]
