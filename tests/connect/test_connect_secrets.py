"""Credentials never reach a log line, an answer or the database file in plaintext, whatever
fails: refused credentials, provider errors, forged inbound deliveries."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from chronary.cli import configure_logging
from tests.fakes import slack as slack_fake
from tests.fakes.slack import FakeSlack

TOKEN = "xoxb-9999-8888-supersecretvalue"
WRONG = "xoxb-0000-0000-wrongsecretvalue"
SIGNING = "signing-secret-0123456789abcdef"


@pytest.fixture
def server_logging() -> Any:
    levels = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    configure_logging("debug")  # what `chronary serve` sets up: client libraries never log URLs
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_no_secret_in_logs_answers_or_the_database(
    make_api: Any, data_dir: Path, caplog: pytest.LogCaptureFixture, server_logging: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeSlack() as slack:
        slack.add_token(TOKEN)
        slack.add_channel("C0GENERAL", "general")
        api = make_api(slack_api_url=slack.url)
        answers = []
        answers.append(api.post("/connect/v1/providers/slack/connect", json={"credentials": {"apiKey": WRONG}}))
        con = api.post("/connect/v1/providers/slack/connect", json={"credentials": {"apiKey": TOKEN, "apiSecret": SIGNING}})
        answers.append(con)
        answers.append(api.post("/connect/v1/providers/slack/actions/post_message", json={"channel": "C0NONE", "text": "x"}))
        slack.revoke(TOKEN)
        refused = api.post("/connect/v1/providers/slack/actions/post_message", json={"channel": "C0GENERAL", "text": "x"})
        answers.append(refused)
        answers.append(api.post("/connect/v1/proxy/slack", json={"method": "POST", "path": "/auth.test"}))
        answers.append(api.get("/connect/v1/providers/slack/status", params={"check": "true"}))
        headers, raw = slack_fake.delivery("not-the-secret", slack_fake.event_callback({"type": "message", "text": "hi"}))
        inbound = con.json()["inboundUrl"].removeprefix("http://127.0.0.1:8765")
        answers.append(api.client.post(inbound, content=raw, headers=headers))
    assert answers[0].status_code == 400 and con.status_code == 201 and refused.status_code == 502
    assert answers[-2].json()["connections"][0]["health"]["status"] == "failing"
    assert answers[-1].status_code == 401
    token_part = inbound.rsplit("/", 1)[1]  # shown to the org in inboundUrl, never logged
    for secret in (TOKEN, WRONG, SIGNING):
        assert all(secret not in a.text for a in answers), secret
    for secret in (TOKEN, WRONG, SIGNING, token_part):
        assert secret not in caplog.text, secret
    raw_db = b"".join(p.read_bytes() for p in data_dir.glob("chronary.db*"))
    for secret in (TOKEN, SIGNING, token_part):
        assert secret.encode() not in raw_db, secret
