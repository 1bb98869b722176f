"""ntfy, Slack and Discord through `/connect/v1` on a real server (uvicorn on 127.0.0.1) against
their local fakes: connect with good and bad credentials, run each action, Slack's signed
Events API deliveries relayed to a subscription, and no token in any answer."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.fakes import slack as slack_fake
from tests.fakes.discord import FakeDiscord
from tests.fakes.ntfy import FakeNtfy
from tests.fakes.slack import FakeSlack
from tests.webhooks.receiver import Receiver

SLACK_TOKEN = "xoxb-1111-2222-abcdefghijkl"
SIGNING = "8f742231b10e8888abcd99yyyzzz85a5"
DISCORD_TOKEN = "MTAx.discord-bot-token.secretpart"


@pytest.fixture
def fakes() -> Any:
    with FakeNtfy() as ntfy, FakeSlack() as slack, FakeDiscord() as discord:
        yield ntfy, slack, discord


@pytest.fixture
def server(live_server: Any, fakes: Any) -> Any:
    _, slack, discord = fakes
    return live_server(workers=True, slack_api_url=slack.url, discord_api_url=discord.api_url)


def test_ntfy_connects_and_publishes(server: Any, fakes: Any) -> None:
    ntfy, _, _ = fakes
    token = ntfy.add_token("ada")
    ntfy.protect("chronary-alerts", token)
    c = server.client()
    bad = c.post("/connect/v1/providers/ntfy/connect", json={"credentials": {"baseUrl": ntfy.url, "apiKey": "tk_wrong"}})
    assert bad.status_code == 400 and bad.json()["error"]["param"].startswith("credentials"), bad.text
    assert c.get("/connect/v1/providers/ntfy/status").json()["connections"] == []
    con = c.post("/connect/v1/providers/ntfy/connect", json={"credentials": {"baseUrl": ntfy.url, "apiKey": token}})
    assert con.status_code == 201, con.text
    assert con.json()["account"] == "ada" and token not in con.text
    r = c.post(
        "/connect/v1/providers/ntfy/actions/publish",
        json={"topic": "chronary-alerts", "message": "Design review in 10 minutes", "priority": 4, "tags": ["calendar"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["output"]["topic"] == "chronary-alerts" and r.json()["output"]["id"]
    (sent,) = ntfy.messages
    assert sent["message"] == "Design review in 10 minutes" and sent["priority"] == 4
    bad_topic = c.post("/connect/v1/providers/ntfy/actions/publish", json={"topic": "no spaces", "message": "x"})
    assert bad_topic.status_code == 400 and bad_topic.json()["error"]["param"] == "topic"
    ntfy.limit_next(retry_after=7)
    limited = c.post("/connect/v1/providers/ntfy/actions/publish", json={"topic": "chronary-alerts", "message": "x"})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7", limited.text


def test_slack_connects_posts_and_relays_signed_events(server: Any, fakes: Any) -> None:
    _, slack, _ = fakes
    slack.add_token(SLACK_TOKEN, team="Acme")
    slack.add_channel("C0GENERAL", "general")
    c = server.client()
    bad = c.post("/connect/v1/providers/slack/connect", json={"credentials": {"apiKey": "xoxb-nope"}})
    assert bad.status_code == 400 and "refused" in bad.json()["error"]["message"]
    con = c.post("/connect/v1/providers/slack/connect", json={"credentials": {"apiKey": SLACK_TOKEN, "apiSecret": SIGNING}})
    assert con.status_code == 201, con.text
    body = con.json()
    assert body["account"].startswith("Acme") and body["credentialFields"] == ["botToken", "signingSecret"]
    assert SLACK_TOKEN not in con.text and SIGNING not in con.text
    posted = c.post("/connect/v1/providers/slack/actions/post_message", json={"channel": "C0GENERAL", "text": "Hi *all*"})
    assert posted.status_code == 200, posted.text
    assert posted.json()["output"]["channel"] == "C0GENERAL" and slack.messages[-1]["text"] == "Hi *all*"
    nowhere = c.post("/connect/v1/providers/slack/actions/post_message", json={"channel": "C0NOPE", "text": "x"})
    assert nowhere.status_code == 400 and nowhere.json()["error"]["param"] == "channel"
    neither = c.post("/connect/v1/providers/slack/actions/post_message", json={"channel": "C0GENERAL"})
    assert neither.status_code == 400

    receiver = Receiver().start()
    try:
        sub = c.post("/connect/v1/providers/slack/webhooks", json={"url": receiver.url, "events": ["app_mention"]})
        assert sub.status_code == 201 and sub.json()["events"] == ["slack.app_mention"], sub.text
        inbound = body["inboundUrl"]
        anonymous = httpx.Client(timeout=10)
        challenge = {"type": "url_verification", "token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3"}
        headers, raw = slack_fake.delivery(SIGNING, challenge)
        r = anonymous.post(inbound, content=raw, headers=headers)
        assert r.status_code == 200 and r.json() == {"challenge": challenge["challenge"]}, r.text
        event = slack_fake.event_callback({"type": "app_mention", "text": "<@U0BOT> standup?", "user": "U1", "ts": "1.2"})
        headers, raw = slack_fake.delivery(SIGNING, event)
        assert anonymous.post(inbound, content=raw, headers=headers).status_code == 200
        forged = {**headers, "x-slack-signature": "v0=" + "0" * 64}
        assert anonymous.post(inbound, content=raw, headers=forged).status_code == 401
        stale_headers, stale = slack_fake.delivery(SIGNING, event, timestamp=int(time.time()) - 3600)
        assert anonymous.post(inbound, content=stale, headers=stale_headers).status_code == 401
        (got,) = receiver.wait_for(1, timeout=20)
        assert got.json["type"] == "slack.app_mention"
        assert got.json["data"]["object"]["payload"]["event"]["text"] == "<@U0BOT> standup?"
    finally:
        receiver.close()


def test_discord_connects_and_sends(server: Any, fakes: Any) -> None:
    _, _, discord = fakes
    bot = discord.add_bot(DISCORD_TOKEN, username="chronary-bot")
    discord.add_channel("123456789012345678", send=(DISCORD_TOKEN,))
    c = server.client()
    assert c.post("/connect/v1/providers/discord/connect", json={"credentials": {"apiKey": "nope"}}).status_code == 400
    con = c.post("/connect/v1/providers/discord/connect", json={"credentials": {"botToken": DISCORD_TOKEN}})
    assert con.status_code == 201 and con.json()["account"] == bot["username"], con.text
    r = c.post(
        "/connect/v1/providers/discord/actions/send_message",
        json={"channel_id": "123456789012345678", "content": "Standup in 5"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["output"]["content"] == "Standup in 5" and discord.messages[-1]["content"] == "Standup in 5"
    proxied = c.post("/connect/v1/proxy/discord", json={"method": "GET", "path": "/channels/123456789012345678"})
    assert proxied.status_code == 200 and proxied.json()["status"] in (200, 404)
    everything = json.dumps(c.get("/connect/v1/proxy-log").json())
    assert DISCORD_TOKEN not in everything and "123456789012345678" in everything
