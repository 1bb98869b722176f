"""Connecting a Google account the way a browser does: start → Google's consent → our callback →
return_url, with every way it can go wrong storing nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from chronary.clock import ManualClock
from tests.conftest import Api
from tests.fakes.google import FakeGoogle
from tests.google.conftest import CALLBACK, CLIENT_SECRET, EMAIL, RETURN, callback, connect, google_settings, start


def _connections(api: Api) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = api.get("/v1/connections").json()["data"]
    return data


def _stored(api: Api, sql: str) -> list[dict[str, Any]]:
    return api.runtime.db.read_sync(lambda tx: list(tx.conn.execute(sql)))


def test_connect_like_a_browser(gapi: Api, google: FakeGoogle) -> None:
    google.add_calendar(EMAIL, "Team (shared with me)", access_role="reader")
    agent = gapi.agent()
    started = start(gapi, agent["id"])
    assert len(started["state"]) >= 43  # 256 random bits, url-safe
    url = urlsplit(started["redirect_url"])
    query = parse_qs(url.query)
    assert f"{url.scheme}://{url.netloc}{url.path}" == google.auth_url
    assert query["redirect_uri"] == [CALLBACK] and query["state"] == [started["state"]]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["access_type"] == ["offline"] and query["prompt"] == ["consent"]

    landed = callback(gapi, google.consent(started["redirect_url"]))
    assert landed["state"] == [started["state"]]
    con = gapi.get(f"/v1/connections/{landed['connection_id'][0]}?expand[]=calendars").json()
    assert (con["provider"], con["email"], con["status"], con["agent_id"]) == ("google", EMAIL, "active", agent["id"])
    assert con["sync_mode"] == "polling"  # no https public URL: no push channels
    calendars = {c["name"]: c for c in con["calendars"]}
    assert calendars["Team (shared with me)"]["read_only"] is True and calendars[EMAIL]["read_only"] is False
    # tokens are stored, encrypted: neither the access nor the refresh token is readable in the file
    (row,) = _stored(gapi, "SELECT secret FROM connections")
    tokens = json.loads(gapi.runtime.secrets.decrypt(row["secret"]))
    assert tokens["refresh_token"] and tokens["refresh_token"] not in row["secret"]
    assert CLIENT_SECRET not in row["secret"]
    types = [r["type"] for r in _stored(gapi, "SELECT type FROM outbox ORDER BY seq")]
    assert types.count("connection.created") == 1

    # the state worked once: the same callback again is refused, and changes nothing
    again = gapi.client.get(f"/v1/connections/callback?code=x&state={started['state']}", follow_redirects=False)
    assert again.status_code == 400 and again.json()["error"]["param"] == "state"
    assert len(_connections(gapi)) == 1


def test_consent_refused_expired_or_broken_stores_nothing(make_api: Any, google: FakeGoogle) -> None:
    clock = ManualClock(datetime(2026, 12, 1, 9, tzinfo=UTC))
    api: Api = make_api(clock=clock, **google_settings(google))
    agent = api.agent()

    google.deny_next()
    started = start(api, agent["id"])
    landed = callback(api, google.consent(started["redirect_url"]))
    assert landed["error"] == ["access_denied"] and landed["state"] == [started["state"]]

    started = start(api, agent["id"])
    location = google.consent(started["redirect_url"])
    clock.advance(minutes=11)
    assert callback(api, location)["error"] == ["expired_state"]

    clock.advance(minutes=1)
    started = start(api, agent["id"])
    location = google.consent(started["redirect_url"]).replace("code=", "code=tampered")
    assert callback(api, location)["error"] == ["invalid_grant"]  # Google refuses the code

    assert _connections(api) == []
    assert _stored(api, "SELECT * FROM oauth_states") == []  # every state used up (or pruned)


def test_return_url_must_be_ours_and_the_client_must_be_configured(make_api: Any, google: FakeGoogle) -> None:
    api: Api = make_api(**google_settings(google, oauth_return_origins=("https://app.example.com",)))
    agent = api.agent()
    body = {"provider": "google", "agent_id": agent["id"]}
    for bad in ("https://evil.example.com/steal", "http://127.0.0.1:9/done", "javascript:alert(1)"):
        r = api.post("/v1/connections/start", json={**body, "return_url": bad})
        assert r.status_code == 400 and r.json()["error"]["param"] == "return_url", (bad, r.text)
    allowed = api.post("/v1/connections/start", json={**body, "return_url": "https://app.example.com/done?x=1"})
    assert allowed.status_code == 200, allowed.text

    bare: Api = make_api().as_key(api.key)  # the same database, no CHRONARY_GOOGLE_CLIENT_ID
    other = bare.agent()
    r = bare.post("/v1/connections/start", json={"provider": "google", "agent_id": other["id"], "return_url": RETURN})
    assert r.status_code == 400 and r.json()["error"]["param"] == "provider"
    assert "CHRONARY_GOOGLE_CLIENT_ID" in r.json()["error"]["message"]


def test_server_side_callback_answers_json(gapi: Api, google: FakeGoogle) -> None:
    agent = gapi.agent()
    started = start(gapi, agent["id"])
    code = parse_qs(urlsplit(google.consent(started["redirect_url"])).query)["code"][0]
    r = gapi.client.post("/v1/connections/callback", json={"code": code, "state": started["state"]})
    assert r.status_code == 201, r.text
    assert r.json()["email"] == EMAIL and r.json()["provider"] == "google"
    reused = gapi.client.post("/v1/connections/callback", json={"code": code, "state": started["state"]})
    assert reused.status_code == 400 and reused.json()["error"]["param"] == "state"


def test_connecting_the_same_account_again_reuses_the_connection(gapi: Api, google: FakeGoogle) -> None:
    agent = gapi.agent()
    first = connect(gapi, google, agent["id"])
    second = connect(gapi, google, agent["id"])
    assert second["id"] == first["id"] and len(_connections(gapi)) == 1
    repaired = connect(gapi, google, agent["id"], connection_id=first["id"])
    assert repaired["id"] == first["id"]
    other = gapi.agent("Other")
    r = gapi.post(
        "/v1/connections/start",
        json={"provider": "google", "agent_id": other["id"], "return_url": RETURN, "connection_id": first["id"]},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "agent_id"


def test_states_expire_after_ten_minutes(make_api: Any, google: FakeGoogle) -> None:
    clock = ManualClock(datetime(2026, 12, 1, 9, tzinfo=UTC))
    api: Api = make_api(clock=clock, **google_settings(google))
    started = start(api, api.agent()["id"])
    expires = datetime.fromisoformat(started["expires_at"].replace("Z", "+00:00"))
    assert expires - clock.now() == timedelta(minutes=10)
