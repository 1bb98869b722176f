"""The hot route for event creates (api/_hot.py) answers exactly as the Litestar route does.

Over a live server (uvicorn, real HTTP). The Litestar route is what answers a request that carries
an Idempotency-Key, so each plain request is compared with the same request sent with one; a
counter on the hot route's way to Litestar shows which path answered.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from chronary.api._hot import HotRoutes
from tests.api._helpers import assert_error

T0, T1 = "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z"
SOON = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
ID_FIELDS = {"id", "ical_uid", "created_at", "updated_at"}  # differ between any two creates


class PassedOn:
    """Counts the event creates the hot route hands to the Litestar route."""

    def __init__(self, hot: HotRoutes) -> None:
        self.count = 0
        self.inner = hot.app
        hot.app = self

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].rstrip("/").endswith("/events"):
            self.count += 1
        await self.inner(scope, receive, send)


@pytest.fixture
def server(live_server: Any) -> Iterator[tuple[Any, httpx.Client, PassedOn, str]]:
    srv = live_server()
    hot = srv.app.front.app  # RequestContextMiddleware(HotRoutes(...))
    assert isinstance(hot, HotRoutes)
    passed = PassedOn(hot)
    with srv.client() as client:
        agent = client.post("/v1/agents", json={"name": "Ada"}).json()
        cal = client.post(f"/v1/agents/{agent['id']}/calendars", json={"name": "Work", "timezone": "UTC"}).json()
        yield srv, client, passed, cal["id"]
    srv.stop()


def _plain(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ID_FIELDS}


def _events(client: httpx.Client, cal_id: str) -> list[dict[str, Any]]:
    return list(client.get(f"/v1/calendars/{cal_id}/events?limit=200").json()["data"])


def test_a_plain_create_answers_what_the_route_answers(server: Any) -> None:
    _, client, passed, cal = server
    url = f"/v1/calendars/{cal}/events"
    body = {"title": "Design review", "start_time": T0, "end_time": T1, "metadata": {"b": 1, "a": [1, "é"]}}
    hot = client.post(url, json=body)
    assert hot.status_code == 201 and passed.count == 0, hot.text
    routed = client.post(url, json=body, headers={"Idempotency-Key": "via-litestar"})
    assert routed.status_code == 201 and passed.count == 1, routed.text
    assert [k for k, _ in hot.headers.items() if k != "idempotent-replayed"] == [k for k, _ in routed.headers.items()]
    assert hot.headers["content-type"] == routed.headers["content-type"] == "application/json"
    assert _plain(hot.json()) == _plain(routed.json())
    # byte for byte what a GET (a Litestar route) answers for the same event, and the same ETag
    got = client.get(f"{url}/{hot.json()['id']}")
    assert got.content == hot.content
    assert got.headers["etag"] == hot.headers["etag"]
    assert int(hot.headers["content-length"]) == len(hot.content)
    assert hot.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize(
    "extra",
    [
        {"priority": "3"},  # Litestar converts a handler's data with strict=False: "3" is 3
        {"all_day": True, "start_time": "2030-01-07", "end_time": "2030-01-08"},
        {"status": "hold", "hold_expires_at": SOON, "allow_overlap": True},
        {"recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"], "reminders": [10], "attendees": [{"email": "b@example.com"}]},
        {"transparency": "transparent", "description": "x" * 500, "location": "Room 1"},
    ],
)
def test_fields_and_conversions_match_the_route(server: Any, extra: dict[str, Any]) -> None:
    _, client, passed, cal = server
    url = f"/v1/calendars/{cal}/events"
    body = {"title": "Sync", "start_time": T0, "end_time": T1, **extra}
    hot = client.post(url, json=body)
    routed = client.post(url, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert hot.status_code == routed.status_code == 201, (hot.text, routed.text)
    assert passed.count == 1
    assert _plain(hot.json()) == _plain(routed.json())
    assert client.get(f"{url}/{hot.json()['id']}").content == hot.content  # as the stored event reads back


BAD = [
    ("not json", b"{", 400, "validation_error"),
    ("unknown field", {"title": "x", "start_time": T0, "end_time": T1, "colour": "red"}, 400, "validation_error"),
    ("no title", {"start_time": T0, "end_time": T1}, 400, "validation_error"),
    ("wrong type", {"title": 5, "start_time": T0, "end_time": T1}, 400, "validation_error"),
    ("end before start", {"title": "x", "start_time": T1, "end_time": T0}, 400, "validation_error"),
    ("naive time", {"title": "x", "start_time": "2030-01-07T09:00:00", "end_time": T1}, 400, "validation_error"),
    ("null body", None, 400, "validation_error"),
    ("array body", [1], 400, "validation_error"),
]


@pytest.mark.parametrize(("name", "body", "status", "type_"), BAD, ids=[b[0] for b in BAD])
def test_refusals_are_the_routes_and_write_nothing(server: Any, name: str, body: Any, status: int, type_: str) -> None:
    _, client, passed, cal = server
    url = f"/v1/calendars/{cal}/events"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    hot = client.post(url, content=content, headers=headers)
    routed = client.post(url, content=content, headers={**headers, "Idempotency-Key": str(uuid.uuid4())})
    err = assert_error(hot, status, type_)
    other = assert_error(routed, status, type_)
    assert (err["message"], err["param"]) == (other["message"], other["param"])
    assert passed.count == 2
    assert _events(client, cal) == []


def test_keys_calendars_and_other_agents_are_checked_as_by_the_guard(server: Any) -> None:
    srv, client, passed, cal = server
    body = {"title": "x", "start_time": T0, "end_time": T1}
    assert_error(client.post("/v1/calendars/cal_nope/events", json=body), 404, "not_found")
    with httpx.Client(base_url=srv.base_url, headers={"Authorization": "Bearer chr_sk_wrong"}) as stranger:
        assert_error(stranger.post(f"/v1/calendars/{cal}/events", json=body), 401, "unauthorized")
    with httpx.Client(base_url=srv.base_url) as anonymous:
        assert_error(anonymous.post(f"/v1/calendars/{cal}/events", json=body), 401, "unauthorized")
    other = client.post("/v1/agents", json={"name": "Bob"}).json()
    secret = client.post("/v1/keys", json={"name": "bob", "agent_id": other["id"]}).json()
    with httpx.Client(base_url=srv.base_url, headers={"x-api-key": secret["secret"]}) as bob:
        assert_error(bob.post(f"/v1/calendars/{cal}/events", json=body), 404, "not_found")  # not Bob's calendar
        bobs = bob.post(f"/v1/agents/{other['id']}/calendars", json={"name": "B", "timezone": "UTC"}).json()
        before = passed.count
        created = bob.post(f"/v1/calendars/{bobs['id']}/events/", json=body)  # x-api-key, trailing slash
        assert created.status_code == 201 and passed.count == before, created.text
        # revoked: refused by the next request, on the hot route too
        assert client.delete(f"/v1/keys/{secret['id']}").status_code in (200, 204)
        assert_error(bob.post(f"/v1/calendars/{bobs['id']}/events", json=body), 401, "unauthorized")
    assert _events(client, cal) == []


def test_chunked_and_oversized_bodies(server: Any) -> None:
    _, client, passed, cal = server
    url = f"/v1/calendars/{cal}/events"
    raw = json.dumps({"title": "chunked", "start_time": T0, "end_time": T1}).encode()
    chunked = client.post(url, content=iter([raw[:10], raw[10:]]), headers={"Content-Type": "application/json"})
    assert chunked.status_code == 201 and chunked.json()["title"] == "chunked" and passed.count == 0
    huge = json.dumps({"title": "x", "start_time": T0, "end_time": T1, "description": "y" * (1024 * 1024)})
    assert_error(client.post(url, content=huge, headers={"Content-Type": "application/json"}), 413, "payload_too_large")
    assert passed.count == 1
    assert [e["title"] for e in _events(client, cal)] == ["chunked"]
