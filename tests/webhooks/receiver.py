"""A real webhook receiver on 127.0.0.1 whose behaviour tests script request by request.

Actions, consumed one per request (then `default`): ("ok",), ("status", code, {headers}),
("stall", seconds) — hold the request without answering (until `release()` or the time is up),
("big", n) — answer 200 with an n-byte body, ("trickle", seconds) — answer 200 one byte at a time.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int | None = None

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def id(self) -> str:
        return self.headers["Chronary-Webhook-Id"]


@dataclass
class Receiver:
    default: tuple[Any, ...] = ("ok",)
    requests: list[Received] = field(default_factory=list)
    script: deque[tuple[Any, ...]] = field(default_factory=deque)
    _release: threading.Event = field(default_factory=threading.Event)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server naming)
                length = int(self.headers.get("Content-Length", "0"))
                item = Received(dict(self.headers.items()), self.rfile.read(length))
                with receiver._cond:
                    receiver.requests.append(item)
                    action = receiver.script.popleft() if receiver.script else receiver.default
                    receiver._cond.notify_all()
                status, headers, body = 200, {}, b"thanks"
                if action[0] == "trickle":
                    self._trickle(action[1])
                    return
                if action[0] == "stall":
                    receiver._release.wait(action[1])
                elif action[0] == "status":
                    status = action[1]
                    headers = action[2] if len(action) > 2 else {}
                    body = f"status {status}".encode()
                elif action[0] == "big":
                    body = b"x" * action[1]
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    item.answered = status
                except OSError:
                    pass  # the sender gave up (timeout) or went away

            def _trickle(self, seconds: float) -> None:
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    deadline = time.monotonic() + seconds
                    while time.monotonic() < deadline and not receiver._release.is_set():
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.05)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def queue(self, *actions: tuple[Any, ...]) -> None:
        with self._cond:
            self.script.extend(actions)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"receiver got {len(self.requests)} request(s), wanted {count}")
                self._cond.wait(left)
            return list(self.requests)

    def release(self) -> None:
        self._release.set()

    def close(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
