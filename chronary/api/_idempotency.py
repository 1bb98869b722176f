"""`Idempotency-Key` on every POST and PATCH under /v1 and /connect/v1 (services/idempotency.py).

Router middleware, so it runs inside Litestar's error handling (its refusals leave in the one
envelope) but before the handler: the caller is authenticated here first (the same guard the
router runs), because a stored answer is only ever replayed to the key holder that caused it.
The whole answer is buffered and stored before it is sent, so a client that saw an answer and
retries gets that answer; API answers to writes are small.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from chronary import ids
from chronary.api._auth import api_key_guard
from chronary.api._body import MAX_BODY_BYTES, read_body, replaying
from chronary.errors import IdempotencyInProgress
from chronary.runtime import Runtime
from chronary.services import idempotency
from chronary.services.context import Principal
from chronary.store.db import Tx

METHODS = frozenset({"POST", "PATCH"})
WAIT_SECONDS = 10.0  # how long a retry waits for a first request that is still running


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime
        self.guard = api_key_guard(runtime.db)
        # one per running server: a key another process left running is a retry's to take
        self.owner = str(runtime.extras.setdefault("idempotency_owner", ids.new_id("run")))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_key = _key_header(scope) if scope["type"] == "http" and scope.get("method") in METHODS else None
        if raw_key is None:
            await self.app(scope, receive, send)
            return
        key = idempotency.check_key(raw_key.strip())
        body, complete = await read_body(receive, MAX_BODY_BYTES)
        replay = replaying(body, receive if not complete else None)
        if not complete:
            await self.app(scope, replay, send)
            return
        connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope, replay)
        await self.guard(connection, None)  # type: ignore[arg-type]  # the guard does not look at the handler
        principal: Principal = connection.state.principal
        query = scope.get("query_string", b"").decode("latin-1")
        target = scope["path"] + (f"?{query}" if query else "")
        fp = idempotency.fingerprint(str(scope.get("method")), target, body)
        holder = principal.key_id
        outcome = await self._begin(holder, key, fp)
        if isinstance(outcome, idempotency.Answer):
            await _send_answer(send, outcome, replayed=True)
            return
        answer = await self._run(scope, replay, holder, key)
        await _send_answer(send, answer, replayed=False)

    async def _begin(self, holder: str, key: str, fp: idempotency.Fingerprint) -> idempotency.Answer | idempotency.Begun:
        """Take the key, or wait (polling, backing off) for the answer of the request that has it."""
        db, clock = self.runtime.db, self.runtime.clock
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_SECONDS
        pause = 0.01

        def begin(tx: Tx) -> idempotency.Outcome:
            return idempotency.begin(tx, holder, key, fp, self.owner, int(clock.now().timestamp()), self.runtime.secrets)

        while True:
            outcome = await db.write(begin)
            if not isinstance(outcome, idempotency.Running):
                return outcome
            if loop.time() + pause > deadline:
                raise IdempotencyInProgress(
                    f"A request with this {idempotency.HEADER} is still running; retry in a few seconds",
                    idempotency.HEADER,
                    headers={"Retry-After": "2"},
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.2)

    async def _run(self, scope: Scope, receive: Receive, holder: str, key: str) -> idempotency.Answer:
        """Run the request holding the key; keep its answer, or release the key for a retry."""
        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        db = self.runtime.db
        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await asyncio.shield(db.write(lambda tx: idempotency.release(tx, holder, key, self.owner)))
            raise
        answer = _answer_of(captured)
        if idempotency.worth_keeping(answer.status):
            await db.write(lambda tx: idempotency.finish(tx, holder, key, self.owner, answer, self.runtime.secrets))
        else:
            await db.write(lambda tx: idempotency.release(tx, holder, key, self.owner))
        return answer


def idempotency_middleware(runtime: Runtime) -> Callable[[ASGIApp], ASGIApp]:
    """The routers' middleware factory (Litestar would deep-copy a runtime given as an argument)."""

    def wrap(app: ASGIApp) -> ASGIApp:
        return IdempotencyMiddleware(app, runtime)

    return wrap


def _key_header(scope: Scope) -> str | None:
    """The Idempotency-Key header as sent (an empty one is refused, not ignored); None if absent."""
    for name, value in scope.get("headers", []):
        if name == b"idempotency-key":
            return bytes(value).decode("latin-1")
    return None


def _answer_of(messages: list[Message]) -> idempotency.Answer:
    status, headers, parts = 500, [], []
    for message in messages:
        if message["type"] == "http.response.start":
            status = int(message["status"])
            headers = [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            parts.append(bytes(message.get("body", b"")))
    return idempotency.Answer(status, headers, b"".join(parts))


async def _send_answer(send: Send, answer: idempotency.Answer, *, replayed: bool) -> None:
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in answer.headers
        if name.lower() != "content-length"
    ]
    headers.append((b"content-length", str(len(answer.body)).encode()))
    if replayed:
        headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body, "more_body": False})
