"""Flow templates (`/connect/v1/flow-templates`) on the real app and a real SQLite file: listed,
cloned into valid flows, refused naming the missing input — and the cloned flows run end to end
against local fakes with a ManualClock and the workers ticked by hand: the agenda pushed with
ntfy 15 minutes before a client call, the day's agenda posted to Slack at 07:00 local time, the
invitation mailed to the attendees of a booked event, and the push when a subscription fails."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chronary.clock import ManualClock
from chronary.services.automation.templates import TEMPLATES
from chronary.workers.holds import HoldExpiryWorker
from chronary.workers.subscriptions import SubscriptionWorker
from tests.automation.test_time_triggers import Workers, at, executions
from tests.conftest import Api
from tests.fakes.ntfy import FakeNtfy
from tests.fakes.server import FakeServer
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import FakeSMTP
from tests.webhooks.receiver import Receiver

SLACK_TOKEN = "xoxb-1111-2222-abcdefghijkl"
SIGNING = "8f742231b10e8888abcd99yyyzzz85a5"
TOPIC = "ada-phone"


@pytest.fixture
def workers() -> Any:
    made: list[Workers] = []

    def factory(api: Api, clock: ManualClock) -> Workers:
        w = Workers(api.runtime, clock)
        made.append(w)
        return w

    yield factory
    for w in made:
        w.close()


@pytest.fixture
def ntfy() -> Any:
    with FakeNtfy() as fake:
        yield fake


def connect_ntfy(api: Api, ntfy: FakeNtfy) -> str:
    token = ntfy.add_token("ada")
    ntfy.protect(TOPIC, token)
    r = api.post("/connect/v1/providers/ntfy/connect", json={"credentials": {"baseUrl": ntfy.url, "apiKey": token}})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def clone(api: Api, slug: str, **body: Any) -> dict[str, Any]:
    r = api.post(f"/connect/v1/flow-templates/{slug}/clone", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def calendar(api: Api, timezone: str = "UTC") -> dict[str, Any]:
    agent = api.agent("Ada", timezone=timezone)
    return api.calendar(agent["id"], timezone=timezone)


def succeeded(api: Api, flow_id: str) -> list[dict[str, Any]]:
    runs = executions(api, flow_id)
    for run in runs:
        assert run["status"] == "succeeded", (run["error"], run["errorStep"])
    return runs


# --- listing and cloning -------------------------------------------------------------------------


def test_the_templates_are_listed_and_each_clones_into_a_valid_flow(make_api: Any, ntfy: FakeNtfy) -> None:
    api = make_api()
    listed = api.get("/connect/v1/flow-templates")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    slugs = [t["slug"] for t in body["data"]]
    assert body["total"] == len(slugs) and set(slugs) >= {t.slug for t in TEMPLATES}
    assert set(slugs) >= {
        "agenda-before-client-calls",
        "hold-expired-tell-agent",
        "morning-agenda-slack",
        "notify-on-sync-failure",
        "invite-attendees-on-booking",
        "mirror-confirmed-events",
    }
    needs = {t["slug"]: t["needs"] for t in body["data"]}
    assert needs["agenda-before-client-calls"] == ["ntfy"] and needs["morning-agenda-slack"] == ["slack"]
    assert needs["invite-attendees-on-booking"] == ["smtp"] and needs["hold-expired-tell-agent"] == []
    one = api.get("/connect/v1/flow-templates/morning-agenda-slack").json()
    assert one == next(t for t in body["data"] if t["slug"] == "morning-agenda-slack")
    assert one["trigger"]["config"] == {"cron": "0 7 * * *", "timezone": "${timezone}"}
    missing = api.get("/connect/v1/flow-templates/make-coffee")
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "slug"

    cal = calendar(api)
    con = connect_ntfy(api, ntfy)
    inputs = {
        "agenda-before-client-calls": {"calendar_id": cal["id"], "topic": TOPIC},
        "hold-expired-tell-agent": {"agent_url": "https://agent.example/hooks/chronary"},
        "morning-agenda-slack": {"calendar_id": cal["id"], "channel": "C0GENERAL", "timezone": "Europe/Berlin"},
        "notify-on-sync-failure": {"topic": TOPIC},
        "invite-attendees-on-booking": {},
        "mirror-confirmed-events": {"table": "bookings"},
    }
    for template in TEMPLATES:
        made = clone(api, template.slug, inputs=inputs[template.slug], name=f"mine: {template.slug}")
        assert made["template"] == template.slug and made["name"] == f"mine: {template.slug}"
        assert made["status"] == "enabled" and made["trigger"]["triggerName"] == template.trigger["triggerName"]
        assert "${" not in str(made)  # every parameter was filled
        assert api.get(f"/connect/v1/flows/{made['id']}").json() == made
    flows = {f["template"]: f for f in api.get("/connect/v1/flows").json()["data"]}
    assert set(flows) == {t.slug for t in TEMPLATES}
    agenda = flows["agenda-before-client-calls"]
    assert agenda["trigger"]["config"] == {
        "minutes": 15,
        "calendarId": cal["id"],
        "condition": '("client" | lower) in (trigger.event.title | lower)',  # the keyword's default, a literal
    }
    assert agenda["steps"][0]["inputs"]["topic"] == TOPIC
    assert flows["morning-agenda-slack"]["trigger"]["config"] == {"cron": "0 7 * * *", "timezone": "Europe/Berlin"}
    assert flows["hold-expired-tell-agent"]["steps"][0]["url"] == "https://agent.example/hooks/chronary"

    # a connection named for a provider goes into its steps; a disabled clone stays disabled
    named = clone(api, "notify-on-sync-failure", inputs={"topic": TOPIC}, connections={"ntfy": con}, status="disabled")
    assert named["steps"][0]["connectionId"] == con and named["status"] == "disabled"
    assert named["name"] == next(t.name for t in TEMPLATES if t.slug == "notify-on-sync-failure")


def test_cloning_refuses_missing_unknown_and_bad_inputs(make_api: Any) -> None:
    api = make_api()
    cal = calendar(api)

    def refused(slug: str, **body: Any) -> dict[str, Any]:
        r = api.post(f"/connect/v1/flow-templates/{slug}/clone", json=body)
        assert r.status_code == 400, r.text
        return dict(r.json()["error"])

    error = refused("agenda-before-client-calls", inputs={"topic": TOPIC})
    assert error["param"] == "inputs.calendar_id" and "calendar" in error["message"].lower()
    assert refused("agenda-before-client-calls", inputs={"calendar_id": cal["id"]})["param"] == "inputs.topic"
    assert refused("morning-agenda-slack", inputs={"channel": "C1", "timezone": "UTC"})["param"] == "inputs.calendar_id"
    assert refused("hold-expired-tell-agent")["param"] == "inputs.agent_url"
    unknown = refused("notify-on-sync-failure", inputs={"topic": TOPIC, "colour": "red"})
    assert unknown["param"] == "inputs.colour"
    # what the inputs make is checked as any flow is, naming the field
    bad_zone = refused(
        "morning-agenda-slack", inputs={"calendar_id": cal["id"], "channel": "C1", "timezone": "Mars/Olympus"}
    )
    assert bad_zone["param"] == "trigger.config.cron" and "Mars/Olympus" in bad_zone["message"]
    bad_connection = refused("notify-on-sync-failure", inputs={"topic": TOPIC}, connections={"ntfy": "con_nope"})
    assert bad_connection["param"] == "steps[0].connectionId"
    assert api.post("/connect/v1/flow-templates/nope/clone", json={}).status_code == 404
    assert api.get("/connect/v1/flows").json()["total"] == 0  # nothing half-made


def test_an_input_inside_a_condition_is_data_never_code(make_api: Any, workers: Any, ntfy: FakeNtfy) -> None:
    """A keyword with quotes, backslashes or braces is matched as the text it is (a quote used to
    break the condition, and `x' or 'y` to make it match every event)."""
    clock = ManualClock(at("2026-01-05T08:00:00Z"))
    api = make_api(clock=clock)
    w = workers(api, clock)
    cal = calendar(api)
    connect_ntfy(api, ntfy)
    keywords = ["O'Brien", "x' or 'y", 'say "hi" \\ {{ 7 * 7 }}']
    made = [
        clone(api, "agenda-before-client-calls", inputs={"calendar_id": cal["id"], "topic": TOPIC, "keyword": k})
        for k in keywords
    ]
    obrien = api.event(cal["id"], "2026-01-05T09:00:00Z", "2026-01-05T09:30:00Z", title="Call with o'brien")
    braces = api.event(cal["id"], "2026-01-05T09:00:00Z", "2026-01-05T09:30:00Z", title='Say "HI" \\ {{ 7 * 7 }}!')
    api.event(cal["id"], "2026-01-05T09:00:00Z", "2026-01-05T09:30:00Z", title="Y not")
    w.tick("2026-01-05T08:45:00Z")
    got = [[r["triggerData"]["event"]["id"] for r in succeeded(api, f["id"])] for f in made]
    assert got == [[obrien["id"]], [], [braces["id"]]]
    assert sorted(m["title"] for m in ntfy.messages) == sorted(e["title"] + " in 15 minutes" for e in (obrien, braces))


# --- end to end ----------------------------------------------------------------------------------


def test_agenda_before_client_calls_pushes_the_description_fifteen_minutes_before(
    make_api: Any, workers: Any, ntfy: FakeNtfy
) -> None:
    clock = ManualClock(at("2026-01-05T08:00:00Z"))
    api = make_api(clock=clock)
    w = workers(api, clock)
    cal = calendar(api, timezone="Europe/Berlin")
    other = api.calendar(api.agent("Bob")["id"], name="Bob's")
    connect_ntfy(api, ntfy)
    made = clone(api, "agenda-before-client-calls", inputs={"calendar_id": cal["id"], "topic": TOPIC})
    call = api.event(
        cal["id"],
        "2026-01-05T10:00:00+01:00",
        "2026-01-05T10:30:00+01:00",
        title="Client call: ACME",
        description="1. Renewal\n2. Pricing",
    )
    bare = api.event(cal["id"], "2026-01-05T11:00:00+01:00", "2026-01-05T11:30:00+01:00", title="CLIENT sync")
    api.event(cal["id"], "2026-01-05T10:00:00+01:00", "2026-01-05T10:30:00+01:00", title="Team standup")
    api.event(other["id"], "2026-01-05T10:00:00+01:00", "2026-01-05T10:30:00+01:00", title="Client call (Bob)")

    for when in ("2026-01-05T08:30:00Z", "2026-01-05T08:44:00Z", "2026-01-05T08:44:59Z"):
        w.tick(when)
    assert ntfy.messages == []
    w.tick("2026-01-05T08:45:00Z")  # 09:45 in Berlin, 15 minutes before the call
    (pushed,) = ntfy.messages
    assert pushed["topic"] == TOPIC and pushed["title"] == "Client call: ACME in 15 minutes"
    assert pushed["message"] == "1. Renewal\n2. Pricing"
    assert (pushed["priority"], pushed["tags"]) == (4, ["calendar"])
    for when in ("2026-01-05T08:45:01Z", "2026-01-05T09:00:00Z", "2026-01-05T09:44:59Z"):
        w.tick(when)
    assert len(ntfy.messages) == 1
    w.tick("2026-01-05T09:45:00Z")
    w.tick("2026-01-05T10:30:00Z")
    assert [(m["title"], m["message"]) for m in ntfy.messages] == [
        ("Client call: ACME in 15 minutes", "1. Renewal\n2. Pricing"),
        ("CLIENT sync in 15 minutes", "No agenda yet."),  # no description
    ]
    runs = succeeded(api, made["id"])
    assert [r["triggerData"]["event"]["id"] for r in runs] == [call["id"], bare["id"]]
    steps = api.get(f"/connect/v1/flows/{made['id']}/executions/{runs[0]['id']}/steps").json()["data"]
    assert [(s["stepId"], s["status"]) for s in steps] == [("push", "succeeded")]
    assert steps[0]["input"]["message"] == "1. Renewal\n2. Pricing" and steps[0]["output"]["topic"] == TOPIC


def test_morning_agenda_is_posted_to_slack_at_seven_local_time(make_api: Any, workers: Any) -> None:
    with FakeSlack() as slack:
        slack.add_token(SLACK_TOKEN, team="Acme")
        slack.add_channel("C0GENERAL", "general")
        clock = ManualClock(at("2026-03-27T12:00:00Z"))
        api = make_api(clock=clock, slack_api_url=slack.url)
        w = workers(api, clock)
        con = api.post(
            "/connect/v1/providers/slack/connect", json={"credentials": {"apiKey": SLACK_TOKEN, "apiSecret": SIGNING}}
        )
        assert con.status_code == 201, con.text
        cal = calendar(api, timezone="Europe/Berlin")
        made = clone(
            api,
            "morning-agenda-slack",
            inputs={"calendar_id": cal["id"], "channel": "C0GENERAL", "timezone": "Europe/Berlin"},
        )
        for start, end, title in (
            ("2026-03-27T18:00:00+01:00", "2026-03-27T19:00:00+01:00", "Yesterday's dinner"),
            ("2026-03-28T14:00:00+01:00", "2026-03-28T15:00:00+01:00", "Client call"),
            ("2026-03-28T08:30:00+01:00", "2026-03-28T08:45:00+01:00", "Standup"),
            ("2026-03-28T00:00:00+01:00", "2026-03-28T00:30:00+01:00", "Midnight deploy"),
            ("2026-03-29T00:00:00+01:00", "2026-03-29T00:30:00+01:00", "Tomorrow's deploy"),
            ("2026-03-30T09:00:00+02:00", "2026-03-30T09:30:00+02:00", "Monday standup"),
        ):
            api.event(cal["id"], start, end, title=title)

        w.tick("2026-03-28T05:59:59Z")
        assert slack.messages == []
        w.tick("2026-03-28T06:00:00Z")  # 07:00 CET
        (posted,) = slack.messages
        assert posted["channel"] == "C0GENERAL"
        assert posted["text"] == "*Today, 2026-03-28*\n• 00:00 Midnight deploy\n• 08:30 Standup\n• 14:00 Client call\n"
        w.tick("2026-03-28T06:00:01Z")
        w.tick("2026-03-28T12:00:00Z")
        w.tick("2026-03-29T04:59:59Z")
        assert len(slack.messages) == 1
        w.tick("2026-03-29T05:00:00Z")  # 07:00 CEST: the clocks went forward overnight
        w.tick("2026-03-30T05:00:00Z")
        assert [m["text"] for m in slack.messages[1:]] == [
            "*Today, 2026-03-29*\n• 00:00 Tomorrow's deploy\n",
            "*Today, 2026-03-30*\n• 09:00 Monday standup\n",
        ]
        w.tick("2026-03-31T05:00:00Z")
        assert slack.messages[-1]["text"] == "*Today, 2026-03-31*\nNothing on the calendar today."
        runs = succeeded(api, made["id"])
        assert [r["triggerData"]["local_date"] for r in runs] == ["2026-03-28", "2026-03-29", "2026-03-30", "2026-03-31"]
        steps = api.get(f"/connect/v1/flows/{made['id']}/executions/{runs[0]['id']}/steps").json()["data"]
        assert [(s["stepId"], s["status"]) for s in steps] == [("today", "succeeded"), ("post", "succeeded")]
        assert steps[0]["input"] == {
            "calendar_id": cal["id"],
            "start_after": "2026-03-27T23:00:00.000Z",
            "start_before": "2026-03-28T23:00:00.000Z",
            "limit": 100,
        }
        assert [e["title"] for e in steps[0]["output"]["data"]] == ["Midnight deploy", "Standup", "Client call"]


def test_invitations_are_mailed_to_the_attendees_of_a_booked_event(make_api: Any, workers: Any) -> None:
    with FakeSMTP() as smtp:
        clock = ManualClock(at("2026-01-05T09:00:00Z"))
        api = make_api(clock=clock)
        w = workers(api, clock)
        creds = {**smtp.credentials(), "fromAddress": "Ada <calendar@example.com>"}
        creds.pop("from_address")
        con = api.post("/connect/v1/providers/smtp/connect", json={"credentials": creds})
        assert con.status_code == 201, con.text
        made = clone(api, "invite-attendees-on-booking")
        cal = calendar(api, timezone="Europe/Berlin")
        booked = api.event(
            cal["id"],
            "2026-01-08T10:00:00+01:00",
            "2026-01-08T11:00:00+01:00",
            title="Design review",
            attendees=[{"email": "ben@example.com", "name": "Ben"}, {"email": "cleo@example.com"}],
        )
        api.event(cal["id"], "2026-01-08T12:00:00+01:00", "2026-01-08T13:00:00+01:00", title="Focus time")
        w.tick()
        w.tick("2026-01-05T09:00:01Z")
        (mail,) = smtp.received
        assert sorted(mail.rcpt_tos) == ["ben@example.com", "cleo@example.com"]
        part = next(p for p in mail.message.walk() if p.get_content_type() == "text/calendar")
        assert part.get_param("method") == "REQUEST"
        text = part.get_content()
        assert booked["ical_uid"] in text and "Design review" in text
        (run,) = succeeded(api, made["id"])
        assert run["triggerData"]["type"] == "event.created" and run["triggerData"]["event"]["id"] == booked["id"]
        steps = api.get(f"/connect/v1/flows/{made['id']}/executions/{run['id']}/steps").json()["data"]
        assert steps[0]["input"]["to"] == ["ben@example.com", "cleo@example.com"]
        assert steps[0]["output"]["uid"] == booked["ical_uid"] and steps[0]["output"]["method"] == "REQUEST"


class BrokenFeed(FakeServer):
    """A feed URL that answers 404 to everything."""


def test_a_failing_subscription_is_pushed(make_api: Any, workers: Any, ntfy: FakeNtfy) -> None:
    with BrokenFeed() as feed:
        clock = ManualClock(at("2026-01-05T09:00:00Z"))
        api = make_api(clock=clock)
        w = workers(api, clock)
        connect_ntfy(api, ntfy)
        made = clone(api, "notify-on-sync-failure", inputs={"topic": TOPIC})
        agent = api.agent("Ada")
        cal = api.calendar(agent["id"])
        sub = api.post(
            f"/v1/agents/{agent['id']}/ical-subscriptions",
            json={"calendar_id": cal["id"], "url": feed.url + "/team.ics"},
        )
        assert sub.status_code == 201, sub.text

        def sweep() -> int:
            async def go() -> int:
                return await SubscriptionWorker(api.runtime).sweep()

            return int(asyncio.run_coroutine_threadsafe(go(), w.loop).result(30))

        assert sweep() == 1
        w.tick()
        failed = api.get(f"/v1/ical-subscriptions/{sub.json()['id']}").json()
        assert failed["status"] == "error" and "404" in failed["last_error"]
        (pushed,) = ntfy.messages
        assert pushed["topic"] == TOPIC and pushed["title"] == "Subscription failing"
        assert pushed["message"] == failed["last_error"]
        assert (pushed["priority"], pushed["tags"]) == (4, ["warning"])
        (run,) = succeeded(api, made["id"])
        assert run["triggerData"]["type"] == "ical_subscription.failed"
        assert run["triggerData"]["object"]["id"] == sub.json()["id"]

        # a connection's error (its change carries the connection, with status_reason): a test run
        connection = {"object": "connection", "id": "con_1", "status": "error", "status_reason": "invalid_grant"}
        r = api.post(
            f"/connect/v1/flows/{made['id']}/test",
            json={"triggerData": {"type": "connection.error", "object": connection}},
        )
        assert r.status_code == 200 and r.json()["status"] == "succeeded", r.text
        assert (ntfy.messages[-1]["title"], ntfy.messages[-1]["message"]) == ("Connection failing", "invalid_grant")


def test_an_expired_hold_is_posted_to_the_agent(make_api: Any, workers: Any) -> None:
    receiver = Receiver().start()
    try:
        clock = ManualClock(at("2026-01-05T09:00:00Z"))
        api = make_api(clock=clock)
        w = workers(api, clock)
        made = clone(api, "hold-expired-tell-agent", inputs={"agent_url": receiver.url})
        cal = calendar(api)
        hold = api.event(cal["id"], "2026-01-06T09:00:00Z", "2026-01-06T10:00:00Z", title="Call with Ben", status="hold")
        assert hold["hold_expires_at"] == "2026-01-05T09:15:00Z"

        def expire() -> list[str]:
            async def go() -> list[str]:
                return await HoldExpiryWorker(api.runtime).sweep()

            return list(asyncio.run_coroutine_threadsafe(go(), w.loop).result(30))

        clock.set(at("2026-01-05T09:14:59Z"))
        assert expire() == []
        w.tick()
        assert receiver.requests == []
        clock.set(at("2026-01-05T09:15:00Z"))
        assert expire() == [hold["id"]]
        w.tick()
        w.tick("2026-01-05T09:15:01Z")
        (got,) = receiver.requests
        assert got.json["type"] == "hold_expired" and got.json["agent_id"] == hold["agent_id"]
        assert got.json["message"] == "Your hold 'Call with Ben' expired unconfirmed; the slot is free again."
        assert got.json["event"]["id"] == hold["id"] and got.json["event"]["title"] == "Call with Ben"
        (run,) = succeeded(api, made["id"])
        assert run["triggerData"]["type"] == "event.hold_expired"
        assert got.headers["Idempotency-Key"] == f"{run['id']}/0"
    finally:
        receiver.close()
