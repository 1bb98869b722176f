"""HEAD on /health and on feeds, over a real uvicorn socket: uptime checkers and calendar apps use it."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from tests.ical.conftest import feed_path


def _head_then_get(
    base_url: str, path: str, headers: dict[str, str] | None = None
) -> tuple[http.client.HTTPResponse, http.client.HTTPResponse, bytes]:
    """HEAD and then GET on one keep-alive connection: a HEAD answer with a body would corrupt the GET."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.request("HEAD", path, headers=headers or {})
        head = conn.getresponse()
        head_body = head.read()
        conn.request("GET", path, headers=headers or {})
        get = conn.getresponse()
        get.read()
        return head, get, head_body
    finally:
        conn.close()


def test_head_health(live_server) -> None:
    server = live_server(workers=False)
    head, get, body = _head_then_get(server.base_url, "/health")
    assert head.status == 200 and get.status == 200
    assert body == b""
    assert head.getheader("content-type") == "application/json"
    assert head.getheader("content-length") == get.getheader("content-length")


def test_head_feed_matches_get_headers(live_server) -> None:
    server = live_server(workers=False)
    with server.client() as c:
        cal = c.post("/v1/calendars", json={"name": "Work", "timezone": "Europe/Berlin"}).json()
        created = c.post(
            f"/v1/calendars/{cal['id']}/events",
            json={"title": "Standup", "start_time": "2030-05-06T09:00:00Z", "end_time": "2030-05-06T09:15:00Z"},
        )
        assert created.status_code == 201, created.text
    path = feed_path(cal)
    head, get, body = _head_then_get(server.base_url, path)
    assert (head.status, get.status, body) == (200, 200, b"")
    for name in ("etag", "last-modified", "content-type", "content-length", "cache-control"):
        assert head.getheader(name) == get.getheader(name), name
    assert (head.getheader("content-type") or "").startswith("text/calendar")

    etag = head.getheader("etag")
    again, _, _ = _head_then_get(server.base_url, path, {"If-None-Match": etag})
    assert again.status == 304

    missing, _, missing_body = _head_then_get(server.base_url, "/ical/" + "A" * 32 + ".ics")
    assert missing.status == 404 and missing_body == b""
