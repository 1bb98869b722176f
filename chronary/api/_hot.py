"""Hot routes: the write agents send by the thousand, answered without Litestar's per-request layers.

`POST /v1/calendars/{id}/events` is the commonest write. Through Litestar it spends about as
long on the event loop in routing, the guard call, resolving `data`, `db` and `ctx`, and
building the response as the whole of a `GET /health` (issue 20, bench/write_bench.py). Here
its plain success is answered from the same parts, in the same order: the guard's key lookup
(api/_auth.authenticate, its cache), the body converted as Litestar converts a handler's
`data` (msgspec, `strict=False`), the same service call on the same writer, the same ETag and
JSON bytes. Everything else goes to the Litestar route with the body replayed, so there is one
definition of every refusal: no key or a session cookie, an `Idempotency-Key`, a body that is
not a whole JSON `EventCreate`, any error raised by the create. A create that failed wrote
nothing (its savepoint was rolled back), so the route running it again answers as it always
has. tests/api/test_hot_routes.py holds both paths to the same answers.
"""

from __future__ import annotations

import re

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from chronary.api._auth import authenticate, key_of
from chronary.api._body import read_body, replaying
from chronary.api._etag import etag_of
from chronary.schemas.events import Event, EventCreate
from chronary.services import events as event_service
from chronary.services.context import Ctx
from chronary.store.db import Database

_CREATE_EVENT = re.compile(r"/v1/calendars/([^/]+)/events/?")
_JSON = msgspec.json.Encoder()
_JSON_TYPE = (b"content-type", b"application/json")


class HotRoutes:
    """ASGI: answers the hot routes' plain requests itself and passes every other request to `app`."""

    def __init__(self, app: ASGIApp, db: Database, base_url: str) -> None:
        self.app = app
        self.db = db
        self.base_url = base_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["method"] == "POST":  # the enum lets mypy narrow Scope
            match = _CREATE_EVENT.fullmatch(scope["path"])
            if match is not None:
                await self._create_event(match.group(1), scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _create_event(self, calendar_id: str, scope: Scope, receive: Receive, send: Send) -> None:
        key = _plain_key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        body, whole = await read_body(receive)
        event = await self._create(calendar_id, key, body) if whole else None
        if event is None:
            await self.app(scope, replaying(body, None if whole else receive), send)
            return
        payload = _JSON.encode(event)
        headers = [(b"etag", etag_of(event).encode()), _JSON_TYPE, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": payload, "more_body": False})

    async def _create(self, calendar_id: str, key: str, body: bytes) -> Event | None:
        """The created event, or None when the Litestar route must answer (nothing was written)."""
        try:
            data = msgspec.convert(msgspec.json.decode(body), EventCreate, strict=False, str_keys=True)
            ctx = Ctx(principal=await authenticate(self.db, key), base_url=self.base_url)
            return await self.db.write(lambda tx: event_service.create(tx, ctx, calendar_id, data))
        except Exception:  # noqa: BLE001 - the route answers it, in the one envelope
            return None


def _plain_key(scope: Scope) -> str | None:
    """The API key of a request the hot route may answer: one with a key (not a session cookie)
    and no Idempotency-Key (that middleware keeps answers); None sends it to the Litestar route."""
    authorization = x_api_key = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = authorization or value.decode("latin-1")
        elif name == b"x-api-key":
            x_api_key = value.decode("latin-1") if x_api_key is None else x_api_key
        elif name == b"idempotency-key":
            return None
    return key_of(authorization, x_api_key) or None
