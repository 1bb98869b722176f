"""/v1/webhooks: create (secret once), validation that names the field, org-only, pause, rotate, delete."""

from __future__ import annotations

import pytest

from chronary.store import webhooks as store


def make(api, url: str, **fields):
    return api.post("/v1/webhooks", json={"url": url, "events": ["*"], **fields})


def test_create_shows_secret_once_and_stores_it_encrypted(api, receiver):
    r = make(api, receiver.url, description="ops", events=["event.created", "event.updated", "event.created"])
    assert r.status_code == 201, r.text
    wh = r.json()
    assert wh["id"].startswith("whk_") and wh["secret"].startswith("whsec_")
    assert wh["events"] == ["event.created", "event.updated"]
    assert (wh["status"], wh["disabled_reason"], wh["description"], wh["agent_id"]) == ("active", None, "ops", None)
    assert wh["created_at"].endswith("Z") and wh["updated_at"] == wh["created_at"]

    got = api.get(f"/v1/webhooks/{wh['id']}").json()
    assert "secret" not in got and got == {k: v for k, v in wh.items() if k != "secret"}
    listed = api.get("/v1/webhooks").json()
    assert listed["total"] == 1 and "secret" not in listed["data"][0]

    row = api.runtime.db.read_sync(lambda tx: store.get_endpoint(tx.conn, wh["id"]))
    assert wh["secret"] not in str(row)
    assert api.runtime.secrets.decrypt(row["secret_enc"]) == wh["secret"]


def test_agent_keys_are_refused(api, receiver):
    agent = api.agent("Ada")
    wh = make(api, receiver.url).json()
    as_agent = api.as_key(api.agent_key(agent["id"]))
    for method, url, body in [
        ("POST", "/v1/webhooks", {"url": receiver.url, "events": ["*"]}),
        ("GET", "/v1/webhooks", None),
        ("GET", f"/v1/webhooks/{wh['id']}", None),
        ("PATCH", f"/v1/webhooks/{wh['id']}", {"status": "paused"}),
        ("DELETE", f"/v1/webhooks/{wh['id']}", None),
        ("POST", f"/v1/webhooks/{wh['id']}/rotate-secret", None),
        ("POST", f"/v1/webhooks/{wh['id']}/test", None),
        ("GET", f"/v1/webhooks/{wh['id']}/deliveries", None),
    ]:
        r = as_agent.request(method, url, json=body)
        assert r.status_code == 403, (method, url, r.text)
        assert r.json()["error"]["type"] == "forbidden"


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"url": "ftp://example.com/x", "events": ["*"]}, "url", "scheme"),
        ({"url": "not a url", "events": ["*"]}, "url", "scheme"),
        ({"url": "http://127.0.0.1:8765/hook", "events": ["*"]}, "url", "this Chronary server"),
        ({"url": "http://localhost:8765/hook", "events": ["*"]}, "url", "this Chronary server"),
        ({"url": "http://u:p@example.com/hook", "events": ["*"]}, "url", "credentials"),
        ({"url": "http://127.0.0.1:9/hook", "events": ["event.created", "event.exploded"]}, "events[1]", "unknown"),
        ({"url": "http://127.0.0.1:9/hook", "events": ["*", "event.created"]}, "events[0]", "only entry"),
        ({"url": "http://127.0.0.1:9/hook", "events": ["webhook.test"]}, "events[0]", "unknown"),
        ({"url": "http://127.0.0.1:9/hook", "events": []}, "events", ""),
        ({"url": "http://127.0.0.1:9/hook"}, "events", "required"),
        ({"events": ["*"]}, "url", "required"),
        ({"url": "http://127.0.0.1:9/hook", "events": ["*"], "agent_id": "agt_nope"}, "agent_id", "does not exist"),
        ({"url": "http://127.0.0.1:9/hook", "events": ["*"], "secret": "mine"}, "secret", "Unknown field"),
    ],
)
def test_bad_input_is_400_naming_the_field(api, body, param, words):
    r = api.post("/v1/webhooks", json=body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "validation_error" and err["param"] == param
    assert words in err["message"]


def test_private_targets_refused_at_create_when_setting_is_off(make_api, receiver):
    api = make_api(allow_private_network_targets=False)
    r = make(api, receiver.url)
    assert r.status_code == 400 and r.json()["error"]["param"] == "url"
    assert "allow_private_network_targets" in r.json()["error"]["message"]


def test_patch_pause_resume_and_fields(api, receiver, make_receiver):
    wh = make(api, receiver.url).json()
    other = make_receiver()
    r = api.patch(
        f"/v1/webhooks/{wh['id']}",
        json={"status": "paused", "url": other.url, "events": ["agent.created"], "description": None},
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["status"], got["url"], got["events"], got["description"]) == ("paused", other.url, ["agent.created"], None)
    assert api.get("/v1/webhooks", params={"status": "paused"}).json()["total"] == 1
    assert api.patch(f"/v1/webhooks/{wh['id']}", json={"status": "active"}).json()["status"] == "active"
    for body, param in [
        ({}, None),
        ({"status": "disabled"}, "status"),
        ({"url": None}, "url"),
        ({"url": "http://127.0.0.1:8765/x"}, "url"),
        ({"events": ["nope"]}, "events[0]"),
    ]:
        r = api.patch(f"/v1/webhooks/{wh['id']}", json=body)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, (body, r.text)


def test_rotate_delete_and_not_found(api, receiver):
    wh = make(api, receiver.url).json()
    r = api.post(f"/v1/webhooks/{wh['id']}/rotate-secret")
    assert r.status_code == 200 and r.json()["secret"] != wh["secret"] and r.json()["secret"].startswith("whsec_")
    assert api.delete(f"/v1/webhooks/{wh['id']}").status_code == 204
    for method, url in [
        ("GET", f"/v1/webhooks/{wh['id']}"),
        ("DELETE", f"/v1/webhooks/{wh['id']}"),
        ("POST", f"/v1/webhooks/{wh['id']}/test"),
        ("GET", f"/v1/webhooks/{wh['id']}/deliveries"),
        ("GET", "/v1/webhook-deliveries/dlv_nope"),
        ("POST", "/v1/webhook-deliveries/dlv_nope/redeliver"),
    ]:
        r = api.request(method, url)
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found", (method, url)


def test_listing_pages_and_filters(api, receiver):
    made = [make(api, receiver.url, description=str(i)).json()["id"] for i in range(5)]
    first = api.get("/v1/webhooks", params={"limit": 2}).json()
    rest = api.get("/v1/webhooks", params={"limit": 2, "offset": 2}).json()
    assert first["total"] == 5 and [w["id"] for w in first["data"] + rest["data"]] == made[:4]
    assert api.get("/v1/webhooks", params={"limit": 0}).status_code == 400
    assert api.get("/v1/webhooks", params={"status": "bogus"}).status_code == 400
    r = api.get(f"/v1/webhooks/{made[0]}/deliveries", params={"status": "bogus"})
    assert r.status_code == 400


def test_redeliver_while_in_flight_conflicts(api, receiver):
    wh = make(api, receiver.url).json()
    dlv = api.post(f"/v1/webhooks/{wh['id']}/test").json()
    from chronary.webhooks import dispatch

    api.runtime.db.write_sync(lambda tx: dispatch.claim(tx, wh["id"]))
    r = api.post(f"/v1/webhook-deliveries/{dlv['id']}/redeliver")
    assert r.status_code == 409 and r.json()["error"]["type"] == "conflict"
    attempts = api.get(f"/v1/webhook-deliveries/{dlv['id']}").json()["attempt_log"]
    assert [a["outcome"] for a in attempts] == ["in_flight"]
