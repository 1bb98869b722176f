"""The app starts on a fresh data dir, creates its database, and answers health without a key."""

from pathlib import Path


def test_health_needs_no_key_and_database_is_created(api, data_dir: Path):
    r = api.as_key("").get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["schema_version"] >= 1
    assert (data_dir / "chronary.db").exists()
    assert r.headers["x-request-id"].startswith("req_")


def test_live_server_answers_over_a_socket(live_server):
    server = live_server(workers=False)
    with server.client() as c:
        assert c.get("/health").json()["status"] == "ok"
        assert c.get("/v1/agents").json()["total"] == 0
