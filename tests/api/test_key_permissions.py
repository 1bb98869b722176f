"""Connect API permission keys on API keys: defaults by kind, explicit grants, validation."""

from __future__ import annotations

from chronary.permissions import PERMISSIONS
from tests.conftest import Api


def test_org_keys_hold_every_permission_and_agent_keys_none_by_default(api: Api) -> None:
    (first,) = api.get("/v1/keys").json()["data"]
    assert first["permissions"] == sorted(PERMISSIONS)
    agent = api.agent()
    r = api.post("/v1/keys", json={"name": "agent", "agent_id": agent["id"]})
    assert r.status_code == 201 and r.json()["permissions"] == []


def test_keys_can_be_granted_a_chosen_set(api: Api) -> None:
    agent = api.agent()
    r = api.post("/v1/keys", json={"agent_id": agent["id"], "permissions": ["actions.execute", "actions.view"]})
    assert r.status_code == 201, r.text
    assert r.json()["permissions"] == ["actions.execute", "actions.view"]
    listed = {k["id"]: k for k in api.get("/v1/keys").json()["data"]}
    assert listed[r.json()["id"]]["permissions"] == ["actions.execute", "actions.view"]
    narrow = api.post("/v1/keys", json={"name": "read only", "permissions": ["providers.view"]}).json()
    assert narrow["permissions"] == ["providers.view"]
    # a key can hand out only what it holds
    refused = api.as_key(narrow["secret"]).post("/v1/keys", json={"permissions": ["proxy.execute"]})
    assert refused.status_code == 403 and "proxy.execute" in refused.json()["error"]["message"]


def test_unknown_permissions_are_refused_by_name(api: Api) -> None:
    r = api.post("/v1/keys", json={"permissions": ["flows.view", "everything"]})
    assert r.status_code == 400
    assert r.json()["error"]["param"].startswith("permissions")
