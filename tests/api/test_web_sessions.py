"""Web UI sessions over HTTP: one-time links, pasted keys, the cookie's flags, CSRF on writes,
expiry, sign-out, revocation and brute-force limits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from chronary.clock import ManualClock
from chronary.services import sessions
from tests.conftest import Api


def _link(api: Api) -> str:
    runtime = api.runtime
    link, _ = runtime.db.write_sync(lambda tx: sessions.create_login_link(tx, runtime.org_id, "http://127.0.0.1:8765"))
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def _browser(api: Api) -> Any:
    """The same app with no API key: a browser with only its cookie jar."""
    client = api.client
    client.headers.pop("Authorization", None)
    client.cookies.clear()
    return client


def test_a_link_signs_in_once_with_a_strict_httponly_cookie(api: Api) -> None:
    link = _link(api)
    browser = _browser(api.as_key(""))
    r = browser.get(link, follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert "chronary_session=" in cookie and "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert "Secure" not in cookie  # plain http here; https gets Secure
    info = browser.get("/auth/session").json()
    assert info["agent_id"] is None and info["org_id"] == api.runtime.org_id and info["csrf_token"]
    assert browser.get("/v1/agents").status_code == 200  # the cookie works on the API
    again = _browser(api.as_key("")).get(link, follow_redirects=False)
    assert again.status_code == 302 and again.headers["location"] == "/login?error=expired_link"


def test_writes_need_the_csrf_token(api: Api) -> None:
    browser = _browser(api.as_key(""))
    browser.get(_link(api), follow_redirects=False)
    csrf = browser.get("/auth/session").json()["csrf_token"]
    refused = browser.post("/v1/agents", json={"name": "Ada"})
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["error"]["message"]
    wrong = browser.post("/v1/agents", json={"name": "Ada"}, headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    ok = browser.post("/v1/agents", json={"name": "Ada"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201, ok.text
    assert browser.post("/auth/logout").status_code == 403  # signing out is a write too
    assert browser.post("/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert browser.get("/v1/agents").status_code == 401


def test_an_agent_key_signs_in_to_that_agent_only_and_revoking_it_ends_the_session(api: Api) -> None:
    ada, other = api.agent("Ada"), api.agent("Other")
    key = api.agent_key(ada["id"])
    key_id = next(k["id"] for k in api.get("/v1/keys").json()["data"] if k["agent_id"] == ada["id"])
    browser = _browser(api.as_key(""))
    r = browser.post("/auth/login", json={"api_key": key})
    assert r.status_code == 200 and r.json()["agent_id"] == ada["id"], r.text
    assert "HttpOnly" in r.headers["set-cookie"]
    assert browser.get(f"/v1/agents/{ada['id']}").status_code == 200
    assert browser.get(f"/v1/agents/{other['id']}").status_code == 404  # the API's own scope
    assert api.as_key(api.key).delete(f"/v1/keys/{key_id}").status_code == 204
    assert browser.get(f"/v1/agents/{ada['id']}").status_code == 401


def test_sessions_expire_when_idle(make_api: Any) -> None:
    clock = ManualClock(datetime(2026, 12, 1, 9, tzinfo=UTC))
    api: Api = make_api(clock=clock)
    browser = _browser(api.as_key(""))
    assert browser.post("/auth/login", json={"api_key": api.key}).status_code == 200
    clock.advance(hours=11)
    assert browser.get("/v1/agents").status_code == 200  # used: the idle timer moves on
    clock.advance(hours=11)
    assert browser.get("/v1/agents").status_code == 200
    clock.advance(hours=13)
    assert browser.get("/v1/agents").status_code == 401
    link = _link(api)
    clock.advance(minutes=16)  # links last 15 minutes
    assert _browser(api.as_key("")).get(link, follow_redirects=False).headers["location"] == "/login?error=expired_link"


def test_wrong_keys_are_refused_and_rate_limited(api: Api) -> None:
    browser = _browser(api.as_key(""))
    for _ in range(sessions.FAILED_PER_MINUTE):
        r = browser.post("/auth/login", json={"api_key": "chr_sk_guess-0000000000000000000000"})
        assert r.status_code == 401
    limited = browser.post("/auth/login", json={"api_key": api.key})  # even the right key waits now
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert browser.post("/auth/login", json={}).status_code == 400  # validated like every body
