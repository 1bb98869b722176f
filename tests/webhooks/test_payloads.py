"""Every agent, calendar and event change arrives at a "*" endpoint as the documented payload:
{id, type, created_at, data: {object: the resource as the API returns it, previous?: old values}}."""

from __future__ import annotations

import asyncio

from chronary.webhooks import verify
from chronary.workers.holds import HoldExpiryWorker


def previous(before: dict, after: dict) -> dict:
    return {k: before[k] for k in after if k != "updated_at" and before.get(k) != after[k]}


def test_each_type_arrives_with_documented_shape(make_api, clock, receiver, driver):
    api = make_api(clock=clock)
    wh = api.post("/v1/webhooks", json={"url": receiver.url, "events": ["*"]}).json()
    expected: list[tuple[str, dict, dict | None]] = []

    def ok(r, status=200):
        assert r.status_code == status, r.text
        return r.json() if r.content else None

    agent = api.agent("Ada")
    expected.append(("agent.created", agent, None))
    renamed = ok(api.patch(f"/v1/agents/{agent['id']}", json={"name": "Ada L."}))
    expected.append(("agent.updated", renamed, {"name": "Ada"}))

    cal = api.calendar(agent["id"])
    expected.append(("calendar.created", cal, None))
    cal2 = ok(api.patch(f"/v1/calendars/{cal['id']}", json={"name": "Deep work", "timezone": "Europe/Berlin"}))
    expected.append(("calendar.updated", cal2, previous(cal, cal2)))
    events = f"/v1/calendars/{cal['id']}/events"

    ev = api.event(cal["id"], "2026-01-06T10:00:00Z", "2026-01-06T11:00:00Z", title="Standup")
    expected.append(("event.created", ev, None))
    ev2 = ok(api.patch(f"{events}/{ev['id']}", json={"title": "Standup (moved)", "start_time": "2026-01-06T10:30:00Z"}))
    expected.append(("event.updated", ev2, previous(ev, ev2)))
    assert expected[-1][2]["title"] == "Standup"
    ev3 = ok(api.post(f"{events}/{ev['id']}/cancel"))
    expected.append(("event.cancelled", ev3, previous(ev2, ev3)))

    hold = api.event(cal["id"], "2026-01-07T10:00:00Z", "2026-01-07T11:00:00Z", status="hold")
    expected.append(("event.hold_created", hold, None))
    confirmed = ok(api.post(f"{events}/{hold['id']}/confirm"))
    expected.append(("event.hold_confirmed", confirmed, previous(hold, confirmed)))

    released = api.event(cal["id"], "2026-01-08T10:00:00Z", "2026-01-08T11:00:00Z", status="hold")
    expected.append(("event.hold_created", released, None))
    ok(api.post(f"{events}/{released['id']}/release"), 204)
    expected.append(("event.hold_released", released, None))

    expiring = api.event(cal["id"], "2026-01-09T10:00:00Z", "2026-01-09T11:00:00Z", status="hold")
    expected.append(("event.hold_created", expiring, None))
    clock.advance(minutes=16)
    assert asyncio.run(HoldExpiryWorker(api.runtime).sweep()) == [expiring["id"]]
    expected.append(("event.hold_expired", expiring, None))

    gone = ok(api.get(f"{events}/{ev['id']}"))
    ok(api.delete(f"{events}/{ev['id']}"), 204)
    expected.append(("event.deleted", gone, None))
    cal_now = ok(api.get(f"/v1/calendars/{cal['id']}"))
    ok(api.delete(f"/v1/calendars/{cal['id']}"), 204)
    expected.append(("calendar.deleted", cal_now, None))
    ok(api.delete(f"/v1/agents/{agent['id']}"), 204)
    expected.append(("agent.deleted", renamed, None))

    driver(api.runtime).run()
    got = receiver.wait_for(len(expected))
    assert len(got) == len(expected)
    ids = set()
    for received, (type_, obj, prev) in zip(got, expected, strict=True):
        body = received.json
        verify(received.body, received.headers, wh["secret"], now=clock.now().timestamp())
        assert set(body) == {"id", "type", "created_at", "data"}
        assert body["type"] == type_ and body["id"] == received.id and body["created_at"].endswith("Z")
        assert body["data"]["object"] == obj, type_
        if prev is None:
            assert "previous" not in body["data"], type_
        else:
            assert body["data"]["previous"] == prev, type_
        ids.add(body["id"])
    assert len(ids) == len(expected)


def test_subscription_filters_by_type(make_api, clock, make_receiver, driver):
    api = make_api(clock=clock)
    only_holds, only_agents = make_receiver(), make_receiver()
    api.post("/v1/webhooks", json={"url": only_holds.url, "events": ["event.hold_created", "event.hold_confirmed"]})
    api.post("/v1/webhooks", json={"url": only_agents.url, "events": ["agent.created"]})
    agent = api.agent("Ada")
    cal = api.calendar(agent["id"])
    api.event(cal["id"], "2026-01-06T10:00:00Z", "2026-01-06T11:00:00Z")
    api.event(cal["id"], "2026-01-07T10:00:00Z", "2026-01-07T11:00:00Z", status="hold")
    driver(api.runtime).run()
    assert [r.json["type"] for r in only_holds.requests] == ["event.hold_created"]
    assert [r.json["type"] for r in only_agents.requests] == ["agent.created"]
