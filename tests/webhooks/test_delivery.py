"""The delivery worker against a real HTTP receiver, with a ManualClock deciding when retries fall due."""

from __future__ import annotations

from datetime import timedelta

from chronary.store import outbox
from chronary.store import webhooks as store
from chronary.timeutil import parse_stored
from chronary.webhooks import WebhookVerificationError, verify


def hook(api, url: str, events=("*",), **fields) -> dict:
    r = api.post("/v1/webhooks", json={"url": url, "events": list(events), **fields})
    assert r.status_code == 201, r.text
    return r.json()


def log(api, webhook_id: str, **params) -> list[dict]:
    r = api.get(f"/v1/webhooks/{webhook_id}/deliveries", params=params)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def detail(api, delivery_id: str) -> dict:
    r = api.get(f"/v1/webhook-deliveries/{delivery_id}")
    assert r.status_code == 200, r.text
    return r.json()


def test_delivers_signed_payload_and_logs_success(make_api, clock, receiver, driver):
    api = make_api(clock=clock)
    wh = hook(api, receiver.url)
    agent = api.agent("Ada")
    receiver.queue(("big", 3000))
    driver(api.runtime).run()

    (got,) = receiver.wait_for(1)
    assert got.headers["Content-Type"] == "application/json"
    body = got.json
    assert body["type"] == "agent.created" and body["id"] == got.id and body["id"].startswith("whe_")
    assert body["data"]["object"] == agent
    assert int(got.headers["Chronary-Webhook-Timestamp"]) == int(clock.now().timestamp())
    verify(got.body, got.headers, wh["secret"], now=clock.now().timestamp())

    (entry,) = log(api, wh["id"])
    assert entry["status"] == "succeeded" and entry["attempts"] == 1 and entry["last_status_code"] == 200
    assert entry["event_id"] == got.id and entry["event_type"] == "agent.created"
    assert len(entry["last_response_body"].encode()) == 1024  # truncated to 1 KB
    assert entry["next_attempt_at"] is None and entry["last_duration_ms"] is not None
    full = detail(api, entry["id"])
    assert full["payload"] == body
    assert [a["outcome"] for a in full["attempt_log"]] == ["succeeded"]


def test_failures_retry_on_schedule_with_same_id_then_recover(make_api, clock, receiver, driver):
    api = make_api(clock=clock)
    wh = hook(api, receiver.url)
    api.agent("Ada")
    receiver.queue(("status", 500), ("status", 503))
    d = driver(api.runtime)
    d.run()
    assert len(receiver.requests) == 1
    (entry,) = log(api, wh["id"])
    assert entry["status"] == "retrying" and entry["last_status_code"] == 500
    due = parse_stored(entry["next_attempt_at"])
    assert due == clock.now() + timedelta(seconds=30)  # first retry after 30 s (jitter off here)

    clock.advance(seconds=29)
    d.run()
    assert len(receiver.requests) == 1  # not yet due
    clock.advance(seconds=1)
    d.run()
    assert len(receiver.requests) == 2
    (entry,) = log(api, wh["id"])
    assert parse_stored(entry["next_attempt_at"]) == clock.now() + timedelta(minutes=2)

    clock.advance(minutes=2)
    d.run()
    got = receiver.wait_for(3)
    assert len({r.id for r in got}) == 1  # the same payload id on every attempt
    assert len({r.body for r in got}) == 1  # byte for byte
    (entry,) = log(api, wh["id"])
    assert entry["status"] == "succeeded" and entry["attempts"] == 3
    outcomes = [(a["outcome"], a["status_code"]) for a in detail(api, entry["id"])["attempt_log"]]
    assert outcomes == [("retry", 500), ("retry", 503), ("succeeded", 200)]


def test_retry_after_larger_than_schedule_wins(make_api, clock, receiver, driver):
    api = make_api(clock=clock)
    wh = hook(api, receiver.url)
    api.agent("Ada")
    receiver.queue(("status", 429, {"Retry-After": "300"}))
    d = driver(api.runtime)
    d.run()
    (entry,) = log(api, wh["id"])
    assert entry["status"] == "retrying" and entry["last_status_code"] == 429
    assert parse_stored(entry["next_attempt_at"]) == clock.now() + timedelta(seconds=300)
    clock.advance(seconds=299)
    d.run()
    assert len(receiver.requests) == 1
    clock.advance(seconds=1)
    d.run()
    assert len(receiver.requests) == 2
    assert log(api, wh["id"])[0]["status"] == "succeeded"


def test_stalled_receiver_times_out_and_is_retried(make_api, clock, receiver, driver):
    api = make_api(clock=clock)
    wh = hook(api, receiver.url)
    api.agent("Ada")
    receiver.queue(("stall", 3))
    d = driver(api.runtime, timeout=0.3)
    d.run()
    (entry,) = log(api, wh["id"])
    assert entry["status"] == "retrying" and entry["last_status_code"] is None
    assert "timed out" in entry["last_error"]
    clock.advance(seconds=30)
    d.run()
    assert log(api, wh["id"])[0]["status"] == "succeeded"


def test_a_trickling_answer_is_cut_off_by_the_total_timeout(make_api, clock, receiver, driver):
    api = make_api(clock=clock)
    wh = hook(api, receiver.url)
    api.agent("Ada")
    receiver.queue(("trickle", 5))
    d = driver(api.runtime, timeout=0.6)
    d.run()
    (entry,) = log(api, wh["id"])
    assert entry["status"] == "retrying" and "timed out" in entry["last_error"]
    assert entry["last_duration_ms"] < 3000


def test_client_errors_fail_at_once_and_schedule_ends_in_failed(make_api, clock, make_receiver, driver):
    api = make_api(clock=clock)
    gone, broken = make_receiver(), make_receiver()
    gone.default, broken.default = ("status", 410), ("status", 500)
    wh_gone, wh_broken = hook(api, gone.url), hook(api, broken.url)
    api.agent("Ada")
    d = driver(api.runtime)
    d.run()
    (entry,) = log(api, wh_gone["id"])
    assert entry["status"] == "failed" and entry["attempts"] == 1 and "not retried" in entry["last_error"]

    for wait in (30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600):
        clock.advance(seconds=wait)
        d.run()
    (entry,) = log(api, wh_broken["id"])
    assert entry["status"] == "failed" and entry["attempts"] == 9 and entry["next_attempt_at"] is None
    assert len(broken.requests) == 9
    clock.advance(days=1)
    d.run()
    assert len(broken.requests) == 9
    # under 3 days of failures: still active
    assert api.get(f"/v1/webhooks/{wh_broken['id']}").json()["status"] == "active"


def test_endpoint_failing_for_three_days_is_disabled_and_can_be_re_enabled(make_api, clock, receiver, driver):
    api = make_api(clock=clock)
    receiver.default = ("status", 500)
    wh = hook(api, receiver.url)
    d = driver(api.runtime, schedule=(6 * 3600,) * 100)
    agent = api.agent("Ada")
    d.run()
    for step in range(12):  # 3 days in 6-hour steps, a new change now and then
        assert api.get(f"/v1/webhooks/{wh['id']}").json()["status"] == "active"
        clock.advance(hours=6)
        if step % 4 == 0:
            api.patch(f"/v1/agents/{agent['id']}", json={"name": f"Ada {step}"})
        d.run()
    got = api.get(f"/v1/webhooks/{wh['id']}").json()
    assert got["status"] == "disabled"
    assert "failed since" in got["disabled_reason"] and "HTTP 500" in got["disabled_reason"]
    assert log(api, wh["id"], status="retrying") == [] and log(api, wh["id"], status="pending") == []
    assert all(e["status"] in ("failed", "succeeded") for e in log(api, wh["id"], limit=200))

    sent = len(receiver.requests)
    api.agent("Bob")  # disabled: no delivery is created
    d.run()
    assert len(receiver.requests) == sent

    receiver.default = ("ok",)
    r = api.patch(f"/v1/webhooks/{wh['id']}", json={"status": "active"})
    assert r.status_code == 200 and r.json()["status"] == "active" and r.json()["disabled_reason"] is None
    api.agent("Cy")
    d.run()
    assert receiver.requests[-1].json["data"]["object"]["name"] == "Cy"


def test_one_resource_keeps_order_while_others_proceed(make_api, clock, receiver, driver):
    api = make_api(clock=clock)
    wh = hook(api, receiver.url, events=["agent.created", "agent.updated"])
    ada = api.agent("Ada")
    receiver.queue(("status", 500))  # Ada's first delivery fails
    d = driver(api.runtime)
    d.run()
    api.patch(f"/v1/agents/{ada['id']}", json={"name": "Ada 2"})
    bob = api.agent("Bob")
    d.run()
    # Bob's creation went out; Ada's update waits behind her failed-and-retrying creation
    assert [r.json["data"]["object"]["id"] for r in receiver.requests] == [ada["id"], bob["id"]]
    clock.advance(seconds=30)
    d.run()
    kinds = [(r.json["type"], r.json["data"]["object"]["name"]) for r in receiver.requests]
    assert kinds[2:] == [("agent.created", "Ada"), ("agent.updated", "Ada 2")]
    assert {e["status"] for e in log(api, wh["id"])} == {"succeeded"}


def test_slow_endpoint_does_not_delay_others(make_api, clock, make_receiver, driver):
    api = make_api(clock=clock)
    slow, fast = make_receiver(), make_receiver()
    slow.default = ("stall", 5)
    hook(api, slow.url)
    hook(api, fast.url)
    api.agent("Ada")
    api.agent("Bob")
    d = driver(api.runtime, timeout=5)
    d.start_tick()
    fast.wait_for(2, timeout=3)  # both arrive at the fast one…
    assert len(slow.requests) == 1 and slow.requests[0].answered is None  # …while the slow one stalls
    slow.release()
    d.finish()
    assert len(slow.wait_for(2)) == 2


def test_paused_endpoint_holds_deliveries_until_resumed(make_api, clock, receiver, driver):
    api = make_api(clock=clock)
    wh = hook(api, receiver.url)
    assert api.patch(f"/v1/webhooks/{wh['id']}", json={"status": "paused"}).json()["status"] == "paused"
    api.agent("Ada")
    api.agent("Bob")
    d = driver(api.runtime)
    d.run()
    clock.advance(hours=1)
    d.run()
    assert receiver.requests == []
    assert [e["status"] for e in log(api, wh["id"])] == ["pending", "pending"]
    api.patch(f"/v1/webhooks/{wh['id']}", json={"status": "active"})
    d.run()
    names = [r.json["data"]["object"]["name"] for r in receiver.wait_for(2)]
    assert names == ["Ada", "Bob"]


def test_agent_scoped_endpoint_gets_only_its_agent(make_api, clock, receiver, driver):
    api = make_api(clock=clock)
    ada, bob = api.agent("Ada"), api.agent("Bob")
    hook(api, receiver.url, agent_id=ada["id"])
    for owner in (ada, bob):
        cal = api.calendar(owner["id"])
        api.event(cal["id"], "2026-01-06T10:00:00Z", "2026-01-06T11:00:00Z")
    api.calendar()  # org-level calendar: no agent
    api.delete(f"/v1/agents/{bob['id']}")
    api.delete(f"/v1/agents/{ada['id']}")  # the scoped endpoint still hears about its agent's end
    driver(api.runtime).run()
    got = receiver.wait_for(3)
    assert [r.json["type"] for r in got] == ["calendar.created", "event.created", "agent.deleted"]
    assert got[0].json["data"]["object"]["agent_id"] == ada["id"] and got[2].json["data"]["object"]["id"] == ada["id"]
    assert len(receiver.requests) == 3


def test_endpoint_created_later_gets_only_later_changes(make_api, clock, receiver, driver):
    api = make_api(clock=clock)
    api.agent("Before")  # in the outbox, not yet fanned out
    hook(api, receiver.url)
    api.agent("After")
    driver(api.runtime).run()
    assert [r.json["data"]["object"]["name"] for r in receiver.wait_for(1)] == ["After"]


def test_test_event_redeliver_and_rotated_secret(make_api, clock, receiver, driver):
    api = make_api(clock=clock)
    wh = hook(api, receiver.url, events=["event.created"])
    r = api.post(f"/v1/webhooks/{wh['id']}/test")
    assert r.status_code == 202 and r.json()["event_type"] == "webhook.test" and r.json()["status"] == "pending"
    d = driver(api.runtime)
    d.run()
    (got,) = receiver.wait_for(1)
    assert got.json["type"] == "webhook.test" and got.json["data"]["object"]["id"] == wh["id"]
    assert "secret" not in got.json["data"]["object"]

    rotated = api.post(f"/v1/webhooks/{wh['id']}/rotate-secret").json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != wh["secret"]
    r = api.post(f"/v1/webhook-deliveries/{r.json()['id']}/redeliver")
    assert r.status_code == 202 and r.json()["status"] == "pending"
    d.run()
    again = receiver.wait_for(2)[1]
    assert again.id == got.id and again.body == got.body
    now = clock.now().timestamp()
    verify(again.body, again.headers, rotated["secret"], now=now)
    try:
        verify(again.body, again.headers, wh["secret"], now=now)
        raise AssertionError("the old secret must no longer verify")
    except WebhookVerificationError:
        pass
    full = detail(api, r.json()["id"])
    assert full["status"] == "succeeded" and [a["number"] for a in full["attempt_log"]] == [1, 2]


def test_delivery_refused_when_url_now_points_at_this_server(make_api, clock, receiver, driver):
    api = make_api(clock=clock)
    wh = hook(api, receiver.url)
    own = f"http://127.0.0.1:{api.runtime.settings.port}/v1/agents"
    api.runtime.db.write_sync(lambda tx: store.patch_endpoint(tx.conn, wh["id"], {"url": own}))
    api.agent("Ada")
    driver(api.runtime).run()
    (entry,) = log(api, wh["id"])
    assert entry["status"] == "failed" and "this Chronary server itself" in entry["last_error"]


def test_private_targets_refused_when_setting_is_off(make_api, clock, receiver, driver):
    api = make_api(clock=clock)
    wh = hook(api, receiver.url)
    api.agent("Ada")
    strict = api.runtime
    object.__setattr__(strict, "settings", strict.settings.with_(allow_private_network_targets=False))
    driver(strict).run()
    (entry,) = log(api, wh["id"])
    assert entry["status"] == "failed" and "allow_private_network_targets" in entry["last_error"]
    assert receiver.requests == []


def test_finished_deliveries_leave_the_log_after_retention(make_api, clock, make_receiver, driver):
    api = make_api(clock=clock)
    ok, held = make_receiver(), make_receiver()
    wh_ok, wh_held = hook(api, ok.url), hook(api, held.url)
    api.patch(f"/v1/webhooks/{wh_held['id']}", json={"status": "paused"})
    api.agent("Ada")
    d = driver(api.runtime)
    d.run()
    clock.advance(days=29)
    d.run()
    assert len(log(api, wh_ok["id"])) == 1
    clock.advance(days=2)
    d.run()
    assert log(api, wh_ok["id"]) == []
    assert [e["status"] for e in log(api, wh_held["id"])] == ["pending"]  # open ones are kept at any age
    # the outbox row that fed both deliveries was fanned out 31 days ago: it is gone too
    outbox_rows = api.runtime.db.read_sync(lambda tx: outbox.recent(tx.conn))
    assert outbox_rows == []
