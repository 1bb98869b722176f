"""Sign-in for the web UI: `/login` (one-time links), `/auth/login|session|logout` (cookie sessions).

The session cookie is HttpOnly, SameSite=Strict and Secure when the server is reached over https;
the UI reads its CSRF token from `GET /auth/session` and sends it as `X-CSRF-Token` on writes
(the /v1 guard checks it for cookie-authenticated requests). See services/sessions.py.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.params import Parameter
from litestar.response import Redirect
from msgspec import Meta

from chronary.api import web_ui
from chronary.api._common import ERRORS, RuntimeDep
from chronary.errors import Forbidden, Unauthorized
from chronary.schemas.common import Input, Timestamp
from chronary.services import sessions
from chronary.timeutil import from_ts, iso_ms


def _failed(runtime: RuntimeDep) -> sessions.FailedSignIns:
    """This server's failed sign-in counter (one per runtime, not per process)."""
    found = runtime.extras.get("failed_sign_ins")
    if not isinstance(found, sessions.FailedSignIns):
        found = runtime.extras["failed_sign_ins"] = sessions.FailedSignIns()
    return found


class SignIn(Input):
    api_key: Annotated[str, Meta(min_length=1, max_length=200, description="An org (chr_sk_…) or agent (chr_ak_…) key")]


class SessionInfo(msgspec.Struct):
    org_id: str
    agent_id: str | None
    key_id: str
    csrf_token: str
    expires_at: Timestamp


def _secure(request: Request[Any, Any, Any], runtime: RuntimeDep) -> bool:
    public = runtime.settings.public_url or ""
    return request.url.scheme == "https" or public.startswith("https://")


def _cookie(value: str, secure: bool, max_age: int = sessions.SESSION_MAX) -> Cookie:
    return Cookie(
        key=sessions.COOKIE, value=value, max_age=max_age, path="/", httponly=True, samesite="strict", secure=secure
    )


def _client(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else "unknown"


@get("/login", include_in_schema=False)
async def login_page(
    request: Request[Any, Any, Any], runtime: RuntimeDep, token: str | None = Parameter(default=None, max_length=200)
) -> Response[Any]:
    """With `?token=`: sign in and go to the calendar; without: the sign-in page."""
    if token is not None:
        client, failed = _client(request), _failed(runtime)
        failed.check(client)
        try:
            session_id = await runtime.db.write(lambda tx: sessions.sign_in_with_link(tx, token))
        except Unauthorized:
            failed.failed(client)
            return Redirect("/login?error=expired_link", status_code=302)
        return Redirect("/", status_code=302, cookies=[_cookie(session_id, _secure(request, runtime))])
    return web_ui.page(request, "login.html")


@post("/auth/login", tags=["web sign-in"], status_code=200, responses={401: ERRORS[401], 429: ERRORS[429]})
async def sign_in(request: Request[Any, Any, Any], runtime: RuntimeDep, data: SignIn) -> Response[SessionInfo]:
    """Sign in to the web UI with an API key: an HttpOnly session cookie in the key's own scope."""
    client, failed = _client(request), _failed(runtime)
    failed.check(client)
    try:
        session_id = await runtime.db.write(lambda tx: sessions.sign_in_with_key(tx, data.api_key))
    except Unauthorized:
        failed.failed(client)
        raise
    found = await runtime.db.write(lambda tx: sessions.resolve(tx, session_id))
    assert found is not None
    return Response(_info(found), cookies=[_cookie(session_id, _secure(request, runtime))])


@get("/auth/session", tags=["web sign-in"], responses={401: ERRORS[401]})
async def session_info(request: Request[Any, Any, Any], runtime: RuntimeDep) -> SessionInfo:
    """Who the session cookie signs in as, and the CSRF token for writes."""
    cookie = request.cookies.get(sessions.COOKIE)
    found = await runtime.db.write(lambda tx: sessions.resolve(tx, cookie))
    if found is None:
        raise Unauthorized("Not signed in")
    return _info(found)


@post("/auth/logout", tags=["web sign-in"], status_code=204)
async def sign_out(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[None]:
    """End this browser's session (and forget the cookie)."""
    cookie = request.cookies.get(sessions.COOKIE)
    found = await runtime.db.write(lambda tx: sessions.resolve(tx, cookie))
    if found is not None and not sessions.csrf_ok(found, request.headers.get(sessions.CSRF_HEADER)):
        raise Forbidden("Signing out needs the session's X-CSRF-Token header")
    await runtime.db.write(lambda tx: sessions.sign_out(tx, cookie))
    return Response(None, status_code=204, cookies=[_cookie("", _secure(request, runtime), max_age=0)])


def _info(found: sessions.Session) -> SessionInfo:
    return SessionInfo(
        org_id=found.principal.org_id,
        agent_id=found.principal.agent_id,
        key_id=found.principal.key_id,
        csrf_token=found.csrf,
        expires_at=iso_ms(from_ts(found.expires_ts)),
    )


PUBLIC_ROUTES = [login_page, sign_in, session_info, sign_out]
