"""A Google connection made through /v1/connections is the Connect API's google connection: its
status, the proxy to Calendar v3 (tokens refreshed and stored), create_event on the remote
calendar, and a provider webhook subscription that receives what the sync brings in."""

from __future__ import annotations

import json
from typing import Any

from chronary.services.changes import consume_batch
from chronary.webhooks.dispatch import CONSUMER, fan_out
from tests.conftest import Api
from tests.fakes.google import FakeGoogle
from tests.google.conftest import EMAIL, connect, enable
from tests.sync.conftest import sync


def _connected(api: Api, fake: FakeGoogle) -> dict[str, Any]:
    agent = api.agent(timezone="Europe/Berlin")
    return connect(api, fake, agent["id"])


def test_the_v1_connection_is_the_connect_apis_google_connection(gapi: Api, google: FakeGoogle) -> None:
    con = _connected(gapi, google)
    status = gapi.get("/connect/v1/providers/google/status")
    assert status.status_code == 200, status.text
    body = status.json()
    assert body["connected"] is True and body["connectVia"] == "/v1/connections/start"
    (shown,) = body["connections"]
    assert shown["id"] == con["id"] and shown["account"] == EMAIL and shown["agentId"] == con["agent_id"]
    assert shown["credentialFields"] == ["tokens"] and "token" not in json.dumps(shown["settings"])
    assert gapi.get("/connect/v1/providers/microsoft/status").json()["connected"] is False


def test_the_proxy_reaches_calendar_v3_with_a_refreshed_token(gapi: Api, google: FakeGoogle) -> None:
    con = _connected(gapi, google)
    before = gapi.runtime.db.read_sync(lambda tx: tx.conn.execute("SELECT secret FROM connections").fetchall())
    google.expire_access_tokens(EMAIL)
    r = gapi.post("/connect/v1/proxy/google", json={"method": "GET", "path": "/users/me/calendarList"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["status"] == 200 and out["connectionId"] == con["id"]
    assert any(item["id"] == EMAIL for item in out["body"]["items"])
    assert "authorization" not in out["headers"]
    after = gapi.runtime.db.read_sync(lambda tx: tx.conn.execute("SELECT secret FROM connections").fetchall())
    assert after != before  # the refreshed token set was stored (encrypted)
    assert google.requests_to("/token", "POST")  # the expired token was refreshed on the way
    for path in ("https://evil.example/x", "/../../token", "/%2e%2e/oauth2/v3/userinfo"):
        refused = gapi.post("/connect/v1/proxy/google", json={"method": "GET", "path": path})
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "path", path
    log = gapi.get("/connect/v1/proxy-log", params={"providerType": "google"}).json()
    assert log["data"][-1]["path"] == "/users/me/calendarList" and log["data"][-1]["status"] == 200


def test_create_event_lands_on_the_remote_calendar(gapi: Api, google: FakeGoogle) -> None:
    con = _connected(gapi, google)
    r = gapi.post(
        "/connect/v1/providers/google/actions/create_event",
        json={
            "calendar_id": EMAIL,
            "summary": "Design review",
            "start": "2026-12-10T09:00:00",
            "end": "2026-12-10T10:00:00",
            "time_zone": "Europe/Berlin",
            "connectionId": con["id"],
        },
    )
    assert r.status_code == 200, r.text
    created = r.json()["output"]
    assert created["summary"] == "Design review" and created["id"]
    stored = google.get_event(EMAIL, created["id"])
    assert stored["start"]["timeZone"] == "Europe/Berlin"
    missing = gapi.post(
        "/connect/v1/providers/google/actions/create_event",
        json={"calendar_id": "nobody@example.com", "summary": "x", "start": "2026-12-10", "end": "2026-12-11"},
    )
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "calendar_id", missing.text
    bad = gapi.post("/connect/v1/providers/google/actions/create_event", json={"summary": "x"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "calendar_id"


def test_a_google_subscription_receives_the_changes_the_sync_brings_in(gapi: Api, google: FakeGoogle) -> None:
    con = _connected(gapi, google)
    enable(gapi, con)
    sub = gapi.post(
        "/connect/v1/providers/google/webhooks", json={"url": "http://127.0.0.1:9/in", "events": ["event.created"]}
    )
    assert sub.status_code == 201, sub.text
    other = gapi.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/all", "events": ["*"]}).json()
    refused = gapi.post("/connect/v1/providers/google/webhooks", json={"url": "http://127.0.0.1:9/x", "events": ["x"]})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "events[0]"
    sync(gapi, con["id"])
    local = gapi.agent(name="Local")
    cal = gapi.calendar(local["id"])
    gapi.event(cal["id"], "2026-12-11T09:00:00Z", "2026-12-11T10:00:00Z", title="Made here")
    google.put_event(
        EMAIL,
        {
            "summary": "From the phone",
            "start": {"dateTime": "2026-12-12T09:00:00+01:00"},
            "end": {"dateTime": "2026-12-12T10:00:00+01:00"},
        },
    )
    sync(gapi, con["id"])
    gapi.runtime.db.write_sync(lambda tx: consume_batch(tx, CONSUMER, fan_out))

    def delivered(endpoint_id: str) -> list[dict[str, Any]]:
        rows = gapi.runtime.db.read_sync(
            lambda tx: tx.conn.execute(
                "SELECT event_type, payload FROM webhook_deliveries WHERE endpoint_id = ? ORDER BY seq", (endpoint_id,)
            ).fetchall()
        )
        return [{"type": r["event_type"], **json.loads(r["payload"])} for r in rows]

    mine = delivered(sub.json()["id"])
    assert [d["data"]["object"]["title"] for d in mine] == ["From the phone"]
    everything = {d["data"]["object"].get("title") for d in delivered(other["id"]) if d["type"] == "event.created"}
    assert {"From the phone", "Made here"} <= everything
