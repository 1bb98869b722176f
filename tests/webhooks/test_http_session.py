"""The senders' keep-alive client (webhooks/http.py) against real HTTP/1.1 servers on loopback:
connections are reused, but only for a request whose own guard check approved their address."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from chronary.config import Settings
from chronary.outbound import BlockedTarget, OutboundError
from chronary.webhooks.http import WebhookSession


class KeepAliveServer:
    """HTTP/1.1 with keep-alive; counts connections and records (the address the request came
    in on, path, headers, body).
    `close_after_each` closes every connection after its answer without saying so first (what
    a receiver with a short idle timeout does to a kept-alive connection)."""

    def __init__(self, ip: str = "127.0.0.1", port: int = 0) -> None:
        self.connections = 0
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.answer: tuple[int, dict[str, str], bytes] = (200, {}, b"ok")
        self.chunked = False
        self.close_after_each = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                server.connections += 1
                super().setup()

            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server.requests.append((self.connection.getsockname()[0], self.path, dict(self.headers.items()), body))
                status, headers, out = server.answer
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if server.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(0, len(out), 7):
                        piece = out[i : i + 7]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                if server.close_after_each:
                    self.close_connection = True

            def log_message(self, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer((ip, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[KeepAliveServer]:
    s = KeepAliveServer()
    yield s
    s.close()


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", host="127.0.0.1", port=1, **overrides)


def post_all(session: WebhookSession, url: str, cfg: Settings, bodies: list[bytes], **kw: Any) -> list[Any]:
    async def run() -> list[Any]:
        try:
            out = []
            for body in bodies:
                out.append(
                    await session.post(
                        url, cfg, headers={"X-N": "1"}, content=body, timeout=5, max_bytes=kw.get("max_bytes", 1000)
                    )
                )
            return out
        finally:
            await session.aclose()

    return asyncio.run(run())


def test_posts_reuse_one_kept_alive_connection(server: KeepAliveServer, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{server.port}/hook/ä?x=1"
    got = post_all(WebhookSession(), url, settings(tmp_path), [b'{"n": %d}' % i for i in range(5)])
    assert [r.status for r in got] == [200] * 5 and all(r.body == b"ok" for r in got)
    assert server.connections == 1 and len(server.requests) == 5
    _, path, headers, body = server.requests[-1]
    assert path == "/hook/%C3%A4?x=1" and body == b'{"n": 4}'
    assert headers["Host"] == f"127.0.0.1:{server.port}" and headers["X-N"] == "1"
    assert headers["User-Agent"].startswith("Chronary/") and headers["Content-Length"] == "8"


def test_a_connection_closed_by_the_receiver_is_replaced(server: KeepAliveServer, tmp_path: Path) -> None:
    server.close_after_each = True
    got = post_all(WebhookSession(), f"http://127.0.0.1:{server.port}/", settings(tmp_path), [b"a", b"b", b"c"])
    assert [r.status for r in got] == [200, 200, 200] and server.connections == 3


def test_every_request_is_checked_even_over_a_kept_alive_connection(server: KeepAliveServer, tmp_path: Path) -> None:
    session = WebhookSession()
    url = f"http://127.0.0.1:{server.port}/"

    async def run() -> None:
        try:
            await session.post(url, settings(tmp_path), headers={}, content=b"1", timeout=5, max_bytes=100)
            strict = settings(tmp_path, allow_private_network_targets=False)
            with pytest.raises(BlockedTarget, match="allow_private_network_targets"):
                await session.post(url, strict, headers={}, content=b"2", timeout=5, max_bytes=100)
            own = settings(tmp_path).with_(port=server.port)  # the receiver's port is now "this server"
            with pytest.raises(BlockedTarget, match="this Chronary server itself"):
                await session.post(url, own, headers={}, content=b"3", timeout=5, max_bytes=100)
        finally:
            await session.aclose()

    asyncio.run(run())
    assert len(server.requests) == 1 and server.connections == 1


def _can_bind(ip: str) -> bool:
    with socket.socket() as s:
        try:
            s.bind((ip, 0))
            return True
        except OSError:
            return False


@pytest.mark.skipif(not _can_bind("127.0.0.2"), reason="needs 127.0.0.2 on the loopback interface")
def test_a_new_dns_answer_gets_its_own_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rebinding: the name now points elsewhere; the request goes there, not over the connection
    kept alive to the address the name had before."""
    first = KeepAliveServer("127.0.0.1")
    second = KeepAliveServer("127.0.0.2", first.port)
    answers = ["127.0.0.1", "127.0.0.2"]
    real = socket.getaddrinfo

    def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "hooks.rebind.test":
            return real(host, port, *args, **kwargs)
        ip = answers.pop(0) if len(answers) > 1 else answers[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    try:
        url = f"http://hooks.rebind.test:{first.port}/"
        got = post_all(WebhookSession(dns_ttl=0), url, settings(tmp_path), [b"1", b"2", b"3"])
        assert [r.status for r in got] == [200, 200, 200]
        assert [r[0] for r in first.requests] == ["127.0.0.1"] and first.connections == 1
        assert [r[0] for r in second.requests] == ["127.0.0.2", "127.0.0.2"] and second.connections == 1
        assert first.requests[0][2]["Host"] == f"hooks.rebind.test:{first.port}"
    finally:
        first.close()
        second.close()


def test_redirects_are_returned_not_followed(server: KeepAliveServer, tmp_path: Path) -> None:
    server.answer = (302, {"Location": "http://127.0.0.1:1/elsewhere"}, b"")
    (got,) = post_all(WebhookSession(), f"http://127.0.0.1:{server.port}/", settings(tmp_path), [b"x"])
    assert got.status == 302 and got.headers["location"] == "http://127.0.0.1:1/elsewhere"
    assert len(server.requests) == 1


def test_chunked_answers_are_read_and_large_ones_refused(server: KeepAliveServer, tmp_path: Path) -> None:
    server.chunked = True
    server.answer = (503, {"Retry-After": "7"}, b"x" * 50)
    (got,) = post_all(WebhookSession(), f"http://127.0.0.1:{server.port}/", settings(tmp_path), [b"x"])
    assert got.status == 503 and got.body == b"x" * 50 and got.headers["retry-after"] == "7"
    with pytest.raises(OutboundError, match="larger than the 10-byte limit"):
        post_all(WebhookSession(), f"http://127.0.0.1:{server.port}/", settings(tmp_path), [b"x"], max_bytes=10)
    server.chunked = False
    with pytest.raises(OutboundError, match="50 bytes; the limit is 10"):
        post_all(WebhookSession(), f"http://127.0.0.1:{server.port}/", settings(tmp_path), [b"x"], max_bytes=10)


def test_refused_connections_are_retryable_network_errors(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    with pytest.raises(OutboundError, match="network error") as err:
        post_all(WebhookSession(), f"http://127.0.0.1:{port}/", settings(tmp_path), [b"x"])
    assert err.value.retryable
