"""Google connections end to end: the real app, a real SQLite file, the protocol fake of Google's
OAuth and Calendar v3 (tests/fakes/google.py) over HTTPS on 127.0.0.1, trusted through the
standard SSL_CERT_FILE / REQUESTS_CA_BUNDLE (production reads the same variables)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import Api
from tests.fakes.google import FakeGoogle

CLIENT_ID = "1234-chronary.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-test-secret"
BASE = "http://127.0.0.1:8765"  # the TestClient's origin
CALLBACK = f"{BASE}/v1/connections/callback"
RETURN = f"{BASE}/connected"
EMAIL = "ada@example.com"


@pytest.fixture
def google(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGoogle]:
    fake = FakeGoogle(tls=True)
    fake.add_client(CLIENT_ID, CLIENT_SECRET, [CALLBACK])
    fake.add_account(EMAIL, time_zone="Europe/Berlin")
    fake.set_user(EMAIL)
    assert fake.cafile is not None
    monkeypatch.setenv("SSL_CERT_FILE", fake.cafile)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.cafile)
    yield fake
    fake.close()
    assert fake.errors == [], fake.errors  # a request that crashed inside the fake is a broken test


def google_settings(fake: FakeGoogle, **extra: Any) -> dict[str, Any]:
    return {
        "google_client_id": CLIENT_ID,
        "google_client_secret": CLIENT_SECRET,
        "google_auth_url": fake.auth_url,
        "google_token_url": fake.token_url,
        "google_revoke_url": fake.revoke_url,
        "google_api_url": fake.api_url,
        **extra,
    }


@pytest.fixture
def gapi(make_api: Any, google: FakeGoogle) -> Api:
    api: Api = make_api(**google_settings(google))
    return api


def start(api: Api, agent_id: str, **extra: Any) -> dict[str, Any]:
    r = api.post("/v1/connections/start", json={"provider": "google", "agent_id": agent_id, "return_url": RETURN, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def callback(api: Api, location: str) -> dict[str, list[str]]:
    """Follow the provider's redirect to our callback like a browser; the query of where we land."""
    parts = urlsplit(location)
    assert parts.path == urlsplit(CALLBACK).path and parts.netloc == urlsplit(CALLBACK).netloc, location
    back = api.client.get(f"{parts.path}?{parts.query}", follow_redirects=False)  # no API key: a browser
    assert back.status_code == 302, back.text
    landed = urlsplit(back.headers["location"])
    assert f"{landed.scheme}://{landed.netloc}{landed.path}" == RETURN
    return parse_qs(landed.query)


def connect(api: Api, fake: FakeGoogle, agent_id: str, **extra: Any) -> dict[str, Any]:
    started = start(api, agent_id, **extra)
    query = callback(api, fake.consent(started["redirect_url"]))
    assert query["state"] == [started["state"]] and "error" not in query, query
    r = api.get(f"/v1/connections/{query['connection_id'][0]}?expand[]=calendars")
    assert r.status_code == 200, r.text
    con: dict[str, Any] = r.json()
    return con


def enable(api: Api, con: dict[str, Any], remote_id: str = EMAIL) -> dict[str, Any]:
    r = api.patch(f"/v1/connections/{con['id']}", json={"calendars": [{"remote_id": remote_id, "sync": True}]})
    assert r.status_code == 200, r.text
    mapped: dict[str, Any] = next(c for c in r.json()["calendars"] if c["remote_id"] == remote_id)
    return mapped
