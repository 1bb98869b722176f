"""The one error envelope for every failure, the right status codes, and no 500 for bad input."""

from __future__ import annotations

import json

import pytest

from tests.api._helpers import assert_error

T0, T1 = "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z"
JSON = {"content-type": "application/json"}


def test_request_id_header_on_every_response(api):
    ok = api.get("/v1/agents")
    assert ok.headers["x-request-id"].startswith("req_")
    ids = {api.get("/health").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3  # a fresh id per request
    err = assert_error(api.get("/v1/agents/agt_nope"), 404, "not_found")
    assert err["param"] is None


def test_400_names_the_field_and_unknown_fields(api):
    assert_error(api.post("/v1/agents", json={"name": "A", "nickname": "x"}), 400, "validation_error", "nickname")
    cal = api.calendar()
    r = api.post(
        f"/v1/calendars/{cal['id']}/events",
        json={"title": "t", "start_time": T0, "end_time": T1, "attendees": [{"email": "a@b.co", "x": 1}]},
    )
    assert_error(r, 400, "validation_error", "attendees[0].x")
    r = api.post(f"/v1/calendars/{cal['id']}/events", json={"title": "t", "start_time": T0, "end_time": T0})
    assert_error(r, 400, "validation_error", "end_time")


@pytest.mark.parametrize("raw", [b"{bad", b'{"name": }', b"\xff\xfe", b'{"name": "a"', b"[", b"nul"])
def test_malformed_json_is_400(shared_api, raw):
    api = shared_api
    assert_error(api.post("/v1/agents", content=raw, headers=JSON), 400, "validation_error")


@pytest.mark.parametrize("raw", [b"null", b"[]", b'"text"', b"42", b"true"])
def test_json_that_is_not_an_object_is_400(shared_api, raw):
    api = shared_api
    assert_error(api.post("/v1/agents", content=raw, headers=JSON), 400, "validation_error")


def test_empty_json_body_is_400_with_a_clear_message(api):
    err = assert_error(api.post("/v1/agents", content=b"", headers=JSON), 400, "validation_error")
    assert "body" in err["message"].lower() and "'data'" not in err["message"]


def test_401_envelope(api):
    assert_error(api.as_key("").get("/v1/calendars"), 401, "unauthorized")


def test_403_envelope(api):
    ak = api.as_key(api.agent_key(api.agent()["id"]))
    assert_error(ak.get("/v1/keys"), 403, "forbidden")


@pytest.mark.parametrize("path", ["/v1/nope", "/v1/agents/x/y/z", "/v1", "/v1/", "/nothing-here", "/v2/agents"])
def test_unknown_routes_are_404_envelopes(shared_api, path):
    api = shared_api
    assert_error(api.get(path), 404, "not_found")


def test_unknown_v1_route_without_key_is_still_an_envelope(api):
    r = api.as_key("").get("/v1/nope")
    assert r.status_code in (401, 404)
    assert_error(r, r.status_code, "unauthorized" if r.status_code == 401 else "not_found")


@pytest.mark.parametrize(
    "method,path",
    [
        ("PUT", "/v1/agents"),
        ("DELETE", "/v1/agents"),
        ("PATCH", "/v1/calendars"),
        ("PUT", "/v1/keys"),
        ("POST", "/health"),
    ],
)
def test_405_envelope_with_allow(shared_api, method, path):
    api = shared_api
    r = api.request(method, path, json={})
    assert_error(r, 405, "method_not_allowed")
    assert "GET" in r.headers.get("allow", "")


def test_405_on_item_routes(api):
    a = api.agent()
    assert_error(api.put(f"/v1/agents/{a['id']}", json={"name": "x"}), 405, "method_not_allowed")
    assert_error(api.post(f"/v1/agents/{a['id']}", json={"name": "x"}), 405, "method_not_allowed")


def test_409_envelope(api):
    cal = api.calendar(api.agent()["id"])
    api.event(cal["id"], T0, T1)
    r = api.post(
        f"/v1/calendars/{cal['id']}/events", json={"title": "h", "start_time": T0, "end_time": T1, "status": "hold"}
    )
    assert_error(r, 409, "conflict")


def test_413_body_over_one_mib(api):
    big = json.dumps({"name": "x", "metadata": {"k": "x" * (1024 * 1024)}}).encode()
    assert_error(api.post("/v1/agents", content=big, headers=JSON), 413, "payload_too_large")
    assert api.get("/v1/agents").json()["total"] == 0


def test_413_body_over_one_mib_chunked_without_length(live_server):
    server = live_server(workers=False)

    def chunks():
        yield b'{"name": "x", "metadata": {"k": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}}'

    with server.client() as c:
        r = c.post("/v1/agents", content=chunks(), headers=JSON)
        assert_error(r, 413, "payload_too_large")


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None])
def test_415_for_non_json_bodies(shared_api, ctype):
    api = shared_api
    headers = {"content-type": ctype} if ctype else {}
    before = api.get("/v1/agents").json()["total"]
    r = api.post("/v1/agents", content=b'{"name": "x"}', headers=headers)
    assert_error(r, 415, "unsupported_media_type")
    a = api.agent()
    r = api.patch(f"/v1/agents/{a['id']}", content=b'{"name": "y"}', headers=headers)
    assert_error(r, 415, "unsupported_media_type")
    assert api.get("/v1/agents").json()["total"] == before + 1
    assert api.get(f"/v1/agents/{a['id']}").json()["name"] == a["name"]


def test_json_with_charset_and_suffix_is_accepted(api):
    r = api.post("/v1/agents", content=b'{"name": "x"}', headers={"content-type": "application/json; charset=utf-8"})
    assert r.status_code == 201


def test_500_says_only_the_request_id(api, monkeypatch):
    from chronary.services import agents

    def boom(*a, **k):
        raise RuntimeError("secret internals: /etc/passwd")

    monkeypatch.setattr(agents, "present", boom)
    r = api.post("/v1/agents", json={"name": "x"})
    err = assert_error(r, 500, "internal_error")
    assert err["request_id"] in err["message"] and "secret internals" not in r.text


# --- hostile input: every answer must be a 4xx envelope, never a 500 ---------------------------

HOSTILE_VALUES = [
    None,
    True,
    -1,
    2**63,
    10**40,
    1.5,
    "",
    "x" * 10_000,
    "\u0000",
    "😀" * 300,
    [],
    [[[]]],
    {},
    {"a": {"b": {"c": [1, {"d": None}]}}},
    "2030-13-45T99:99:99Z",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "2030-01-01",
    "'; DROP TABLE events; --",
]
FIELDS = {
    "agent": ["name", "type", "email", "timezone", "metadata", "status"],
    "calendar": ["name", "timezone", "agent_status", "default_reminders", "metadata"],
    "event": [
        "title",
        "start_time",
        "end_time",
        "description",
        "location",
        "all_day",
        "status",
        "hold_expires_at",
        "priority",
        "reminders",
        "recurrence",
        "attendees",
        "metadata",
        "allow_overlap",
    ],
    "key": ["name", "agent_id"],
}


def _ok_or_4xx(r) -> None:
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert_error(r, r.status_code, r.json()["error"]["type"])


def test_hostile_bodies_never_500(api):
    agent = api.agent()
    cal = api.calendar(agent["id"], timezone="Europe/Berlin")
    evt = api.event(cal["id"], T0, T1)
    base = {
        "agent": ("/v1/agents", {"name": "A"}, f"/v1/agents/{agent['id']}"),
        "calendar": ("/v1/calendars", {"name": "C", "timezone": "UTC"}, f"/v1/calendars/{cal['id']}"),
        "event": (
            f"/v1/calendars/{cal['id']}/events",
            {"title": "t", "start_time": T0, "end_time": T1},
            f"/v1/calendars/{cal['id']}/events/{evt['id']}",
        ),
        "key": ("/v1/keys", {"name": "k"}, None),
    }
    for kind, (create_url, valid, item_url) in base.items():
        for field in FIELDS[kind]:
            for value in HOSTILE_VALUES:
                body = {**valid, field: value}
                _ok_or_4xx(api.post(create_url, json=body))
                if item_url:
                    _ok_or_4xx(api.patch(item_url, json={field: value}))
        for junk in ([valid], "x", 3, None, {"": 1}, {"a" * 1000: 1}, {**valid, "__proto__": {}}):
            _ok_or_4xx(api.post(create_url, json=junk))


def test_hostile_all_day_events_never_500(api):
    cal = api.calendar(timezone="Pacific/Kiritimati")
    url = f"/v1/calendars/{cal['id']}/events"
    for start, end in [
        ("0001-01-01", "0001-01-02"),
        ("9999-12-30", "9999-12-31"),
        ("2030-02-30", "2030-03-01"),
        ("0001-01-01T00:00:00+14:00", "0001-01-02T00:00:00+14:00"),
        ("2030-01-01", "9999-12-31"),
    ]:
        _ok_or_4xx(api.post(url, json={"title": "t", "start_time": start, "end_time": end, "all_day": True}))


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"name": "x", "metadata": ' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}",
        b'{"name": "x", "metadata": {"n": 1e400}}',
        b'{"name": "\\ud800"}',
        b'{"name": "x", "metadata": {"k": NaN}}',
        b'{"name": "x"}' * 3,
    ],
)
def test_hostile_raw_bodies_never_500(shared_api, raw):
    api = shared_api
    _ok_or_4xx(api.post("/v1/agents", content=raw, headers=JSON))


def test_hostile_queries_never_500(api):
    agent = api.agent()
    cal = api.calendar(agent["id"])
    urls = [
        "/v1/agents",
        "/v1/calendars",
        "/v1/keys",
        f"/v1/calendars/{cal['id']}/events",
        f"/v1/agents/{agent['id']}/events",
        f"/v1/agents/{agent['id']}/calendars",
    ]
    queries = [
        {"limit": "1e9"},
        {"limit": str(2**70)},
        {"offset": str(2**70)},
        {"offset": "-0"},
        {"limit": "NaN"},
        {"start_after": "0001-01-01T00:00:00+14:00"},
        {"start_before": "9999-12-31T23:59:59-14:00"},
        {"start_after": "2030-01-01"},
        {"start_after": "x" * 5000},
        {"start_before": "\u0000"},
        {"status": "'; DROP TABLE events; --"},
        {"source": "ical"},
        {"type": ["ai", "human"]},
        {"include": "all", "limit": "0"},
        {"agent_id": "\u0000"},
    ]
    for url in urls:
        for q in queries:
            _ok_or_4xx(api.get(url, params=q))


@pytest.mark.parametrize("segment", ["%00", "x" * 5000, "..%2F..%2Fetc", "%F0%9F%98%80", "%ff"])
def test_hostile_path_ids_never_500(shared_api, segment):
    api = shared_api
    for url in (f"/v1/agents/{segment}", f"/v1/calendars/{segment}", f"/v1/calendars/{segment}/events/{segment}"):
        _ok_or_4xx(api.get(url))
        _ok_or_4xx(api.delete(url))


def test_429_envelope_carries_retry_after(api, monkeypatch):
    from chronary.errors import RateLimited
    from chronary.services import agents

    def limited(*a, **k):
        raise RateLimited("Too many requests; slow down", retry_after=7)

    monkeypatch.setattr(agents, "list_", limited)
    r = api.get("/v1/agents")
    assert_error(r, 429, "rate_limited")
    assert r.headers["retry-after"] == "7"
