"""Microsoft 365 connections end to end: the real app, a real SQLite file, the protocol fake of the
Microsoft identity platform and Graph (tests/fakes/microsoft.py) over HTTPS on 127.0.0.1, trusted
through the standard SSL_CERT_FILE / REQUESTS_CA_BUNDLE (production reads the same variables)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import Api
from tests.fakes.microsoft import FakeMicrosoft

CLIENT_ID = "5f1d2c3b-0000-4000-8000-chronary0001"
CLIENT_SECRET = "ms-test-secret~value"
BASE = "http://127.0.0.1:8765"  # the TestClient's origin
CALLBACK = f"{BASE}/v1/connections/callback"
RETURN = f"{BASE}/connected"
EMAIL = "ben@contoso.example"


@pytest.fixture
def microsoft(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMicrosoft]:
    fake = FakeMicrosoft()
    fake.add_client(CLIENT_ID, CLIENT_SECRET, [CALLBACK])
    fake.add_account(EMAIL, "Ben")
    fake.set_user(EMAIL)
    monkeypatch.setenv("SSL_CERT_FILE", fake.cafile)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.cafile)
    yield fake
    fake.close()
    assert fake.errors == [], fake.errors


def microsoft_settings(fake: FakeMicrosoft, **extra: Any) -> dict[str, Any]:
    return {
        "microsoft_client_id": CLIENT_ID,
        "microsoft_client_secret": CLIENT_SECRET,
        "microsoft_authority": fake.authority,
        "microsoft_graph_url": fake.graph_url,
        **extra,
    }


@pytest.fixture
def mapi(make_api: Any, microsoft: FakeMicrosoft) -> Api:
    api: Api = make_api(**microsoft_settings(microsoft))
    return api


def connect(api: Api, fake: FakeMicrosoft, agent_id: str, **extra: Any) -> dict[str, Any]:
    r = api.post(
        "/v1/connections/start", json={"provider": "microsoft", "agent_id": agent_id, "return_url": RETURN, **extra}
    )
    assert r.status_code == 200, r.text
    started = r.json()
    location = fake.sign_in(started["redirect_url"])
    parts = urlsplit(location)
    assert parts.netloc == urlsplit(CALLBACK).netloc and parts.path == urlsplit(CALLBACK).path, location
    back = api.client.get(f"{parts.path}?{parts.query}", follow_redirects=False)
    assert back.status_code == 302, back.text
    query = parse_qs(urlsplit(back.headers["location"]).query)
    assert query["state"] == [started["state"]] and "error" not in query, query
    got = api.get(f"/v1/connections/{query['connection_id'][0]}?expand[]=calendars")
    assert got.status_code == 200, got.text
    con: dict[str, Any] = got.json()
    return con


def enable(api: Api, con: dict[str, Any], name: str = "Calendar") -> dict[str, Any]:
    remote_id = next(c["remote_id"] for c in con["calendars"] if c["name"] == name)
    r = api.patch(f"/v1/connections/{con['id']}", json={"calendars": [{"remote_id": remote_id, "sync": True}]})
    assert r.status_code == 200, r.text
    mapped: dict[str, Any] = next(c for c in r.json()["calendars"] if c["remote_id"] == remote_id)
    return mapped
