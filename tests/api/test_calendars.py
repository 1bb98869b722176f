"""Calendars over HTTP: org-level and agent-owned, include=all, PATCH, delete, feed URL."""

from __future__ import annotations

import json
import re

import pytest
from litestar.testing import TestClient

from chronary.app import create_app
from chronary.config import load_settings
from tests.api._helpers import assert_error

FEED = re.compile(r"^(?P<base>.+)/ical/(?P<token>[A-Za-z0-9_-]+)\.ics$")


def test_org_level_calendar_fields(api):
    r = api.post("/v1/calendars", json={"name": "Team", "timezone": "Europe/Berlin"})
    assert r.status_code == 201
    c = r.json()
    assert c["id"].startswith("cal_") and c["org_id"].startswith("org_")
    assert c["agent_id"] is None and c["agent_status"] == "idle"
    assert c["default_reminders"] is None and c["metadata"] == {}
    assert c["created_at"] == c["updated_at"]
    assert set(c) == {
        "id",
        "org_id",
        "agent_id",
        "name",
        "timezone",
        "agent_status",
        "default_reminders",
        "metadata",
        "ical_url",
        "webcal_url",
        "created_at",
        "updated_at",
    }
    assert api.get(f"/v1/calendars/{c['id']}").json() == c


def test_agent_owned_calendar(api):
    a = api.agent()
    c = api.calendar(
        a["id"],
        name="Agent cal",
        timezone="Asia/Tokyo",
        agent_status="working",
        default_reminders=[10, 60],
        metadata={"k": "v"},
    )
    assert c["agent_id"] == a["id"] and c["agent_status"] == "working"
    assert c["default_reminders"] == [10, 60] and c["metadata"] == {"k": "v"}
    assert_error(api.post("/v1/agents/agt_missing/calendars", json={"name": "x", "timezone": "UTC"}), 404, "not_found")


def test_feed_token_is_unguessable_and_ical_url_uses_the_server_address(api):
    urls = [api.calendar(name=f"c{i}")["ical_url"] for i in range(3)]
    tokens = set()
    for url in urls:
        m = FEED.match(url)
        assert m, url
        assert m["base"] == "http://127.0.0.1:8765"  # default: the server's own address
        assert len(m["token"]) >= 32  # ≥ 192 bits of URL-safe randomness
        tokens.add(m["token"])
    assert len(tokens) == 3
    rows = api.runtime.db.read_sync(lambda tx: list(tx.conn.execute("SELECT id, feed_token FROM calendars")))
    assert {r["feed_token"] for r in rows} == tokens
    assert not any(r["feed_token"] in r["id"] for r in rows)


def test_ical_url_uses_public_url_setting(make_api):
    api = make_api(public_url="https://cal.example.com/base/")
    assert api.calendar()["ical_url"].startswith("https://cal.example.com/base/ical/")


def test_ical_url_uses_chronary_public_url_env(data_dir):
    settings = load_settings(
        {"data_dir": data_dir, "workers": False}, environ={"CHRONARY_PUBLIC_URL": "https://feeds.example.org"}
    )
    app = create_app(settings)
    key = app.state.runtime.first_key
    with TestClient(app) as client:
        r = client.post("/v1/calendars", json={"name": "x", "timezone": "UTC"}, headers={"x-api-key": key})
        assert r.status_code == 201, r.text
        assert r.json()["ical_url"].startswith("https://feeds.example.org/ical/")


def test_ical_url_on_a_live_server_is_its_own_address(live_server):
    server = live_server(workers=False)
    with server.client() as c:
        r = c.post("/v1/calendars", json={"name": "x", "timezone": "UTC"})
        assert r.status_code == 201
        assert r.json()["ical_url"].startswith(server.base_url + "/ical/")


@pytest.mark.parametrize(
    "body,param",
    [
        ({"timezone": "UTC"}, "name"),
        ({"name": "x"}, "timezone"),
        ({"name": "", "timezone": "UTC"}, "name"),
        ({"name": "x" * 256, "timezone": "UTC"}, "name"),
        ({"name": "x", "timezone": "Not/AZone"}, "timezone"),
        ({"name": "x", "timezone": 3}, "timezone"),
        ({"name": "x", "timezone": "UTC", "agent_status": "sleeping"}, "agent_status"),
        ({"name": "x", "timezone": "UTC", "default_reminders": [0]}, "default_reminders[0]"),
        ({"name": "x", "timezone": "UTC", "default_reminders": [40321]}, "default_reminders[0]"),
        ({"name": "x", "timezone": "UTC", "default_reminders": [5, -1]}, "default_reminders[1]"),
        ({"name": "x", "timezone": "UTC", "default_reminders": [1, 2, 3, 4, 5, 6]}, "default_reminders"),
        ({"name": "x", "timezone": "UTC", "default_reminders": ["five"]}, "default_reminders[0]"),
        ({"name": "x", "timezone": "UTC", "metadata": [1]}, "metadata"),
        ({"name": "x", "timezone": "UTC", "feed_token": "mine"}, "feed_token"),
        ({"name": "x", "timezone": "UTC", "agent_id": "agt_x"}, "agent_id"),
    ],
)
def test_create_validation(shared_api, body, param):
    api = shared_api
    assert_error(api.post("/v1/calendars", json=body), 400, "validation_error", param)


def test_reminder_and_name_boundaries(api):
    c = api.calendar(name="x" * 255, default_reminders=[1, 40320, 5, 10, 15])
    assert sorted(c["default_reminders"]) == [1, 5, 10, 15, 40320]
    assert api.calendar(name="n")["name"] == "n"
    assert api.calendar(default_reminders=[])["default_reminders"] in ([], None)


def test_metadata_over_16_kb_is_413(api):
    body = {"name": "x", "timezone": "UTC", "metadata": {"k": "x" * (16 * 1024)}}
    assert_error(api.post("/v1/calendars", json=body), 413, "payload_too_large", "metadata")


def test_list_org_level_include_all_and_agent_lists(api):
    a, b = api.agent(name="A"), api.agent(name="B")
    org = [api.calendar(name=f"org{i}") for i in range(2)]
    ca = api.calendar(a["id"], name="a1")
    cb = [api.calendar(b["id"], name=f"b{i}") for i in range(2)]

    plain = api.get("/v1/calendars").json()
    assert plain["total"] == 2 and [c["id"] for c in plain["data"]] == [c["id"] for c in org]
    everything = api.get("/v1/calendars", params={"include": "all"}).json()
    assert everything["total"] == 5
    assert {c["id"] for c in everything["data"]} == {c["id"] for c in [*org, ca, *cb]}
    assert_error(api.get("/v1/calendars", params={"include": "some"}), 400, "validation_error", "include")

    listed_b = api.get(f"/v1/agents/{b['id']}/calendars").json()
    assert listed_b["total"] == 2 and [c["id"] for c in listed_b["data"]] == [c["id"] for c in cb]
    page = api.get(f"/v1/agents/{b['id']}/calendars", params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 2 and [c["id"] for c in page["data"]] == [cb[1]["id"]]
    assert_error(api.get("/v1/agents/agt_missing/calendars"), 404, "not_found")
    page = api.get("/v1/calendars", params={"include": "all", "limit": 2, "offset": 4}).json()
    assert page["total"] == 5 and len(page["data"]) == 1


def test_patch_semantics(api):
    c = api.calendar(default_reminders=[30], metadata={"a": 1, "b": 2})
    assert_error(api.patch(f"/v1/calendars/{c['id']}", json={}), 400, "validation_error")
    r = api.patch(f"/v1/calendars/{c['id']}", json={"metadata": {"z": 0}, "agent_status": "error"})
    assert r.status_code == 200
    d = r.json()
    assert d["metadata"] == {"z": 0} and d["agent_status"] == "error"
    assert d["name"] == c["name"] and d["ical_url"] == c["ical_url"] and d["default_reminders"] == [30]
    d = api.patch(
        f"/v1/calendars/{c['id']}", json={"default_reminders": None, "timezone": "America/Chicago", "name": "Renamed"}
    ).json()
    assert d["default_reminders"] is None and d["timezone"] == "America/Chicago" and d["name"] == "Renamed"
    assert api.get(f"/v1/calendars/{c['id']}").json() == d
    for body, param in (
        ({"name": None}, "name"),
        ({"timezone": "Bad/Zone"}, "timezone"),
        ({"timezone": None}, "timezone"),
        ({"agent_status": None}, "agent_status"),
        ({"ical_url": "x"}, "ical_url"),
        ({"default_reminders": [0]}, "default_reminders[0]"),
    ):
        assert_error(api.patch(f"/v1/calendars/{c['id']}", json=body), 400, "validation_error", param)
    assert api.get(f"/v1/calendars/{c['id']}").json() == d


def test_delete_removes_its_events_only(api):
    c, keep = api.calendar(name="gone"), api.calendar(name="kept")
    evts = [api.event(c["id"], f"2030-01-0{i}T10:00:00Z", f"2030-01-0{i}T11:00:00Z") for i in (1, 2)]
    kept = api.event(keep["id"], "2030-01-01T10:00:00Z", "2030-01-01T11:00:00Z")
    r = api.delete(f"/v1/calendars/{c['id']}")
    assert r.status_code == 204 and r.content == b""
    assert_error(api.get(f"/v1/calendars/{c['id']}"), 404, "not_found")
    assert_error(api.get(f"/v1/calendars/{c['id']}/events/{evts[0]['id']}"), 404, "not_found")
    left = api.runtime.db.read_sync(lambda tx: [r["id"] for r in tx.conn.execute("SELECT id FROM events")])
    assert left == [kept["id"]]
    assert_error(api.delete(f"/v1/calendars/{c['id']}"), 404, "not_found")
    assert_error(api.patch(f"/v1/calendars/{c['id']}", json={"name": "x"}), 404, "not_found")


def test_unknown_calendar_is_404(api):
    assert_error(api.get("/v1/calendars/cal_nope"), 404, "not_found")
    assert_error(api.get("/v1/calendars/cal_nope/events"), 404, "not_found")
    assert_error(
        api.post(
            "/v1/calendars/cal_nope/events",
            json={"title": "t", "start_time": "2030-01-01T10:00:00Z", "end_time": "2030-01-01T11:00:00Z"},
        ),
        404,
        "not_found",
    )


def test_changing_the_timezone_keeps_all_day_dates(api):
    api.receive_webhooks()  # changes are logged with the payloads an endpoint gets
    c = api.calendar(api.agent()["id"], timezone="Europe/Berlin")
    day = api.event(c["id"], "2030-07-01", "2030-07-03", all_day=True)
    timed = api.event(c["id"], "2030-07-01T10:00:00Z", "2030-07-01T11:00:00Z")
    assert api.patch(f"/v1/calendars/{c['id']}", json={"timezone": "America/New_York"}).status_code == 200
    moved = api.get(f"/v1/calendars/{c['id']}/events/{day['id']}").json()
    assert (moved["start_date"], moved["end_date"]) == ("2030-07-01", "2030-07-03")
    assert (moved["start_time"], moved["end_time"]) == ("2030-07-01T04:00:00Z", "2030-07-03T04:00:00Z")
    assert api.get(f"/v1/calendars/{c['id']}/events/{timed['id']}").json() == timed  # instants stay
    listed = api.get(
        f"/v1/calendars/{c['id']}/events",
        params={"start_after": "2030-07-01T00:00:00Z", "start_before": "2030-07-01T05:00:00Z"},
    ).json()
    assert [e["id"] for e in listed["data"]] == [day["id"]]
    payloads = api.runtime.db.read_sync(
        lambda tx: [
            json.loads(r["payload"])
            for r in tx.conn.execute(
                "SELECT payload FROM outbox WHERE type = 'event.updated' AND resource_id = ?", (day["id"],)
            )
        ]
    )
    assert len(payloads) == 1 and payloads[0]["data"]["object"]["start_time"] == "2030-07-01T04:00:00Z"
    assert payloads[0]["data"]["previous"]["start_time"] == "2030-06-30T22:00:00Z"
