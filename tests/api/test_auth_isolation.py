"""Agent keys reach only their own agent: other agents' data answers 404, org-only endpoints 403."""

from __future__ import annotations

import re

import pytest

from tests.api._helpers import assert_error

_IDS = re.compile(r"\b(agt|cal|evt)_\w+")
T0, T1 = "2030-03-01T10:00:00Z", "2030-03-01T11:00:00Z"


@pytest.fixture
def world(api):
    me, other = api.agent(name="Me"), api.agent(name="Other")
    my_cal, other_cal, org_cal = api.calendar(me["id"]), api.calendar(other["id"]), api.calendar(name="Org")
    return {
        "api": api,
        "me": me,
        "other": other,
        "my_cal": my_cal,
        "other_cal": other_cal,
        "org_cal": org_cal,
        "my_evt": api.event(my_cal["id"], T0, T1),
        "other_evt": api.event(other_cal["id"], T0, T1),
        "org_evt": api.event(org_cal["id"], T0, T1),
        "ak": api.as_key(api.agent_key(me["id"])),
    }


def test_agent_key_reaches_its_own_data(world):
    ak, me, cal, evt = world["ak"], world["me"], world["my_cal"], world["my_evt"]
    assert ak.get(f"/v1/agents/{me['id']}").json()["id"] == me["id"]
    listed = ak.get("/v1/agents").json()
    assert [a["id"] for a in listed["data"]] == [me["id"]] and listed["total"] == 1
    assert ak.patch(f"/v1/agents/{me['id']}", json={"metadata": {"x": 1}}).status_code == 200
    assert ak.get(f"/v1/agents/{me['id']}/calendars").json()["total"] == 1
    assert [c["id"] for c in ak.get("/v1/calendars").json()["data"]] == [cal["id"]]
    assert [c["id"] for c in ak.get("/v1/calendars", params={"include": "all"}).json()["data"]] == [cal["id"]]
    new_cal = ak.post(f"/v1/agents/{me['id']}/calendars", json={"name": "Mine", "timezone": "UTC"})
    assert new_cal.status_code == 201
    assert ak.patch(f"/v1/calendars/{cal['id']}", json={"name": "R"}).status_code == 200
    assert ak.get(f"/v1/calendars/{cal['id']}/events/{evt['id']}").status_code == 200
    created = ak.post(
        f"/v1/calendars/{cal['id']}/events",
        json={"title": "t", "start_time": "2030-03-02T10:00:00Z", "end_time": "2030-03-02T11:00:00Z"},
    )
    assert created.status_code == 201
    assert ak.get(f"/v1/agents/{me['id']}/events").json()["total"] == 2
    assert ak.patch(f"/v1/calendars/{cal['id']}/events/{evt['id']}", json={"title": "x"}).status_code == 200
    assert ak.delete(f"/v1/calendars/{cal['id']}/events/{created.json()['id']}").status_code == 204
    assert ak.delete(f"/v1/calendars/{new_cal.json()['id']}").status_code == 204


@pytest.mark.parametrize("target", ["other", "org"])
def test_other_agents_and_org_data_answer_404(world, target):
    ak = world["ak"]
    cal, evt = world[f"{target}_cal"], world[f"{target}_evt"]
    ev_url = f"/v1/calendars/{cal['id']}/events/{evt['id']}"
    requests = [
        ("GET", f"/v1/calendars/{cal['id']}", None),
        ("PATCH", f"/v1/calendars/{cal['id']}", {"name": "stolen"}),
        ("DELETE", f"/v1/calendars/{cal['id']}", None),
        ("GET", f"/v1/calendars/{cal['id']}/events", None),
        ("POST", f"/v1/calendars/{cal['id']}/events", {"title": "t", "start_time": T0, "end_time": T1}),
        ("GET", ev_url, None),
        ("PATCH", ev_url, {"title": "stolen"}),
        ("DELETE", ev_url, None),
        ("POST", ev_url + "/cancel", None),
        ("POST", ev_url + "/confirm", None),
        ("POST", ev_url + "/release", None),
    ]
    if target == "other":
        agent = world["other"]["id"]
        requests += [
            ("GET", f"/v1/agents/{agent}", None),
            ("PATCH", f"/v1/agents/{agent}", {"name": "stolen"}),
            ("GET", f"/v1/agents/{agent}/calendars", None),
            ("POST", f"/v1/agents/{agent}/calendars", {"name": "x", "timezone": "UTC"}),
            ("GET", f"/v1/agents/{agent}/events", None),
        ]
    for method, url, body in requests:
        kw = {"json": body} if body is not None else {}
        hidden = assert_error(ak.request(method, url, **kw), 404, "not_found")
        missing_url = _IDS.sub(lambda m: m.group(1) + "_doesnotexist", url)
        missing = assert_error(ak.request(method, missing_url, **kw), 404, "not_found")
        # same answer as for an id that does not exist: nothing tells the two apart
        assert _IDS.sub("<id>", hidden["message"]) == _IDS.sub("<id>", missing["message"]), (method, url)
    # nothing changed
    api = world["api"]
    assert api.get(f"/v1/calendars/{cal['id']}").json()["name"] == cal["name"]
    assert api.get(ev_url).json()["title"] == evt["title"]


def test_org_only_endpoints_answer_403(world):
    ak, me = world["ak"], world["me"]
    assert_error(ak.post("/v1/agents", json={"name": "x"}), 403, "forbidden")
    assert_error(ak.post("/v1/calendars", json={"name": "x", "timezone": "UTC"}), 403, "forbidden")
    assert_error(ak.get("/v1/keys"), 403, "forbidden")
    assert_error(ak.post("/v1/keys", json={"name": "x"}), 403, "forbidden")
    assert_error(ak.delete(f"/v1/agents/{me['id']}"), 403, "forbidden")
    # auth.md: webhooks and connections are org-only too
    assert_error(ak.get("/v1/webhooks"), 403, "forbidden")
    assert_error(ak.get("/v1/connections"), 403, "forbidden")
    assert world["api"].get(f"/v1/agents/{me['id']}").status_code == 200


def test_agent_events_list_never_mixes_agents(world):
    api, ak = world["api"], world["ak"]
    mine = ak.get(f"/v1/agents/{world['me']['id']}/events").json()
    assert [e["id"] for e in mine["data"]] == [world["my_evt"]["id"]]
    theirs = api.get(f"/v1/agents/{world['other']['id']}/events").json()
    assert [e["id"] for e in theirs["data"]] == [world["other_evt"]["id"]]
