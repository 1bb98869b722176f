"""A small real HTTP server on 127.0.0.1 that serves .ics feeds the way calendar hosts do.

Each path serves a body that tests can swap at any time, with an ETag and Last-Modified, and
answers conditional requests with 304; it counts requests and 304s per path. Special paths
misbehave on purpose (HTML, huge bodies, redirect loops, basic auth).
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import threading
from collections import Counter
from email.utils import formatdate
from typing import Any


class FeedServer:
    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.modified: dict[str, float] = {}
        self.requests: Counter[str] = Counter()
        self.not_modified: Counter[str] = Counter()
        self.auth: dict[str, tuple[str, str]] = {}
        self.redirects: dict[str, str] = {}
        self.stream_bytes: dict[str, int] = {}  # path → send this many bytes, no Content-Length
        self.lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.handle(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}"

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, path: str, body: bytes | str, modified: float = 1767225600.0) -> None:
        with self.lock:
            self.bodies[path] = body.encode() if isinstance(body, str) else body
            self.modified[path] = modified

    def handle(self, req: http.server.BaseHTTPRequestHandler) -> None:
        path = req.path
        with self.lock:
            self.requests[path] += 1
            body = self.bodies.get(path)
            modified = self.modified.get(path, 0.0)
            redirect = self.redirects.get(path)
            stream = self.stream_bytes.get(path)
            auth = self.auth.get(path)
        if redirect is not None:
            req.send_response(302)
            req.send_header("Location", redirect)
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        if auth is not None:
            expected = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            if req.headers.get("Authorization") != expected:
                req.send_response(401)
                req.send_header("WWW-Authenticate", 'Basic realm="feeds"')
                req.send_header("Content-Length", "0")
                req.end_headers()
                return
        if stream is not None:
            req.send_response(200)
            req.send_header("Content-Type", "text/calendar")
            req.send_header("Connection", "close")
            req.end_headers()
            chunk = b"BEGIN:VCALENDAR\r\n" + b"X" * 65536
            sent = 0
            try:
                while sent < stream:
                    req.wfile.write(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            req.close_connection = True
            return
        if body is None:
            req.send_response(404)
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if req.headers.get("If-None-Match") == etag:
            with self.lock:
                self.not_modified[path] += 1
            req.send_response(304)
            req.send_header("ETag", etag)
            req.end_headers()
            return
        req.send_response(200)
        req.send_header("Content-Type", "text/calendar; charset=utf-8")
        req.send_header("ETag", etag)
        req.send_header("Last-Modified", formatdate(modified, usegmt=True))
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def vcalendar(*vevents: str, name: str = "Feed") -> str:
    """A minimal VCALENDAR around VEVENT bodies (given without BEGIN/END lines)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Test//Feed//EN", f"X-WR-CALNAME:{name}"]
    for ev in vevents:
        lines += ["BEGIN:VEVENT", *ev.strip().splitlines(), "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def vevent(uid: str, start: str, end: str, summary: str, *extra: str) -> str:
    return "\n".join(
        [f"UID:{uid}", "DTSTAMP:20260101T000000Z", f"DTSTART:{start}", f"DTEND:{end}", f"SUMMARY:{summary}", *extra]
    )
