"""The /v1 guard: resolve the API key into a Principal before any handler runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from weakref import WeakKeyDictionary

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from chronary.errors import Forbidden
from chronary.services import keys as key_service
from chronary.services import sessions
from chronary.services.context import Principal
from chronary.store.db import Database

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


def presented_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The Bearer token, else `x-api-key`; "" (malformed) for another Authorization scheme alone.

    A non-Bearer Authorization (say Basic, added by a proxy) does not hide a valid x-api-key.
    """
    return key_of(connection.headers.get("authorization"), connection.headers.get("x-api-key"))


def key_of(authorization: str | None, x_api_key: str | None) -> str | None:
    """`presented_key` from the two headers' values (None: that header is absent)."""
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            return token.strip()
    if x_api_key is not None:
        return x_api_key.strip()
    return "" if authorization else None


_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def api_key_guard(db: Database) -> Guard:
    """The guard for /v1 on this database: the key's Principal lands in `connection.state.principal`.

    A request with no key but the web UI's session cookie acts as the key that session signed in
    with; its writes must carry the session's CSRF token (X-CSRF-Token), or they are refused.
    """

    async def require_api_key(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        key = presented_key(connection)
        cookie = connection.cookies.get(sessions.COOKIE) if key is None else None
        if cookie:
            found = await db.write(lambda tx: sessions.resolve(tx, cookie))
            if found is not None:
                if connection.scope.get("method", "GET") not in _SAFE_METHODS and not sessions.csrf_ok(
                    found, connection.headers.get(sessions.CSRF_HEADER)
                ):
                    raise Forbidden("Writes from the web UI need the session's X-CSRF-Token header")
                connection.state.principal = found.principal
                return
        connection.state.principal = await _authenticate(db, cache, key)

    cache = key_cache(db)
    return require_api_key


_CACHES: WeakKeyDictionary[Database, key_service.KeyCache] = WeakKeyDictionary()


def key_cache(db: Database) -> key_service.KeyCache:
    """One cache of authenticated keys per database, shared by its guards and the hot routes."""
    cache = _CACHES.get(db)
    if cache is None:
        cache = _CACHES[db] = key_service.KeyCache()
    return cache


async def authenticate(db: Database, key: str | None) -> Principal:
    """The Principal of an API key as the guard finds it (Unauthorized when it is no key)."""
    return await _authenticate(db, key_cache(db), key)


async def _authenticate(db: Database, cache: key_service.KeyCache, key: str | None) -> Principal:
    """The key's Principal: from the cache while the database's stamp is the one it was filled
    under (no commit since changed a key, agent or org, in any process), else looked up."""
    if not key:
        return await db.read(lambda tx: key_service.authenticate(tx, key))
    stamp = db.stamp()  # before the lookup: a revocation committed after it moves the stamp
    key_digest = key_service.digest(key)
    found = cache.get(key_digest, stamp)
    if found is None:
        found = await db.read(lambda tx: key_service.authenticate(tx, key))
        cache.put(key_digest, found, stamp)
    return found
