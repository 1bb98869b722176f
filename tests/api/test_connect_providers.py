"""`/connect/v1/providers`: the catalogue over HTTP, behind the same keys and permissions."""

from __future__ import annotations

from tests.conftest import Api

REQUIRED = {
    "chronary", "google", "microsoft", "icloud", "caldav", "ical", "http",
    "ntfy", "slack", "discord", "telegram", "home_assistant", "smtp",
}  # fmt: skip


def test_the_catalogue_lists_every_provider_and_each_one_alone(api: Api) -> None:
    r = api.get("/connect/v1/providers")
    assert r.status_code == 200, r.text
    body = r.json()
    by_type = {p["type"]: p for p in body["data"]}
    assert set(by_type) >= REQUIRED and body["total"] == len(body["data"])
    slack = api.get("/connect/v1/providers/slack").json()
    assert slack == by_type["slack"] and slack["auth"] == "api_key" and "actions" in slack["capabilities"]
    assert any(c["secret"] for c in slack["credentials"])
    assert by_type["google"]["connect_via"] == "/v1/connections/start"
    actions = api.get("/connect/v1/providers/chronary/actions").json()
    names = {a["name"] for a in actions["data"]}
    assert {"create_event", "create_hold", "confirm_hold", "release_hold", "find_meeting_time", "list_events"} <= names
    create = next(a for a in actions["data"] if a["name"] == "create_event")
    assert create["input_schema"]["type"] == "object" and "calendar_id" in create["input_schema"]["properties"]


def test_unknown_providers_and_missing_keys_answer_the_envelope(api: Api) -> None:
    r = api.get("/connect/v1/providers/nope")
    assert r.status_code == 404 and r.json()["error"] == {
        **r.json()["error"],
        "type": "not_found",
        "message": "Provider not found",
    }
    unauth = api.as_key("").get("/connect/v1/providers")
    assert unauth.status_code == 401 and unauth.json()["error"]["type"] == "unauthorized"
    assert api.get("/connect/v1/nothing-here").json()["error"]["type"] == "not_found"


def test_permissions_are_enforced_by_name(api: Api) -> None:
    agent = api.agent()
    none = api.post("/v1/keys", json={"agent_id": agent["id"]}).json()["secret"]
    r = api.as_key(none).get("/connect/v1/providers")
    assert r.status_code == 403 and "providers.view" in r.json()["error"]["message"]
    viewer = api.post("/v1/keys", json={"agent_id": agent["id"], "permissions": ["providers.view"]}).json()["secret"]
    assert api.as_key(viewer).get("/connect/v1/providers").status_code == 200
    refused = api.as_key(viewer).get("/connect/v1/providers/slack/actions")
    assert refused.status_code == 403 and "actions.view" in refused.json()["error"]["message"]


def test_the_connect_api_is_in_the_same_openapi_document(api: Api) -> None:
    paths = api.as_key("").get("/schema/openapi.json").json()["paths"]
    assert "/connect/v1/providers" in paths and "/connect/v1/providers/{provider_type}" in paths
    assert "/v1/agents" in paths
