"""POST /v1/connections/start and GET /v1/connections/callback: documented, validated, never a 500."""

from __future__ import annotations

from typing import Any

import pytest


def test_start_and_callback_are_in_the_openapi_document(api: Any) -> None:
    paths = api.as_key("").get("/schema/openapi.json").json()["paths"]
    assert "post" in paths["/v1/connections/start"]
    assert "get" in paths["/v1/connections/callback"] and "post" in paths["/v1/connections/callback"]
    assert paths["/v1/connections/callback"]["get"].get("security") in (None, [])
    assert "post" in paths["/v1/connections/notifications/{provider}"]


def test_start_without_an_oauth_client_names_the_provider(api: Any) -> None:
    agent = api.agent()
    r = api.post(
        "/v1/connections/start",
        json={"provider": "google", "agent_id": agent["id"], "return_url": "http://127.0.0.1:8765/done"},
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["type"], error["param"]) == ("validation_error", "provider")
    assert "CHRONARY_GOOGLE_CLIENT_ID" in error["message"]  # says what to set


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"provider": "icloud", "return_url": "http://127.0.0.1:8765/"}, "provider"),
        ({"provider": "google", "return_url": "ftp://example.com/"}, "return_url"),
        ({"provider": "google", "return_url": "http://exa mple.com/"}, "return_url"),
        ({"provider": "google", "return_url": "http://example.com/\r\nX: 1"}, "return_url"),
        ({"provider": "google"}, "return_url"),
        ({"provider": "google", "return_url": "http://127.0.0.1:8765/", "extra": 1}, "extra"),
        ({"provider": "google", "return_url": "http://127.0.0.1:8765/", "connection_id": "con_nope"}, "connection_id"),
    ],
)
def test_start_validates_its_body(api: Any, body: dict[str, Any], param: str) -> None:
    agent = api.agent()
    r = api.post("/v1/connections/start", json={"agent_id": agent["id"], **body})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


def test_start_is_org_only_and_hides_other_agents(api: Any) -> None:
    agent = api.agent()
    agent_api = api.as_key(api.agent_key(agent["id"]))
    body = {"provider": "google", "agent_id": agent["id"], "return_url": "http://127.0.0.1:8765/"}
    assert agent_api.post("/v1/connections/start", json=body).status_code == 403
    r = api.post("/v1/connections/start", json={**body, "agent_id": "agt_nope"})
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("query", "param"),
    [({}, "state"), ({"state": "abc"}, "state"), ({"state": "abc", "code": "xyz"}, "state")],
)
def test_callback_needs_no_key_and_refuses_unknown_state(api: Any, query: dict[str, str], param: str) -> None:
    r = api.client.get("/v1/connections/callback", params=query)  # no API key
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
