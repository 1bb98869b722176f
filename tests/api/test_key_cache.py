"""The authenticated-key cache (services/keys.KeyCache behind the /v1 guard): a key seen once is
not looked up again on a reader thread, yet a change to the keys, agents or orgs — made by this
server, or by another `Database` on the same file as `chronary keys revoke` is — applies to the
very next request (`Database.stamp`)."""

from __future__ import annotations

from typing import Any

from chronary.services import keys as key_service
from chronary.services.context import Principal
from chronary.store.db import Database
from tests.api._helpers import assert_error


def test_a_key_seen_once_is_not_looked_up_again(api: Any, monkeypatch: Any) -> None:
    r = api.post("/v1/keys", json={"name": "cached"}).json()
    me = api.as_key(r["secret"])
    assert me.get("/v1/agents").status_code == 200
    seen: list[int] = []
    real = key_service.authenticate
    monkeypatch.setattr(key_service, "authenticate", lambda tx, k: seen.append(1) or real(tx, k))
    for _ in range(3):
        assert me.get("/v1/agents").status_code == 200
    assert seen == []
    api.post("/v1/agents", json={"name": "Ada"})  # agents changed: the stamp moved, looked up again
    assert me.get("/v1/agents").status_code == 200
    assert len(seen) == 2  # the org key's POST, then this one


def test_a_revocation_by_another_database_on_the_file_applies_at_once(api: Any, data_dir: Any) -> None:
    r = api.post("/v1/keys", json={"name": "revoked elsewhere"}).json()
    me = api.as_key(r["secret"])
    assert me.get("/v1/agents").status_code == 200
    assert me.get("/v1/agents").status_code == 200  # from the cache now
    other = Database(api.runtime.db.path)  # what `chronary keys revoke` opens, in its own process
    try:
        principal = Principal(org_id=api.runtime.org_id, key_id="cli")
        other.write_sync(lambda tx: key_service.revoke(tx, principal, r["id"]))
    finally:
        other.close()
    err = assert_error(me.get("/v1/agents"), 401, "unauthorized")
    assert "revoked" in err["message"]


def test_deleting_an_agent_stops_its_cached_key(api: Any) -> None:
    agent = api.post("/v1/agents", json={"name": "Bo"}).json()
    r = api.post("/v1/keys", json={"name": "bo", "agent_id": agent["id"]}).json()
    bo = api.as_key(r["secret"])
    assert bo.get(f"/v1/agents/{agent['id']}").status_code == 200
    assert bo.get(f"/v1/agents/{agent['id']}").status_code == 200
    assert api.delete(f"/v1/agents/{agent['id']}").status_code == 204
    assert_error(bo.get(f"/v1/agents/{agent['id']}"), 401, "unauthorized")


def test_the_cache_is_bounded_and_keyed_by_stamp() -> None:
    cache = key_service.KeyCache(max_entries=2)
    p = Principal(org_id="org_x", key_id="key_a")
    cache.put("a", p, (1, 1, 1))
    assert cache.get("a", (1, 1, 1)) is p
    assert cache.get("a", (1, 2, 1)) is None  # another stamp: not trusted
    cache.put("b", p, (1, 1, 1))
    cache.put("c", p, (1, 1, 1))  # full: starts over
    assert cache.get("a", (1, 1, 1)) is None and cache.get("c", (1, 1, 1)) is p
    cache.put("d", p, None)  # no stamp: never kept
    assert cache.get("d", None) is None


def test_the_stamp_moves_with_key_commits_only(tmp_path: Any) -> None:
    db = Database(tmp_path / "s.db")
    try:
        db.write_sync_raw(lambda conn: conn.execute("CREATE TABLE api_keys (id TEXT PRIMARY KEY); CREATE TABLE t (x)"))
        first = db.stamp()
        db.write_sync(lambda tx: tx.conn.execute("INSERT INTO t VALUES (1)"))
        assert db.stamp() == first
        db.write_sync(lambda tx: tx.conn.execute("INSERT INTO api_keys VALUES ('key_1')"))
        assert db.stamp() != first
    finally:
        db.close()
