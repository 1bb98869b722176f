"""API keys over HTTP: org vs agent keys, both headers, hashed storage, listing, revocation."""

from __future__ import annotations

import apsw

from tests.api._helpers import assert_error


def _secret_visible_anywhere(db_path, secret: str) -> bool:
    """Look for the secret in every text cell of every table, and in the raw file bytes."""
    conn = apsw.Connection(str(db_path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f"SELECT * FROM {table}"):
                if any(isinstance(v, str) and secret in v for v in row):
                    return True
    finally:
        conn.close()
    raw = b""
    for suffix in ("", "-wal"):
        path = db_path.with_name(db_path.name + suffix)
        if path.exists():
            raw += path.read_bytes()
    return secret.encode() in raw


def test_first_key_is_an_org_key(api):
    assert api.key.startswith("chr_sk_")
    keys = api.get("/v1/keys").json()
    assert keys["total"] == 1 and keys["data"][0]["agent_id"] is None


def test_create_org_and_agent_keys(api):
    a = api.agent()
    r = api.post("/v1/keys", json={"name": "ci"})
    assert r.status_code == 201
    org = r.json()
    assert org["id"].startswith("key_") and org["secret"].startswith("chr_sk_")
    assert org["prefix"] == "chr_sk_" and org["last4"] == org["secret"][-4:] and org["agent_id"] is None
    assert len(org["secret"]) >= 40
    r = api.post("/v1/keys", json={"name": "bot", "agent_id": a["id"]})
    assert r.status_code == 201
    ag = r.json()
    assert ag["secret"].startswith("chr_ak_") and ag["prefix"] == "chr_ak_" and ag["agent_id"] == a["id"]
    assert set(ag) == {"id", "name", "agent_id", "prefix", "last4", "created_at", "permissions", "secret"}
    assert api.post("/v1/keys", json={}).json()["name"]  # name has a default


def test_bearer_and_x_api_key_both_work(api):
    bare = api.as_key("")
    assert bare.get("/v1/agents", headers={"Authorization": f"Bearer {api.key}"}).status_code == 200
    assert bare.get("/v1/agents", headers={"authorization": f"bearer {api.key}"}).status_code == 200
    assert bare.get("/v1/agents", headers={"x-api-key": api.key}).status_code == 200
    a = api.agent()
    agent_key = api.agent_key(a["id"])
    assert bare.get(f"/v1/agents/{a['id']}", headers={"x-api-key": agent_key}).status_code == 200


def test_bad_credentials_are_401(api):
    bare = api.as_key("")
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": f"Token {api.key}"},
        {"Authorization": "Bearer chr_sk_unknownunknownunknown"},
        {"Authorization": "Bearer sk_live_somethingelse"},
        {"x-api-key": "chr_ak_nope"},
        {"x-api-key": ""},
        {"Authorization": "Bearer " + "chr_sk_" + "a" * 5000},
        {"Authorization": f"Bearer {api.key}x"},
        {"Authorization": f"Bearer {api.key[:-1]}"},
    ):
        assert_error(bare.get("/v1/agents", headers=headers), 401, "unauthorized")
    assert_error(bare.post("/v1/agents", json={"name": "x"}), 401, "unauthorized")
    assert "Missing" in assert_error(bare.get("/v1/agents"), 401, "unauthorized")["message"]
    basic = assert_error(bare.get("/v1/agents", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401, "unauthorized")
    assert "Malformed" in basic["message"]


def test_a_non_bearer_authorization_does_not_hide_x_api_key(api):
    r = api.as_key("").get("/v1/agents", headers={"Authorization": "Basic dXNlcjpwYXNz", "x-api-key": api.key})
    assert r.status_code == 200


def test_secrets_are_stored_only_as_hashes(api, data_dir):
    a = api.agent()
    secrets = [api.key, api.post("/v1/keys", json={"name": "k"}).json()["secret"], api.agent_key(a["id"])]
    db_path = data_dir / "chronary.db"
    for secret in secrets:
        assert not _secret_visible_anywhere(db_path, secret)
    # the stored hash is the SHA-256 of the secret (the contract in auth.md)
    import hashlib

    conn = apsw.Connection(str(db_path), flags=apsw.SQLITE_OPEN_READONLY)
    hashes = {r[0] for r in conn.execute("SELECT hash FROM api_keys")}
    conn.close()
    assert {hashlib.sha256(s.encode()).hexdigest() for s in secrets} == hashes


def test_list_shows_prefix_and_last4_only(api):
    a = api.agent()
    made = [api.post("/v1/keys", json={"name": f"k{i}"}).json() for i in range(2)]
    agent_key = api.post("/v1/keys", json={"name": "ag", "agent_id": a["id"]}).json()
    r = api.get("/v1/keys")
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 4
    for k in body["data"]:
        assert set(k) == {"id", "name", "agent_id", "prefix", "last4", "created_at", "permissions"}
        assert len(k["last4"]) == 4
    for secret in (api.key, *(m["secret"] for m in made), agent_key["secret"]):
        assert secret not in r.text
    only_agent = api.get("/v1/keys", params={"agent_id": a["id"]}).json()
    assert [k["id"] for k in only_agent["data"]] == [agent_key["id"]]
    page = api.get("/v1/keys", params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 4 and len(page["data"]) == 1


def test_revoke_is_immediate(api):
    r = api.post("/v1/keys", json={"name": "temp"}).json()
    temp = api.as_key(r["secret"])
    assert temp.get("/v1/agents").status_code == 200
    assert api.delete(f"/v1/keys/{r['id']}").status_code == 204
    err = assert_error(temp.get("/v1/agents"), 401, "unauthorized")
    assert "revoked" in err["message"]
    assert all(k["id"] != r["id"] for k in api.get("/v1/keys").json()["data"])
    assert_error(api.delete(f"/v1/keys/{r['id']}"), 404, "not_found")
    assert_error(api.delete("/v1/keys/key_nope"), 404, "not_found")


def test_a_key_can_revoke_itself(api):
    r = api.post("/v1/keys", json={"name": "self"}).json()
    me = api.as_key(r["secret"])
    assert me.delete(f"/v1/keys/{r['id']}").status_code == 204
    assert_error(me.get("/v1/keys"), 401, "unauthorized")


def test_key_validation(api):
    assert_error(api.post("/v1/keys", json={"name": ""}), 400, "validation_error", "name")
    assert_error(api.post("/v1/keys", json={"name": "x" * 256}), 400, "validation_error", "name")
    assert_error(api.post("/v1/keys", json={"agent_id": "agt_missing"}), 400, "validation_error", "agent_id")
    assert_error(api.post("/v1/keys", json={"agent_id": 7}), 400, "validation_error", "agent_id")
    assert_error(api.post("/v1/keys", json={"secret": "chr_sk_mine"}), 400, "validation_error", "secret")
    assert_error(api.post("/v1/keys", json={"prefix": "chr_ak_"}), 400, "validation_error", "prefix")


def test_agent_keys_cannot_manage_keys(api):
    a = api.agent()
    ak = api.as_key(api.agent_key(a["id"]))
    own = api.get("/v1/keys", params={"agent_id": a["id"]}).json()["data"][0]
    assert_error(ak.get("/v1/keys"), 403, "forbidden")
    assert_error(ak.post("/v1/keys", json={"name": "x"}), 403, "forbidden")
    assert_error(ak.post("/v1/keys", json={"name": "x", "agent_id": a["id"]}), 403, "forbidden")
    assert_error(ak.delete(f"/v1/keys/{own['id']}"), 403, "forbidden")
    assert api.get("/v1/keys").json()["total"] == 2
