"""Work a request causes never runs inside its response cycle (issue 11, item 7).

A real uvicorn server on a real socket: a client pipelines two requests on one keep-alive
connection, the first of which makes a hostile subscription due. A sync failing afterwards must
not close the connection under the second request (which would be executed without an answer,
so an ordinary retry would create the same agent twice).
"""

from __future__ import annotations

import json
import socket
from typing import Any

from chronary import ids
from chronary.store import subscriptions as sub_store
from chronary.timeutil import iso_ms
from tests.conftest import LiveServer, wait_until


def _read_response(f: Any) -> tuple[int, dict[str, str], bytes] | None:
    """One HTTP/1.1 response from a buffered socket file, or None if the server closed instead."""
    status_line = f.readline()
    if not status_line:
        return None
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = f.read(int(headers.get("content-length", "0")))
    return status, headers, body


def _request(method: str, path: str, key: str, body: dict[str, Any] | None = None) -> bytes:
    payload = json.dumps(body).encode() if body is not None else b""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def _hostile_subscription(server: LiveServer, agent_id: str, calendar_id: str) -> str:
    """A subscription whose URL never passed validation (a NUL in the path), written straight to the DB."""
    runtime = server.app.state.runtime
    sub_id = ids.new_id("isub")

    def insert(tx: Any) -> None:
        now = iso_ms(tx.now)
        sub_store.create(
            tx.conn,
            {
                "id": sub_id,
                "org_id": runtime.org_id,
                "agent_id": agent_id,
                "calendar_id": calendar_id,
                "url": "http://127.0.0.1:9/cal\x00.ics",
                "label": None,
                "refresh_interval_minutes": 60,
                "credentials": None,
                "status": "active",
                "last_synced_at": None,
                "last_attempt_at": None,
                "last_error": None,
                "event_count": 0,
                "next_sync_ts": 2**40,  # not due until the client asks for a sync
                "etag": None,
                "last_modified": None,
                "created_at": now,
                "updated_at": now,
            },
        )

    runtime.db.write_sync(insert)
    return sub_id


def test_failing_sync_cannot_drop_a_pipelined_request(live_server: Any) -> None:
    server = live_server(workers=True)
    with server.client() as http:
        agent = http.post("/v1/agents", json={"name": "Owner"}).json()
        cal = http.post(f"/v1/agents/{agent['id']}/calendars", json={"name": "W", "timezone": "UTC"}).json()
        sub_id = _hostile_subscription(server, agent["id"], cal["id"])
        port = int(server.base_url.rsplit(":", 1)[1])

        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                _request("POST", f"/v1/ical-subscriptions/{sub_id}/sync", server.key)
                + _request("POST", "/v1/agents", server.key, {"name": "Pipelined"})
            )
            f = sock.makefile("rb")
            first, second = _read_response(f), _read_response(f)
        assert first is not None and first[0] == 202, first
        assert second is not None and second[0] == 201, "the pipelined request got no answer"
        assert json.loads(second[2])["name"] == "Pipelined"

        # the worker did the sync, and recorded the failure instead of crashing every second
        got = wait_until(lambda: (s := http.get(f"/v1/ical-subscriptions/{sub_id}").json())["status"] == "error" and s)
        assert got["last_error"] and "Traceback" not in got["last_error"]
        names = [a["name"] for a in http.get("/v1/agents", params={"limit": 200}).json()["data"]]
        assert names.count("Pipelined") == 1


def test_no_controller_uses_background_tasks() -> None:
    """Litestar background tasks run inside the response cycle; the design forbids that."""
    from pathlib import Path

    import chronary.api

    offenders = [
        p.name
        for p in Path(chronary.api.__file__).parent.glob("*.py")
        if "BackgroundTask" in p.read_text() or "background=" in p.read_text()
    ]
    assert offenders == []
