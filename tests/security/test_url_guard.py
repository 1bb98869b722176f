"""The own-address guard (issue 11, item 5): no alias of this server gets through, at save time
(400 naming the field) or at connect time (DNS rebinding, redirects, the CalDAV library's own
requests). Other services on loopback/LAN on other ports stay reachable (the default allows
private targets, and the test suite's own receivers and Radicale rely on it)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from chronary import outbound
from chronary.app import create_app
from chronary.config import Settings
from chronary.outbound import (
    USER_AGENT,
    BlockedTarget,
    GuardedTransport,
    OutboundError,
    check_target,
    fetch,
)
from chronary.providers.base import Account, ProviderError
from chronary.providers.caldav import Provider, guarded_session
from chronary.runtime import open_runtime
from chronary.store import subscriptions as sub_store
from chronary.store import webhooks as webhook_store
from chronary.workers.webhooks import OPTIONS_KEY
from tests.conftest import free_port, wait_until
from tests.security.servers import Redirector, Sentinel, TlsFeedServer, machine_addresses

LAN = machine_addresses()
LAN_HOSTS = [f"[{a}]" if ":" in a else a for a in LAN]
ALIASES = [
    "127.0.0.1",
    "0.0.0.0",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[0:0:0:0:0:ffff:7f00:1]",
    "[::]",
    "[::1]",
    "localhost",
    "localhost.",
    "LOCALHOST",
    "app.localhost",
    "127.0.0.2",
    "127.255.255.254",
    *LAN_HOSTS,
]
SHORTHANDS = ["0", "127.1", "2130706433", "0x7f.1"]  # refused by syntax; resolve to 127.0.0.1/0.0.0.0


def test_the_machine_has_a_lan_address_to_test_with() -> None:
    assert LAN, "expected at least one non-loopback interface address"


# -- save time --------------------------------------------------------------------------------


@pytest.fixture
def bound_everywhere(make_api: Any) -> Any:
    """The app as `serve --host 0.0.0.0` on port 8765 (the TestClient's own address)."""
    return make_api(host="0.0.0.0", port=8765)


def _refused(r: Any, words: str) -> None:
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "validation_error" and err["param"] == "url", err
    assert words in err["message"], err["message"]


@pytest.mark.parametrize("host", ALIASES + SHORTHANDS)
def test_webhook_aliases_of_this_server_are_400(bound_everywhere: Any, host: str) -> None:
    api = bound_everywhere
    words = "four decimal numbers" if host in SHORTHANDS else "this Chronary server itself"
    _refused(api.post("/v1/webhooks", json={"url": f"http://{host}:8765/hook", "events": ["*"]}), words)
    wh = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["*"]}).json()
    _refused(api.patch(f"/v1/webhooks/{wh['id']}", json={"url": f"http://{host}:8765/hook"}), words)


@pytest.mark.parametrize("host", ALIASES + SHORTHANDS)
def test_subscription_aliases_of_this_server_are_400(bound_everywhere: Any, host: str) -> None:
    api = bound_everywhere
    words = "four decimal numbers" if host in SHORTHANDS else "this Chronary server itself"
    agent = api.agent()
    cal, private = api.calendar(agent["id"]), api.calendar(agent["id"], name="Private")
    feed = f"{host}:8765/ical/{private['ical_url'].rsplit('/', 1)[1]}"
    base = f"/v1/agents/{agent['id']}/ical-subscriptions"
    for scheme in ("http", "webcal"):
        _refused(api.post(base, json={"calendar_id": cal["id"], "url": f"{scheme}://{feed}"}), words)
    sub = api.post(base, json={"calendar_id": cal["id"], "url": "http://127.0.0.1:9/cal.ics"}).json()
    _refused(api.patch(f"/v1/ical-subscriptions/{sub['id']}", json={"url": f"http://{feed}"}), words)


def test_other_ports_and_other_hosts_stay_allowed(bound_everywhere: Any) -> None:
    api = bound_everywhere
    for host in ("127.0.0.1", "[::ffff:127.0.0.1]", "localhost", *LAN_HOSTS):
        r = api.post("/v1/webhooks", json={"url": f"http://{host}:9/hook", "events": ["*"]})
        assert r.status_code == 201, (host, r.text)


def test_public_url_endpoint_is_this_server_too(make_api: Any) -> None:
    api = make_api(public_url="https://Cal.Example.COM/")
    r = api.post("/v1/webhooks", json={"url": "https://cal.example.com./hook", "events": ["*"]})
    _refused(r, "this Chronary server itself")


# -- connect time -----------------------------------------------------------------------------


@pytest.fixture
def sentinel() -> Iterator[Sentinel]:
    s = Sentinel()
    yield s
    s.close()


@pytest.fixture
def redirector() -> Iterator[Any]:
    made: list[Redirector] = []

    def factory(target: str, status: int = 302) -> Redirector:
        r = Redirector(target, status)
        made.append(r)
        return r

    yield factory
    for r in made:
        r.close()


def _settings(port: int, tmp_path: Any) -> Settings:
    return Settings(host="0.0.0.0", port=port, data_dir=tmp_path, workers=False)


@pytest.mark.parametrize("host", ALIASES + SHORTHANDS)
def test_connect_time_guard_refuses_every_alias(sentinel: Sentinel, tmp_path: Any, host: str) -> None:
    """The transport alone (no pre-check): it resolves, normalizes and refuses before connecting."""
    settings = _settings(sentinel.port, tmp_path)

    async def go() -> None:
        async with httpx.AsyncClient(transport=GuardedTransport(settings)) as client:
            await client.get(f"http://{host}:{sentinel.port}/")

    with pytest.raises(OutboundError) as caught:  # "localhost." does not resolve here: nothing sent either
        asyncio.run(go())
    assert isinstance(caught.value, BlockedTarget) or "cannot resolve" in caught.value.reason
    assert sentinel.connections == 0


def test_aliases_really_reach_this_port_without_the_guard(sentinel: Sentinel) -> None:
    """Control for the test above: the aliases are live routes to the listener."""
    hosts = ["0.0.0.0", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::]", "127.1", "0x7f.1", "2130706433", *LAN_HOSTS]
    for host in hosts:
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://{host}:{sentinel.port}/", trust_env=False)
    wait_until(lambda: sentinel.connections == len(hosts))


def test_the_guarded_transport_still_reaches_other_ports(sentinel: Sentinel, tmp_path: Any) -> None:
    settings = _settings(free_port(), tmp_path)  # the server is elsewhere: the listener is someone else

    async def go() -> None:
        async with httpx.AsyncClient(transport=GuardedTransport(settings)) as client:
            await client.get(f"http://[::ffff:127.0.0.1]:{sentinel.port}/")

    with pytest.raises(httpx.TransportError):  # it connected, and the listener hung up
        asyncio.run(go())
    wait_until(lambda: sentinel.connections == 1)


def _rebinding_dns(monkeypatch: pytest.MonkeyPatch, name: str, first: str, then: str) -> list[str]:
    """`name` resolves to `first` once, then to `then` (what a rebinding attacker's DNS does)."""
    real = socket.getaddrinfo
    answers: list[str] = []

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if (host.decode() if isinstance(host, bytes) else host) != name:
            return real(host, port, *args, **kwargs)
        answers.append(first if not answers else then)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[-1], int(port or 0)))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return answers


def test_dns_rebinding_between_check_and_connect_is_refused(
    sentinel: Sentinel, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(sentinel.port, tmp_path)
    answers = _rebinding_dns(monkeypatch, "feeds.rebind.test", "203.0.113.7", "127.0.0.1")
    # fetch's own check (before the request) sees the public answer; the connection gets loopback
    with pytest.raises(BlockedTarget, match="this Chronary server itself"):
        asyncio.run(fetch(f"http://feeds.rebind.test:{sentinel.port}/cal.ics", settings))
    assert answers == ["203.0.113.7", "127.0.0.1"] and sentinel.connections == 0
    with pytest.raises(BlockedTarget):  # and a later check (a save, the next hop) sees it too
        check_target(f"http://feeds.rebind.test:{sentinel.port}/cal.ics", settings)


@pytest.mark.parametrize("status", [301, 302, 307])
def test_redirect_hop_to_this_server_is_refused(sentinel: Sentinel, redirector: Any, tmp_path: Any, status: int) -> None:
    settings = _settings(sentinel.port, tmp_path)
    hop = redirector(f"http://[::ffff:127.0.0.1]:{sentinel.port}/private.ics", status)
    with pytest.raises(BlockedTarget, match="this Chronary server itself"):
        asyncio.run(fetch(hop.url + "cal.ics", settings))
    assert hop.requests == 1 and sentinel.connections == 0


# -- the CalDAV library's own requests ----------------------------------------------------------


def test_caldav_redirect_to_this_server_is_never_followed(sentinel: Sentinel, redirector: Any, tmp_path: Any) -> None:
    settings = _settings(sentinel.port, tmp_path)
    for status in (301, 302):
        hop = redirector(f"http://[::ffff:7f00:1]:{sentinel.port}/dav/", status)
        provider = Provider(Account("caldav", "ada", hop.url + "dav/", {"password": "pw"}), settings)
        with pytest.raises(ProviderError, match="this Chronary server itself") as caught:
            asyncio.run(provider.login())
        assert not caught.value.retryable
        asyncio.run(provider.close())
        assert hop.requests >= 1
    assert sentinel.connections == 0


@pytest.mark.parametrize("host", ["[::ffff:127.0.0.1]", "0.0.0.0", "127.1", "localhost", *LAN_HOSTS])
def test_caldav_direct_alias_is_refused(sentinel: Sentinel, tmp_path: Any, host: str) -> None:
    settings = _settings(sentinel.port, tmp_path)
    provider = Provider(Account("caldav", "ada", f"http://{host}:{sentinel.port}/dav/", {"password": "pw"}), settings)
    with pytest.raises(ProviderError) as caught:
        asyncio.run(provider.login())
    assert "this Chronary server itself" in caught.value.reason or "four decimal numbers" in caught.value.reason
    assert sentinel.connections == 0


@pytest.mark.parametrize("host", ["[::ffff:127.0.0.1]", "0.0.0.0", "127.1", "0x7f.1", "localhost", *LAN_HOSTS])
def test_caldav_session_resolver_refuses_at_connect_time(sentinel: Sentinel, tmp_path: Any, host: str) -> None:
    """Even with the per-request URL hook removed, the resolver refuses this server's addresses."""
    session = guarded_session(_settings(sentinel.port, tmp_path))
    session.hooks["pre_request"] = []
    with pytest.raises(BlockedTarget):
        session.request("PROPFIND", f"http://{host}:{sentinel.port}/dav/")
    session.close()
    assert sentinel.connections == 0


def test_caldav_rebinding_is_refused_at_connect_time(
    sentinel: Sentinel, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = guarded_session(_settings(sentinel.port, tmp_path))
    # the URL hook sees the first, harmless answer; the connection would get the second
    answers = _rebinding_dns(monkeypatch, "dav.rebind.test", "203.0.113.7", "127.0.0.1")
    with pytest.raises(BlockedTarget):
        session.request("PROPFIND", f"http://dav.rebind.test:{sentinel.port}/dav/")
    session.close()
    assert answers == ["203.0.113.7", "127.0.0.1"] and sentinel.connections == 0


def test_connection_api_refuses_a_server_that_redirects_to_us(make_api: Any, sentinel: Sentinel, redirector: Any) -> None:
    api = make_api(host="0.0.0.0", port=sentinel.port)
    hop = redirector(f"http://0.0.0.0:{sentinel.port}/dav/", 301)
    agent = api.agent()
    body = {"provider": "caldav", "agent_id": agent["id"], "username": "ada", "password": "pw", "server_url": hop.url}
    r = api.post("/v1/connections", json=body)
    assert r.status_code == 400 and r.json()["error"]["param"] == "server_url", r.text
    assert "this Chronary server itself" in r.json()["error"]["message"]
    assert hop.requests >= 1 and sentinel.connections == 0


# -- a live server: deliveries and syncs to an alias never arrive -------------------------------


class _Seen:
    """ASGI wrapper counting requests that carry Chronary's outbound User-Agent."""

    def __init__(self, app: Any) -> None:
        self.app, self.outbound = app, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            agent = dict(scope.get("headers") or []).get(b"user-agent", b"")
            if agent == USER_AGENT.encode():
                self.outbound += 1
        await self.app(scope, receive, send)


@pytest.fixture
def watched_server(tmp_path: Any) -> Iterator[tuple[Any, _Seen, httpx.Client, int]]:
    port = free_port()
    settings = Settings(host="127.0.0.1", port=port, data_dir=tmp_path / "data", workers=True)
    runtime = open_runtime(settings)
    runtime.extras[OPTIONS_KEY] = {"poll_seconds": 0.05, "jitter": 0.0, "timeout": 3.0}
    app = create_app(settings, runtime=runtime)
    seen = _Seen(app)
    server = uvicorn.Server(uvicorn.Config(seen, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {runtime.first_key}"})
    try:
        yield runtime, seen, client, port
    finally:
        client.close()
        server.should_exit = True
        thread.join(10)


@pytest.mark.parametrize("host", ["[::ffff:127.0.0.1]", "0.0.0.0", "127.1", "localhost"])
def test_live_delivery_to_an_alias_never_reaches_the_server(watched_server: Any, host: str) -> None:
    runtime, seen, http, port = watched_server
    wh = http.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["agent.created"]}).json()
    own = f"http://{host}:{port}/v1/agents"  # stored before the rule existed: bypasses validation
    runtime.db.write_sync(lambda tx: webhook_store.patch_endpoint(tx.conn, wh["id"], {"url": own}))
    http.post("/v1/agents", json={"name": "Ada"})
    (entry,) = wait_until(
        lambda: [d for d in http.get(f"/v1/webhooks/{wh['id']}/deliveries").json()["data"] if d["status"] == "failed"]
    )
    assert entry["last_status_code"] is None
    assert "this Chronary server itself" in entry["last_error"] or "four decimal numbers" in entry["last_error"]
    assert seen.outbound == 0


@pytest.mark.parametrize("host", ["[::ffff:7f00:1]", "0.0.0.0", "0x7f.1"])
def test_live_subscription_to_an_alias_cannot_import_a_private_feed(watched_server: Any, host: str) -> None:
    runtime, seen, http, port = watched_server
    agent = http.post("/v1/agents", json={"name": "Mallory"}).json()
    victim = http.post("/v1/agents", json={"name": "Victim"}).json()
    private = http.post(f"/v1/agents/{victim['id']}/calendars", json={"name": "Private", "timezone": "UTC"}).json()
    http.post(
        f"/v1/calendars/{private['id']}/events",
        json={"title": "Secret", "start_time": "2026-03-02T09:00:00Z", "end_time": "2026-03-02T10:00:00Z"},
    )
    mine = http.post(f"/v1/agents/{agent['id']}/calendars", json={"name": "Mine", "timezone": "UTC"}).json()
    sub = http.post(
        f"/v1/agents/{agent['id']}/ical-subscriptions",
        json={"calendar_id": mine["id"], "url": "http://127.0.0.1:9/cal.ics"},
    ).json()
    wait_until(lambda: http.get(f"/v1/ical-subscriptions/{sub['id']}").json()["status"] == "error")  # :9 refused
    token_path = private["ical_url"].split("//", 1)[1].split("/", 1)[1]
    own = f"http://{host}:{port}/{token_path}"  # stored before the rule existed: bypasses validation
    runtime.db.write_sync(lambda tx: sub_store.patch(tx.conn, sub["id"], {"url": own}))
    assert http.post(f"/v1/ical-subscriptions/{sub['id']}/sync").status_code == 202

    def refused() -> Any:
        s = http.get(f"/v1/ical-subscriptions/{sub['id']}").json()
        return s if any(w in s["last_error"] for w in ("itself", "four decimal numbers")) else None

    got = wait_until(refused)
    assert got["status"] == "error" and got["event_count"] == 0
    assert http.get(f"/v1/calendars/{mine['id']}/events").json()["data"] == []
    assert seen.outbound == 0


def test_https_connects_to_the_checked_ip_but_verifies_the_host_name(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Connecting to the resolved IP must not change TLS: SNI, certificate check and Host stay the name."""
    tls = TlsFeedServer("feeds.tls.test", tmp_path)
    try:
        _rebinding_dns(monkeypatch, "feeds.tls.test", "127.0.0.1", "127.0.0.1")
        _rebinding_dns(monkeypatch, "wrong.tls.test", "127.0.0.1", "127.0.0.1")
        monkeypatch.setattr(outbound, "_ssl_context", ssl.create_default_context(cafile=str(tls.cafile)))
        settings = _settings(free_port(), tmp_path)
        resp = asyncio.run(fetch(f"https://feeds.tls.test:{tls.port}/cal.ics", settings))
        assert resp.status == 200 and resp.body.startswith(b"BEGIN:VCALENDAR")
        assert tls.sni == ["feeds.tls.test"] and tls.hosts == [f"feeds.tls.test:{tls.port}"]
        with pytest.raises(OutboundError, match="CERTIFICATE_VERIFY_FAILED|certificate"):
            asyncio.run(fetch(f"https://wrong.tls.test:{tls.port}/cal.ics", settings))  # same IP, other name
    finally:
        tls.close()
