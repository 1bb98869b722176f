"""A real Radicale per test module (127.0.0.1, htpasswd plain, no auth delay) standing in for
iCloud, plus helpers: the "phone" side through the caldav library, a flaky proxy that drops
or fails requests mid-sync, and running one sync round from a test."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import itertools
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import caldav
import pytest

from tests.conftest import Api, free_port

USERS = [f"user{i}" for i in range(60)]
# Radicale's own CLI, minus an fsync per cache file: a throwaway test store does not need it, and
# it is most of the cost of a first listing of 1,000 items on a busy disk.
_LAUNCH = (
    "import sys; from radicale.storage.multifilesystem import base; "
    "base.StorageBase._fsync = lambda self, f: None; base.StorageBase._sync_directory = lambda self, p: None; "
    "from radicale.__main__ import run; sys.argv[0] = 'radicale'; run()"
)
PASSWORD = "s3cret-app-pass"
# Radicale's owner_only rights, except that a user's calendars named readonly-… are read-only for
# them (as a calendar shared with read access is at iCloud): Radicale then reports only read
# privileges in current-user-privilege-set, which is what the CalDAV provider parses.
RIGHTS = """[root]
user: .+
collection:
permissions: R

[principal]
user: .+
collection: {user}
permissions: RW

[read-only calendars]
user: .+
collection: {user}/readonly-[^/]+(/.*)?
permissions: r

[calendars]
user: .+
collection: {user}/[^/]+(/.*)?
permissions: rw
"""


@dataclass
class Radicale:
    port: int
    root: Path
    proc: subprocess.Popen[bytes] | None = None
    _users: Iterator[str] = field(default_factory=lambda: iter(USERS))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        cmd = [
            sys.executable,
            "-c",
            _LAUNCH,
            "--server-hosts",
            f"127.0.0.1:{self.port}",
            "--storage-filesystem-folder",
            str(self.root / "store"),
            "--auth-type",
            "htpasswd",
            "--auth-htpasswd-filename",
            str(self.root / "users"),
            "--auth-htpasswd-encryption",
            "plain",
            "--auth-delay",
            "0",
            "--rights-type",
            "from_file",
            "--rights-file",
            str(self.root / "rights"),
            "--logging-level",
            "warning",
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("OPTIONS", "/")
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("radicale did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def new_user(self) -> str:
        return next(self._users)

    def client(self, user: str) -> caldav.DAVClient:
        return caldav.DAVClient(url=self.url, username=user, password=PASSWORD, auth_type="basic")

    def make_calendar(self, user: str, cal_id: str = "work", name: str = "Work") -> caldav.Calendar:
        return self.client(user).principal().make_calendar(name=name, cal_id=cal_id)

    def collection_dir(self, user: str, cal_id: str = "work") -> Path:
        return self.root / "store" / "collection-root" / user / cal_id

    def make_read_only_calendar(self, user: str, name: str, events: dict[str, str]) -> str:
        """A calendar the user may only read (rights file), filled on disk as its owner would
        have: returns its path. The user's principal must exist (make one calendar first)."""
        cal_id = "readonly-" + re.sub(r"[^a-z0-9]+", "-", name.lower())
        folder = self.collection_dir(user, cal_id)
        folder.mkdir(parents=True)
        props = {"tag": "VCALENDAR", "D:displayname": name, "C:supported-calendar-component-set": "VEVENT"}
        (folder / ".Radicale.props").write_text(json.dumps(props))
        for file_name, body in events.items():
            (folder / file_name).write_text(body)
        return f"/{user}/{cal_id}/"


@pytest.fixture(scope="module")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    root = tmp_path_factory.mktemp("radicale")
    (root / "users").write_text("".join(f"{u}:{PASSWORD}\n" for u in USERS))
    (root / "rights").write_text(RIGHTS)
    server = Radicale(free_port(), root)
    server.start()
    yield server
    server.stop()


class FlakyProxy:
    """HTTP reverse proxy in front of Radicale that can drop connections or answer 500."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode = "pass"  # pass | drop | error
        self.log: list[str] = []
        self.home_elsewhere = False
        self.no_sync_collection = False  # point calendar-home-set straight at Radicale (another "host")
        self.after = 0  # requests to let through before misbehaving
        self.count = itertools.count()
        self.seen = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                n = next(proxy.count)
                proxy.seen = n + 1
                proxy.log.append(f"{self.command} {self.path}")
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.mode != "pass" and n >= proxy.after:
                    if proxy.mode == "drop":
                        self.close_connection = True
                        self.connection.close()
                        return
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if proxy.no_sync_collection and self.command == "REPORT" and b"sync-collection" in body:
                    self.send_response(501)  # a server without RFC 6578: clients fall back to ctag + etags
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.target_port, timeout=10)
                skip = ("host", "connection", "accept-encoding")  # plain bodies, so they can be rewritten
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                upstream.request(self.command, self.path, body=body, headers=headers)
                resp = upstream.getresponse()
                data = resp.read()
                if proxy.no_sync_collection and self.command == "PROPFIND":
                    # nor the DAV:sync-token property RFC 6578 comes with (Radicale behind us has both)
                    data = re.sub(rb"<(\w+:)?sync-token>[^<]*</(\w+:)?sync-token>", b"", data)
                if proxy.home_elsewhere:  # like iCloud: the calendar home lives on another host
                    data = re.sub(
                        rb"(calendar-home-set>\s*<(?:\w+:)?href>)(/)",
                        rb"\1http://localhost:" + str(proxy.target_port).encode() + rb"\2",
                        data,
                    )
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_DELETE = do_PROPFIND = do_REPORT = do_OPTIONS = do_MKCALENDAR = _any  # noqa: N815
            do_POST = do_PROPPATCH = do_HEAD = _any  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def fail(self, mode: str, after: int = 0) -> None:
        self.count = itertools.count()
        self.mode, self.after = mode, after

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky(radicale: Radicale) -> Iterator[FlakyProxy]:
    proxy = FlakyProxy(radicale.port)
    yield proxy
    proxy.close()


# -- helpers used by the test modules -------------------------------------------------------------


def connect(api: Api, agent_id: str, user: str, url: str, provider: str = "caldav") -> dict[str, Any]:
    r = api.post(
        "/v1/connections",
        json={"provider": provider, "agent_id": agent_id, "username": user, "password": PASSWORD, "server_url": url},
    )
    assert r.status_code == 201, r.text
    return r.json()


def enable(api: Api, con: dict[str, Any], remote_id: str, calendar_id: str | None = None) -> dict[str, Any]:
    choice: dict[str, Any] = {"remote_id": remote_id, "sync": True}
    if calendar_id:
        choice["calendar_id"] = calendar_id
    r = api.patch(f"/v1/connections/{con['id']}", json={"calendars": [choice]})
    assert r.status_code == 200, r.text
    mapped = next(c for c in r.json()["calendars"] if c["remote_id"] == remote_id)
    assert mapped["sync"] and mapped["calendar_id"]
    return mapped


def sync(api: Api, connection_id: str) -> dict[str, Any] | None:
    """One sync round, run the way the worker runs it (engine on its own event loop here)."""
    from chronary.services.sync.engine import sync_connection

    return asyncio.run(sync_connection(api.runtime, connection_id))


def events(api: Api, calendar_id: str, **params: Any) -> list[dict[str, Any]]:
    r = api.get(f"/v1/calendars/{calendar_id}/events", params={"limit": 200, **params})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def vevent(uid: str, summary: str, start: str = "20260105T090000Z", end: str = "20260105T100000Z", extra: str = "") -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//phone//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:{summary}\r\n"
        f"{extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


@contextlib.contextmanager
def merge_dies_after(chunks: int) -> Iterator[None]:
    """The process "dies" in the middle of a pull: the merge commits `chunks` chunks, then fails."""
    from chronary.services.sync import merge

    calls = {"n": 0}
    original = merge.Merger.apply_events

    def dying(self: merge.Merger, batch: Any) -> None:
        calls["n"] += 1
        if calls["n"] > chunks:
            raise RuntimeError("killed")
        original(self, batch)

    merge.Merger.apply_events = dying  # type: ignore[method-assign]
    try:
        yield
    finally:
        merge.Merger.apply_events = original  # type: ignore[method-assign]
