"""Shared plumbing for the Connect providers' fakes: a threaded HTTP server on 127.0.0.1 that
records every request and lets a test queue failures, so each fake is only its routes.

A fake subclasses `FakeServer`, declares routes with `route(method, pattern)` (a regex matched
against the path, groups passed as arguments) and answers `Reply`s:

    class FakeNtfy(FakeServer):
        @route("POST", r"/")
        def publish(self, req: Request) -> Reply:
            return Reply.json(200, {...})

    with FakeNtfy() as fake:
        fake.url  # http://127.0.0.1:<port>

`fail_next(status, body, headers, path=None, times=1)` makes the next matching requests answer
that instead (429 with Retry-After, 5xx, 401 …); `requests` lists what arrived (method, path,
query, headers, body) for assertions.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, obj: Any, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def text(cls, status: int, text: str, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8", **(headers or {})})


Handler = Callable[..., Reply]


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    def mark(fn: Handler) -> Handler:
        fn._route = (method, re.compile(pattern + r"\Z"))  # type: ignore[attr-defined]
        return fn

    return mark


@dataclass
class _Failure:
    reply: Reply
    path: re.Pattern[str] | None
    times: int


def _inherited(cls: type) -> set[tuple[str, Any]]:
    """Route methods a fake inherits from its bases (below FakeServer)."""
    found: set[tuple[str, Any]] = set()
    for base in cls.__mro__[1:]:
        if base is FakeServer or base is object:
            continue
        found |= {(n, m) for n, m in vars(base).items() if hasattr(m, "_route") and n not in vars(cls)}
    return found


class FakeServer:
    """Subclass and add `@route` methods; use as a context manager (or start()/stop())."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        for name, member in vars(type(self)).items() | _inherited(type(self)):
            spec = getattr(member, "_route", None)
            if spec is not None:
                self._routes.append((spec[0], spec[1], getattr(self, name)))

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeServer:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                return None

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                req = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query, keep_blank_values=True),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                reply = fake._dispatch(req)
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        class _Server(ThreadingHTTPServer):
            daemon_threads = True

            def server_bind(self) -> None:
                self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                super().server_bind()

        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- controls ------------------------------------------------------------------------------
    def fail_next(
        self,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        path: str | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` requests (whose path matches `path`, a regex, if given) answer this."""
        reply = Reply.json(status, body, headers) if body is not None else Reply(status, b"", headers or {})
        with self._lock:
            self._failures.append(_Failure(reply, re.compile(path) if path else None, times))

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if re.fullmatch(path, r.path)]

    # -- dispatch ------------------------------------------------------------------------------
    def _dispatch(self, req: Request) -> Reply:
        with self._lock:
            self.requests.append(req)
            for failure in self._failures:
                if failure.path is None or failure.path.search(req.path):
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                    return failure.reply
        for method, pattern, fn in self._routes:
            match = pattern.match(req.path)
            if match and method == req.method:
                try:
                    return fn(req, *match.groups())
                except Exception as exc:  # a fake's bug must show up in the test, not hang it
                    return Reply.text(500, f"fake error: {type(exc).__name__}: {exc}")
        return self.not_found(req)

    def not_found(self, req: Request) -> Reply:
        """What the provider answers for an unknown path (override for the provider's shape)."""
        return Reply.json(404, {"error": "not found", "path": req.path})
