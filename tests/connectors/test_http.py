"""The generic HTTP API connector against a small echoing API on 127.0.0.1 (and httpx's MockTransport
where the exact headers on the wire matter)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from chronary.config import Settings
from chronary.connectors import load
from chronary.connectors.base import BadCredentials, BadInput, Unreachable
from chronary.connectors.http import Connector
from tests.connectors._support import run_connector
from tests.fakes.server import FakeServer, Reply, Request, route

KEY = "sk-live-0123456789abcdef"
T = TypeVar("T")


class FakeApi(FakeServer):
    """Echoes every request as JSON; /text answers text, /teapot a 418, unknown /missing/* a 404."""

    def _echo(self, req: Request) -> Reply:
        if req.path == "/text":
            return Reply.text(200, "plain words")
        if req.path == "/teapot":
            return Reply.json(418, {"error": "I'm a teapot"}, {"X-Trace": "t-1"})
        if req.path.startswith("/missing"):
            return Reply.json(404, {"error": "no such thing"})
        return Reply.json(
            200,
            {
                "method": req.method,
                "path": req.path,
                "query": req.query,
                "headers": req.headers,
                "body": req.body.decode(),
            },
            {"X-Request-Id": "req-42", "Set-Cookie": "session=abc"},
        )

    @route("GET", r"/.*")
    def get(self, req: Request) -> Reply:
        return self._echo(req)

    @route("POST", r"/.*")
    def post(self, req: Request) -> Reply:
        return self._echo(req)

    @route("PUT", r"/.*")
    def put(self, req: Request) -> Reply:
        return self._echo(req)

    @route("PATCH", r"/.*")
    def patch(self, req: Request) -> Reply:
        return self._echo(req)

    @route("DELETE", r"/.*")
    def delete(self, req: Request) -> Reply:
        return self._echo(req)

    @route("HEAD", r"/.*")
    def head(self, req: Request) -> Reply:
        return self._echo(req)


@pytest.fixture
def api() -> Iterator[FakeApi]:
    with FakeApi() as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def call(settings: Settings, credentials: dict[str, str], fn: Callable[[Connector], Awaitable[T]]) -> T:
    return run_connector(Connector, settings, credentials, fn)


def request(settings: Settings, credentials: dict[str, str], **inputs: Any) -> dict[str, Any]:
    return call(settings, credentials, lambda c: c.run("request", inputs))


def test_the_registry_loads_this_connector() -> None:
    assert load("http") is Connector


def test_bearer_key_json_body_and_the_answer(api: FakeApi, settings: Settings) -> None:
    answer = request(
        settings,
        {"base_url": api.url + "/api", "api_key": KEY},  # auth_style absent: bearer is the default
        method="POST",
        path="/v1/tickets",
        query={"state": "open"},
        headers={"Accept": "application/json", "Authorization": "Bearer stolen"},
        body={"title": "Printer on fire"},
    )
    (seen,) = api.requests
    assert (seen.method, seen.path, seen.param("state")) == ("POST", "/api/v1/tickets", "open")
    assert seen.header("authorization") == f"Bearer {KEY}"  # the caller's Authorization was dropped
    assert seen.header("content-type") == "application/json"
    assert seen.header("accept") == "application/json"
    assert json.loads(seen.body) == {"title": "Printer on fire"}
    assert answer["status"] == 200
    assert answer["headers"]["x-request-id"] == "req-42"
    assert answer["headers"]["content-type"] == "application/json"
    assert "set-cookie" not in answer["headers"] and "content-length" not in answer["headers"]
    assert all(name == name.lower() for name in answer["headers"])
    assert answer["body"]["path"] == "/api/v1/tickets"  # parsed JSON, not text


def test_header_style_puts_the_key_in_the_named_header(api: FakeApi, settings: Settings) -> None:
    creds = {"base_url": api.url, "api_key": KEY, "auth_style": "header", "header_name": "X-Token"}
    request(settings, creds, method="GET", path="/status")
    (seen,) = api.requests
    assert seen.header("x-token") == KEY
    assert seen.header("authorization") is None
    assert seen.query == {}


def test_header_style_defaults_to_x_api_key(api: FakeApi, settings: Settings) -> None:
    request(settings, {"base_url": api.url, "api_key": KEY, "auth_style": "header"}, method="GET", path="/status")
    assert api.requests[0].header("x-api-key") == KEY


def test_query_style_puts_the_key_in_the_named_parameter_and_the_caller_cannot_override_it(
    api: FakeApi, settings: Settings
) -> None:
    creds = {"base_url": api.url, "api_key": KEY, "auth_style": "query", "query_param": "key"}
    request(settings, creds, method="GET", path="/search", query={"q": "x", "key": "forged"})
    (seen,) = api.requests
    assert seen.query == {"q": ["x"], "key": [KEY]}
    assert seen.header("authorization") is None


def test_query_style_defaults_to_api_key(api: FakeApi, settings: Settings) -> None:
    request(settings, {"base_url": api.url, "api_key": KEY, "auth_style": "query"}, method="GET", path="/s")
    assert api.requests[0].param("api_key") == KEY


def test_no_key_sends_no_auth(api: FakeApi, settings: Settings) -> None:
    target = Connector({"base_url": api.url}, settings, httpx.AsyncClient()).target()
    assert (dict(target.headers), dict(target.query)) == ({}, {})
    request(settings, {"base_url": api.url, "auth_style": "query"}, method="DELETE", path="/thing/1")
    (seen,) = api.requests
    assert (seen.method, seen.header("authorization"), seen.query) == ("DELETE", None, {})


def test_a_non_2xx_answer_is_returned_not_raised(api: FakeApi, settings: Settings) -> None:
    teapot = request(settings, {"base_url": api.url}, method="GET", path="/teapot")
    assert teapot["status"] == 418
    assert teapot["body"] == {"error": "I'm a teapot"}
    assert teapot["headers"]["x-trace"] == "t-1"
    missing = request(settings, {"base_url": api.url}, method="GET", path="/missing/1")
    assert (missing["status"], missing["body"]) == (404, {"error": "no such thing"})


def test_a_text_answer_is_text_and_head_has_no_body(api: FakeApi, settings: Settings) -> None:
    text = request(settings, {"base_url": api.url}, method="GET", path="/text")
    assert (text["status"], text["body"]) == (200, "plain words")
    head = request(settings, {"base_url": api.url}, method="HEAD", path="/anything")
    assert (head["status"], head["body"]) == (200, None)


def test_a_caller_json_media_type_is_kept(api: FakeApi, settings: Settings) -> None:
    request(
        settings,
        {"base_url": api.url},
        method="PATCH",
        path="/doc",
        headers={"content-type": "application/merge-patch+json"},
        body={"a": None},
    )
    assert api.requests[0].header("content-type") == "application/merge-patch+json"
    assert api.requests[0].body == b'{"a": null}'


def test_wire_headers_have_one_key_header_and_one_content_type(settings: Settings) -> None:
    """A caller's `x-token` or `content-type` in another case must not travel beside the connection's."""
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, headers=[("Link", "<a>"), ("Link", "<b>"), ("Content-Type", "application/json")], json={})

    async def main() -> dict[str, Any]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            creds = {"base_url": "https://api.example.com", "api_key": KEY, "auth_style": "header", "header_name": "X-Token"}
            inputs = {
                "method": "POST",
                "path": "/x",
                "headers": {"x-token": "forged", "content-type": "text/plain"},
                "body": [1],
            }
            return await Connector(creds, settings, http).run("request", inputs)

    answer = asyncio.run(main())
    (req,) = seen
    assert req.headers.get_list("x-token") == [KEY]
    assert req.headers.get_list("content-type") == ["application/json"]
    assert answer["headers"]["link"] == "<a>, <b>"  # repeated headers joined


@pytest.mark.parametrize(
    ("creds", "field"),
    [
        ({"base_url": "ftp://files.example.com", "api_key": KEY}, "base_url"),
        ({"base_url": "https://api.example.com?token=1", "api_key": KEY}, "base_url"),
        ({"api_key": KEY}, "base_url"),
        ({"base_url": "https://api.example.com", "api_key": KEY, "auth_style": "cookie"}, "auth_style"),
        (
            {"base_url": "https://api.example.com", "api_key": KEY, "auth_style": "header", "header_name": "X Bad"},
            "header_name",
        ),
        (
            {"base_url": "https://api.example.com", "api_key": KEY, "auth_style": "header", "header_name": "Host"},
            "header_name",
        ),
        ({"base_url": "https://api.example.com", "api_key": "line\r\nInjected: 1"}, "api_key"),
    ],
)
def test_bad_credentials_name_their_field(settings: Settings, creds: dict[str, str], field: str) -> None:
    with pytest.raises(BadCredentials) as caught:
        request(settings, creds, method="GET", path="/")
    assert caught.value.field == field
    assert KEY not in caught.value.reason


def test_paths_must_stay_below_the_base_url(api: FakeApi, settings: Settings) -> None:
    for path in ("/../admin", "/%2e%2e/admin", "//evil.example/x", "/a?b=c"):
        with pytest.raises(BadInput) as caught:
            request(settings, {"base_url": api.url + "/api"}, method="GET", path=path)
        assert caught.value.field == "path"
    assert api.requests == []


def test_check_is_not_possible_and_sends_nothing(api: FakeApi, settings: Settings) -> None:
    assert call(settings, {"base_url": api.url, "api_key": KEY}, lambda c: c.check()) is None
    assert api.requests == []


def test_an_unreachable_api_is_reported_without_the_key(settings: Settings) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    creds = {"base_url": f"http://127.0.0.1:{port}", "api_key": KEY, "auth_style": "query"}
    with pytest.raises(Unreachable) as caught:
        request(settings, creds, method="GET", path="/x")
    assert KEY not in caught.value.reason
    assert "http" in caught.value.reason


def test_inbound_relays_the_body_and_only_safe_headers(settings: Settings) -> None:
    connector = Connector({"base_url": "https://api.example.com"}, settings, httpx.AsyncClient())
    headers = {
        "content-type": "application/json",
        "user-agent": "GitHub-Hookshot/1",
        "x-github-event": "push",
        "x-github-delivery": "d-1",
        "x-hub-signature-256": "sha256=abc",
        "x-api-key": "k",
        "x-gitlab-token": "t",
        "x-webhook-secret": "s",
        "authorization": "Bearer b",
        "cookie": "c=1",
        "accept": "*/*",
    }
    got = connector.inbound(headers, b'{"ref": "main"}', datetime.now(UTC))
    assert got.event == "request"
    assert got.payload == {
        "headers": {
            "content-type": "application/json",
            "user-agent": "GitHub-Hookshot/1",
            "x-github-event": "push",
            "x-github-delivery": "d-1",
        },
        "body": {"ref": "main"},
    }
    text = connector.inbound({"content-type": "text/plain"}, b"hello", datetime.now(UTC))
    assert text.payload == {"headers": {"content-type": "text/plain"}, "body": "hello"}
    assert got.reply is None
