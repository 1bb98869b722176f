"""The Connect API over real HTTP (uvicorn on 127.0.0.1) against a local HTTP API: custom
providers, connect/status/disconnect, the proxy and its guards, rate limit, audit log, the
http.request action, inbound URLs relayed as signed webhooks, and no secret in plaintext."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.server import FakeServer, Reply, Request, route
from tests.webhooks.receiver import Receiver

SECRET = "sk_live_abcdefghijklmnop0123456789"


class EchoApi(FakeServer):
    """Any HTTP API: answers what it got (method, path, query, the key's header, body)."""

    @route("GET", r"/v1/.*")
    def read(self, req: Request) -> Reply:
        return self._echo(req)

    @route("POST", r"/v1/.*")
    def write(self, req: Request) -> Reply:
        return self._echo(req, 201)

    @route("GET", r"/big")
    def big(self, req: Request) -> Reply:
        return Reply.text(200, "x" * 5000)

    def _echo(self, req: Request, status: int = 200) -> Reply:
        body = {
            "method": req.method,
            "path": req.path,
            "query": {k: v[0] for k, v in req.query.items()},
            "authorization": req.header("authorization"),
            "x_api_key": req.header("x-api-key"),
            "body": req.json() if req.body else None,
        }
        return Reply.json(status, body, {"X-Upstream": "echo", "Set-Cookie": "session=abc", "Connection": "close"})


@pytest.fixture
def echo() -> Any:
    with EchoApi() as fake:
        yield fake


@pytest.fixture
def server(live_server: Any) -> Any:
    return live_server(connect_proxy_requests_per_minute=600, connect_proxy_max_bytes=4096)


def _custom(c: httpx.Client, base: str, style: str = "bearer", **auth: str) -> dict[str, Any]:
    r = c.post(
        "/connect/v1/providers",
        json={"type": "tickets", "name": "Tickets", "baseUrl": base, "auth": {"style": style, **auth}},
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_a_custom_provider_connects_and_proxies_with_its_key(server: Any, echo: EchoApi) -> None:
    c = server.client()
    provider = _custom(c, echo.url)
    assert provider["type"] == "tickets" and "proxy" in provider["capabilities"]
    assert [a["name"] for a in provider["actions"]] == ["request"]
    listed = {p["type"] for p in c.get("/connect/v1/providers").json()["data"]}
    assert {"tickets", "slack", "chronary"} <= listed
    assert c.post("/connect/v1/providers", json={"type": "slack", "name": "x", "baseUrl": echo.url}).status_code == 409

    con = c.post("/connect/v1/providers/tickets/connect", json={"credentials": {"apiKey": SECRET}, "name": "Desk"})
    assert con.status_code == 201, con.text
    body = con.json()
    assert body["providerType"] == "tickets" and body["name"] == "Desk" and body["credentialFields"] == ["apiKey"]
    assert SECRET not in con.text

    r = c.post(
        "/connect/v1/proxy/tickets",
        json={"method": "POST", "path": "/v1/tickets", "query": {"team": "ops"}, "body": {"title": "Printer on fire"}},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["status"] == 201 and out["connectionId"] == body["id"]
    assert out["body"]["authorization"] == f"Bearer {SECRET}" and out["body"]["query"] == {"team": "ops"}
    assert out["body"]["body"] == {"title": "Printer on fire"}
    assert out["headers"]["x-upstream"] == "echo"
    assert "set-cookie" not in out["headers"] and "connection" not in out["headers"]

    status = c.get("/connect/v1/providers/tickets/status").json()
    assert status["connected"] is True and status["connections"][0]["lastUsedAt"] is not None
    assert status["connectVia"] == "/connect/v1/providers/tickets/connect"


@pytest.mark.parametrize(
    ("style", "auth", "check"),
    [
        ("header", {"headerName": "X-API-Key"}, lambda b: b["x_api_key"] == SECRET and b["authorization"] is None),
        ("query", {"queryParam": "token"}, lambda b: b["query"] == {"token": SECRET}),
    ],
)
def test_the_key_goes_where_the_api_expects_it(server: Any, echo: EchoApi, style: str, auth: dict, check: Any) -> None:
    c = server.client()
    _custom(c, echo.url, style, **auth)
    assert c.post("/connect/v1/providers/tickets/connect", json={"credentials": {"apiKey": SECRET}}).status_code == 201
    r = c.post("/connect/v1/proxy/tickets", json={"method": "GET", "path": "/v1/me"})
    assert r.status_code == 200 and check(r.json()["body"]), r.text


ESCAPES = [
    "https://evil.example/steal",
    "//evil.example/x",
    "/v1/../../admin",
    "/v1/%2e%2e/admin",
    "/v1/%252e%252e/admin",
    "/v1/x@evil.example",
    "/v1\\..\\admin",
    "v1/no-leading-slash",
    "/v1/x?token=1",
    "/v1/%0d%0aHost:evil",
]


def test_the_proxy_path_cannot_leave_the_providers_host(server: Any, echo: EchoApi) -> None:
    c = server.client()
    _custom(c, echo.url + "/v1")
    c.post("/connect/v1/providers/tickets/connect", json={"credentials": {"apiKey": SECRET}})
    before = len(echo.requests)
    for path in ESCAPES:
        r = c.post("/connect/v1/proxy/tickets", json={"method": "GET", "path": path})
        assert r.status_code == 400, (path, r.text)
        assert r.json()["error"]["type"] == "validation_error" and r.json()["error"]["param"] == "path"
    assert len(echo.requests) == before  # nothing left the server
    for header in ("Authorization", "X-API-Key", "Cookie", "Proxy-Authorization"):
        r = c.post("/connect/v1/proxy/tickets", json={"method": "GET", "path": "/x", "headers": {header: "mine"}})
        assert r.status_code == 400 and r.json()["error"]["param"] == f"headers.{header}", r.text
    ok = c.post("/connect/v1/proxy/tickets", json={"method": "GET", "path": "/items"})
    assert ok.status_code == 200 and ok.json()["body"]["path"] == "/v1/items"


def test_size_rate_limit_and_audit_log(live_server: Any, echo: EchoApi) -> None:
    server = live_server(connect_proxy_requests_per_minute=6, connect_proxy_max_bytes=4096)
    c = server.client()
    _custom(c, echo.url)
    c.post("/connect/v1/providers/tickets/connect", json={"credentials": {"apiKey": SECRET}})
    big = c.post("/connect/v1/proxy/tickets", json={"method": "GET", "path": "/big"})
    assert big.status_code == 502 and "limit" in big.json()["error"]["message"]
    too_big = c.post("/connect/v1/proxy/tickets", json={"method": "POST", "path": "/v1/x", "body": "y" * 5000})
    assert too_big.status_code == 413
    limited = c.post("/connect/v1/proxy/tickets", json={"method": "GET", "path": "/v1/again"})
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1, limited.text
    log = c.get("/connect/v1/proxy-log").json()
    assert log["total"] >= 3
    statuses = [e["status"] for e in log["data"]]
    assert 429 in statuses and 413 in statuses
    entry = log["data"][-1]
    assert entry["providerType"] == "tickets" and entry["method"] == "GET" and entry["path"] == "/big"
    assert entry["keyId"].startswith("key_") and entry["durationMs"] is not None
    assert SECRET not in json.dumps(log)


def test_the_generic_request_action_and_input_validation(server: Any, echo: EchoApi) -> None:
    c = server.client()
    _custom(c, echo.url)
    con = c.post("/connect/v1/providers/tickets/connect", json={"credentials": {"apiKey": SECRET}}).json()
    r = c.post(
        "/connect/v1/providers/tickets/actions/request",
        json={"method": "POST", "path": "/v1/tickets", "body": {"title": "t"}, "connectionId": con["id"]},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["action"] == "request" and out["connectionId"] == con["id"]
    assert out["output"]["status"] == 201 and out["output"]["body"]["body"] == {"title": "t"}
    missing = c.post("/connect/v1/providers/tickets/actions/request", json={"method": "GET"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "path"
    wrong = c.post("/connect/v1/providers/tickets/actions/request", json={"method": "FETCH", "path": "/x"})
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "method"
    extra = c.post("/connect/v1/providers/tickets/actions/request", json={"method": "GET", "path": "/x", "nope": 1})
    assert extra.status_code == 400 and extra.json()["error"]["param"] == "nope"
    unknown = c.post("/connect/v1/providers/tickets/actions/fly", json={})
    assert unknown.status_code == 404 and unknown.json()["error"]["message"] == "Action not found"


def test_connect_validates_credentials_and_points_oauth_providers_elsewhere(server: Any, echo: EchoApi) -> None:
    c = server.client()
    r = c.post("/connect/v1/providers/google/connect", json={"credentials": {"apiKey": "x"}})
    assert r.status_code == 400 and "/v1/connections/start" in r.json()["error"]["message"]
    r = c.post("/connect/v1/providers/icloud/connect", json={"credentials": {"apiKey": "x"}})
    assert r.status_code == 400 and "/v1/connections" in r.json()["error"]["message"]
    r = c.post("/connect/v1/providers/http/connect", json={"credentials": {"apiKey": SECRET}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "credentials.baseUrl"
    r = c.post("/connect/v1/providers/http/connect", json={"credentials": {"baseUrl": "ftp://x", "apiKey": "k"}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "baseUrl"
    r = c.post("/connect/v1/providers/http/connect", json={"credentials": {"baseUrl": echo.url, "colour": "red"}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "credentials.colour"
    r = c.post(
        "/connect/v1/providers/http/connect",
        json={"credentials": {"baseUrl": echo.url, "authStyle": "carrier-pigeon"}},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "credentials.authStyle"
    r = c.post("/connect/v1/providers/nope/connect", json={"credentials": {}})
    assert r.status_code == 404 and r.json()["error"]["message"] == "Provider not found"
    r = c.post("/connect/v1/providers/http/connect", json={"credentials": {"baseUrl": server.base_url}})
    assert r.status_code == 400 and "not allowed" in r.json()["error"]["message"]  # this server itself
    assert c.get("/connect/v1/providers/http/status").json()["connections"] == []


def test_inbound_deliveries_are_kept_and_relayed_as_signed_webhooks(live_server: Any, echo: EchoApi) -> None:
    server = live_server(workers=True)
    c = server.client()
    con = c.post("/connect/v1/providers/http/connect", json={"credentials": {"baseUrl": echo.url, "apiKey": SECRET}}).json()
    inbound = con["inboundUrl"]
    assert inbound.startswith(server.base_url + "/connect/v1/inbound/inb_")
    receiver = Receiver().start()
    try:
        sub = c.post("/connect/v1/providers/http/webhooks", json={"url": receiver.url, "events": ["request"]})
        assert sub.status_code == 201, sub.text
        sub_body = sub.json()
        assert sub_body["events"] == ["http.request"] and sub_body["secret"].startswith("whsec_")
        listed = c.get("/connect/v1/providers/http/webhooks").json()
        assert listed["total"] == 1 and "secret" not in listed["data"][0]
        assert all(w["id"] != sub_body["id"] for w in c.get("/v1/webhooks").json()["data"])

        anonymous = httpx.Client(timeout=10)
        r = anonymous.post(inbound, json={"id": "evt-1", "ticket": 42}, headers={"X-Request-Id": "abc"})
        assert r.status_code == 200 and r.json()["received"] is True, r.text
        again = anonymous.post(inbound, json={"id": "evt-1", "ticket": 42})
        assert again.status_code == 200 and again.json()["recordId"] is None  # a retried delivery, kept once
        form = anonymous.post(inbound, content=b"a=1&b=2", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert form.status_code == 200, form.text
        assert anonymous.post(inbound + "x", json={}).status_code == 404

        got = receiver.wait_for(2, timeout=20)
        first = got[0].json
        assert first["type"] == "http.request"
        obj = first["data"]["object"]
        assert obj["connection_id"] == con["id"] and obj["payload"]["body"] == {"id": "evt-1", "ticket": 42}
        assert got[0].headers["Chronary-Webhook-Signature"].startswith("v1=")
        assert {g.json["type"] for g in got} == {"http.request"}
        assert got[1].json["data"]["object"]["payload"]["body"] == "a=1&b=2"
    finally:
        receiver.close()


def test_disconnect_forgets_credentials_and_subscriptions(server: Any, echo: EchoApi) -> None:
    c = server.client()
    con = c.post("/connect/v1/providers/http/connect", json={"credentials": {"baseUrl": echo.url, "apiKey": SECRET}})
    con_id = con.json()["id"]
    assert c.post("/connect/v1/providers/http/webhooks", json={"url": echo.url + "/hook"}).status_code == 201
    gone = c.post("/connect/v1/providers/http/disconnect", json={"connectionId": con_id})
    assert gone.status_code == 200 and gone.json()["disconnected"] == [con_id]
    assert c.get("/connect/v1/providers/http/status").json()["connected"] is False
    r = c.post("/connect/v1/proxy/http", json={"method": "GET", "path": "/v1/x"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "connectionId"
    assert c.post("/connect/v1/providers/http/disconnect", json={}).status_code == 400


def test_permissions_gate_each_connect_endpoint(server: Any, echo: EchoApi) -> None:
    c = server.client()
    agent = c.post("/v1/agents", json={"name": "Ada"}).json()
    viewer = c.post("/v1/keys", json={"agent_id": agent["id"], "permissions": ["providers.view"]}).json()["secret"]
    v = server.client(viewer)
    r = v.post("/connect/v1/providers/http/connect", json={"credentials": {"baseUrl": echo.url}})
    assert r.status_code == 403 and "providers.write" in r.json()["error"]["message"]
    r = v.post("/connect/v1/proxy/http", json={"method": "GET", "path": "/"})
    assert r.status_code == 403 and "proxy.execute" in r.json()["error"]["message"]
    r = v.post("/connect/v1/providers/http/actions/request", json={"method": "GET", "path": "/"})
    assert r.status_code == 403 and "actions.execute" in r.json()["error"]["message"]
    r = v.post("/connect/v1/providers/http/webhooks", json={"url": echo.url})
    assert r.status_code == 403 and "triggers.write" in r.json()["error"]["message"]
    assert v.get("/connect/v1/providers/http/status").status_code == 200


def test_credentials_are_never_stored_in_plaintext(server: Any, echo: EchoApi, data_dir: Path) -> None:
    c = server.client()
    c.post("/connect/v1/providers/http/connect", json={"credentials": {"baseUrl": echo.url, "apiKey": SECRET}})
    c.post("/connect/v1/proxy/http", json={"method": "GET", "path": "/v1/me"})
    raw = b"".join(p.read_bytes() for p in data_dir.glob("chronary.db*"))
    assert SECRET.encode() not in raw and b"inb_" not in raw
    assert b"sk_live" not in raw


def test_a_custom_provider_is_deleted_only_once_nothing_is_connected_to_it(server: Any, echo: EchoApi) -> None:
    c = server.client()
    _custom(c, echo.url)
    assert c.get("/connect/v1/providers/tickets").json()["name"] == "Tickets"
    con = c.post("/connect/v1/providers/tickets/connect", json={"credentials": {"apiKey": SECRET}}).json()
    busy = c.delete("/connect/v1/providers/tickets")
    assert busy.status_code == 409 and "disconnect" in busy.json()["error"]["message"]
    assert c.delete("/connect/v1/providers/slack").status_code == 400
    c.post("/connect/v1/providers/tickets/disconnect", json={"connectionId": con["id"]})
    assert c.delete("/connect/v1/providers/tickets").status_code == 204
    assert c.get("/connect/v1/providers/tickets").status_code == 404
    bad = c.post("/connect/v1/providers", json={"type": "Bad Type", "name": "x", "baseUrl": echo.url})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "type"
    own = c.post("/connect/v1/providers", json={"type": "self", "name": "x", "baseUrl": server.base_url})
    assert own.status_code == 400 and own.json()["error"]["param"] == "baseUrl"
