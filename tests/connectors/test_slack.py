"""The Slack connector against FakeSlack on 127.0.0.1 (auth.test, chat.postMessage and Slack's
ok:false errors), and its verification of signed Events API deliveries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from chronary.config import Settings
from chronary.connectors import load
from chronary.connectors.base import BadCredentials, BadInput, BadSignature, ConnectorError, Inbound
from chronary.connectors.slack import Connector
from tests.connectors._support import run_connector
from tests.fakes.slack import FakeSlack, delivery, event_callback, sign

TOKEN = "xoxb-1111-2222-abcdefABCDEF"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
T = TypeVar("T")


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_token(TOKEN, team="Acme", user="chronary")
        fake.add_channel("C0123456789", "general")
        fake.add_channel("C0OUTSIDE01", "random", member=False)
        fake.add_channel("C0ARCHIVE01", "old", archived=True)
        yield fake


@pytest.fixture
def settings(slack: FakeSlack, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, slack_api_url=slack.url)


def call(settings: Settings, credentials: dict[str, str], fn: Callable[[Connector], Awaitable[T]]) -> T:
    return run_connector(Connector, settings, credentials, fn)


def post(settings: Settings, token: str = TOKEN, **inputs: Any) -> dict[str, Any]:
    return call(settings, {"bot_token": token}, lambda c: c.run("post_message", inputs))


def offline(tmp_path: Path, **credentials: str) -> Connector:
    return Connector(credentials, Settings(data_dir=tmp_path), httpx.AsyncClient())


def test_the_registry_loads_this_connector() -> None:
    assert load("slack") is Connector


def test_target_is_the_configured_api_with_the_bot_token(settings: Settings, slack: FakeSlack) -> None:
    target = Connector({"bot_token": TOKEN}, settings, httpx.AsyncClient()).target()
    assert (target.base_url, dict(target.headers)) == (slack.url, {"Authorization": f"Bearer {TOKEN}"})
    assert offline(settings.data_dir, bot_token=TOKEN).target().base_url == "https://slack.com/api"


def test_check_answers_team_and_user(slack: FakeSlack, settings: Settings) -> None:
    assert call(settings, {"bot_token": TOKEN}, lambda c: c.check()) == "Acme (chronary)"
    (seen,) = slack.requests
    assert (seen.method, seen.path, seen.header("authorization")) == ("POST", "/auth.test", f"Bearer {TOKEN}")


@pytest.mark.parametrize("state", ["unknown", "revoked", "inactive"])
def test_check_refuses_bad_tokens(slack: FakeSlack, settings: Settings, state: str) -> None:
    token = "xoxb-9999-bad-token"
    if state != "unknown":
        entry = slack.add_token(token)
        if state == "revoked":
            slack.revoke(token)
        else:
            entry.inactive = True
    with pytest.raises(BadCredentials) as caught:
        call(settings, {"bot_token": token}, lambda c: c.check())
    expected = {"unknown": "invalid_auth", "revoked": "token_revoked", "inactive": "account_inactive"}[state]
    assert expected in caught.value.reason
    assert caught.value.field == "bot_token"
    assert token not in caught.value.reason


def test_a_missing_token_is_refused_before_any_request(slack: FakeSlack, settings: Settings) -> None:
    with pytest.raises(BadCredentials) as caught:
        call(settings, {"signing_secret": SECRET}, lambda c: c.check())
    assert caught.value.field == "bot_token"
    assert slack.requests == []


def test_post_message_sends_json_with_charset_and_answers_slack(slack: FakeSlack, settings: Settings) -> None:
    answer = post(settings, channel="C0123456789", text="Design review moved to *10:00*", thread_ts="1712345678.123456")
    (seen,) = slack.requests
    assert (seen.method, seen.path) == ("POST", "/chat.postMessage")
    assert seen.header("content-type") == "application/json; charset=utf-8"
    assert seen.header("authorization") == f"Bearer {TOKEN}"
    assert seen.json() == {
        "channel": "C0123456789",
        "text": "Design review moved to *10:00*",
        "thread_ts": "1712345678.123456",
    }
    assert answer["ok"] is True and answer["channel"] == "C0123456789"
    assert answer["ts"] == slack.messages[0]["ts"]
    assert answer["message"]["text"] == "Design review moved to *10:00*"
    assert "warning" not in answer  # no missing_charset warning


def test_post_message_by_name_with_blocks(slack: FakeSlack, settings: Settings) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Moved*"}}]
    answer = post(settings, channel="#general", blocks=blocks)
    assert answer["channel"] == "C0123456789"
    assert slack.requests[0].json() == {"channel": "#general", "blocks": blocks}
    assert slack.messages[0]["blocks"] == blocks


@pytest.mark.parametrize(
    ("inputs", "error", "field"),
    [
        ({"channel": "C0NOWHERE01", "text": "x"}, "channel_not_found", "channel"),
        ({"channel": "C0OUTSIDE01", "text": "x"}, "not_in_channel", "channel"),
        ({"channel": "C0ARCHIVE01", "text": "x"}, "is_archived", "channel"),
        ({"channel": "C0123456789", "text": "x" * 40_001}, "msg_too_long", "text"),
        ({"channel": "C0123456789", "blocks": [{"text": "no type"}]}, "invalid_blocks", "blocks"),
        ({"channel": "C0123456789"}, "no_text", "text"),
    ],
)
def test_input_errors_name_the_field(
    slack: FakeSlack, settings: Settings, inputs: dict[str, Any], error: str, field: str
) -> None:
    with pytest.raises(BadInput) as caught:
        post(settings, **inputs)
    assert caught.value.field == field
    assert error in caught.value.reason
    assert TOKEN not in caught.value.reason
    assert slack.messages == []


def test_a_revoked_token_at_run_time_is_a_401(slack: FakeSlack, settings: Settings) -> None:
    slack.revoke(TOKEN)
    with pytest.raises(BadCredentials) as caught:
        post(settings, channel="C0123456789", text="x")
    assert (caught.value.status, caught.value.field) == (401, "bot_token")
    assert TOKEN not in caught.value.reason


def test_a_missing_scope_is_a_403_naming_the_scope(slack: FakeSlack, settings: Settings) -> None:
    slack.add_token("xoxb-read-only", scopes=("channels:read",))
    with pytest.raises(ConnectorError) as caught:
        post(settings, token="xoxb-read-only", channel="C0123456789", text="x")
    assert caught.value.status == 403
    assert "missing_scope" in caught.value.reason and "chat:write" in caught.value.reason
    assert not isinstance(caught.value, BadInput | BadCredentials)


def test_http_429_carries_retry_after(slack: FakeSlack, settings: Settings) -> None:
    slack.ratelimit_next(retry_after=12)
    with pytest.raises(ConnectorError) as caught:
        post(settings, channel="C0123456789", text="x")
    assert (caught.value.status, caught.value.retry_after) == (429, 12.0)
    assert slack.messages == []
    assert post(settings, channel="C0123456789", text="again")["ok"] is True


def test_an_ok_false_ratelimited_without_header_gets_a_default_wait(slack: FakeSlack, settings: Settings) -> None:
    slack.fail_next(200, {"ok": False, "error": "ratelimited"})
    with pytest.raises(ConnectorError) as caught:
        post(settings, channel="C0123456789", text="x")
    assert caught.value.retry_after == 30.0


def test_a_server_error_is_a_connector_error(slack: FakeSlack, settings: Settings) -> None:
    slack.fail_next(503)
    with pytest.raises(ConnectorError) as caught:
        post(settings, channel="C0123456789", text="x")
    assert caught.value.status == 503
    assert caught.value.retry_after is None


def test_an_unknown_error_code_is_passed_on_safely(slack: FakeSlack, settings: Settings) -> None:
    slack.fail_next(200, {"ok": False, "error": f"weird <{TOKEN}>"})
    with pytest.raises(ConnectorError) as caught:
        post(settings, channel="C0123456789", text="x")
    assert "unknown_error" in caught.value.reason and TOKEN not in caught.value.reason


# -- Events API ------------------------------------------------------------------------------


def receive(tmp_path: Path, headers: dict[str, str], body: bytes, now: datetime, secret: str | None = SECRET) -> Inbound:
    creds = {"bot_token": TOKEN} | ({"signing_secret": secret} if secret else {})
    return offline(tmp_path, **creds).inbound(headers, body, now)


@pytest.mark.parametrize("kind", ["message", "app_mention", "reaction_added"])
def test_a_signed_event_callback_is_the_event(tmp_path: Path, kind: str) -> None:
    now = datetime.now(UTC)
    payload = event_callback({"type": kind, "user": "U0ANN00001", "text": "hi", "channel": "C0123456789"})
    headers, body = delivery(SECRET, payload, int(now.timestamp()))
    got = receive(tmp_path, headers, body, now)
    assert got.event == kind
    assert got.payload == payload
    assert got.reply is None


def test_url_verification_is_answered_with_the_challenge(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    payload = {"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}
    headers, body = delivery(SECRET, payload, int(now.timestamp()))
    got = receive(tmp_path, headers, body, now)
    assert got.event is None
    assert got.reply == {"challenge": payload["challenge"]}


def test_other_envelopes_are_no_event(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    headers, body = delivery(SECRET, {"type": "app_rate_limited", "minute_rate_limited": 1}, int(now.timestamp()))
    assert receive(tmp_path, headers, body, now).event is None


def test_a_wrong_secret_or_a_changed_body_is_refused(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    payload = event_callback({"type": "message", "text": "hi"})
    headers, body = delivery("some-other-secret", payload, int(now.timestamp()))
    with pytest.raises(BadSignature):
        receive(tmp_path, headers, body, now)
    headers, body = delivery(SECRET, payload, int(now.timestamp()))
    with pytest.raises(BadSignature):
        receive(tmp_path, headers, body.replace(b"hi", b"ho"), now)
    with pytest.raises(BadSignature):
        receive(tmp_path, {**headers, "x-slack-signature": "v0=" + "0" * 64}, body, now)


@pytest.mark.parametrize("skew", [timedelta(minutes=5, seconds=1), timedelta(minutes=-6), timedelta(days=1)])
def test_a_stale_or_future_timestamp_is_refused_even_when_signed(tmp_path: Path, skew: timedelta) -> None:
    now = datetime.now(UTC)
    headers, body = delivery(SECRET, event_callback({"type": "message"}), int((now - skew).timestamp()))
    with pytest.raises(BadSignature) as caught:
        receive(tmp_path, headers, body, now)
    assert "five minutes" in caught.value.reason


def test_a_timestamp_just_within_five_minutes_is_accepted(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    headers, body = delivery(SECRET, event_callback({"type": "message"}), int(now.timestamp()) - 299)
    assert receive(tmp_path, headers, body, now).event == "message"


def test_missing_signature_headers_or_secret_are_refused(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    headers, body = delivery(SECRET, event_callback({"type": "message"}), int(now.timestamp()))
    for dropped in ("x-slack-signature", "x-slack-request-timestamp"):
        with pytest.raises(BadSignature):
            receive(tmp_path, {k: v for k, v in headers.items() if k != dropped}, body, now)
    with pytest.raises(BadSignature) as caught:
        receive(tmp_path, headers, body, now, secret=None)
    assert "signing secret" in caught.value.reason
    with pytest.raises(BadSignature):
        receive(tmp_path, {**headers, "x-slack-request-timestamp": "12e3"}, body, now)


def test_signed_but_not_json_is_bad_input(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    body = b"payload=%7B%7D"
    with pytest.raises(BadInput):
        receive(tmp_path, sign(SECRET, int(now.timestamp()), body), body, now)


def test_the_fake_signature_matches_slacks_documented_example(tmp_path: Path) -> None:
    """Slack's docs example: secret 8f74…85a5, timestamp 1531420618 and this body give v0=a2114…b503."""
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
        b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    headers = sign(SECRET, 1531420618, body)
    assert headers["x-slack-signature"] == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    # and the connector accepts it at that time (it is not JSON, so it is then refused as input)
    with pytest.raises(BadInput):
        offline(tmp_path, bot_token=TOKEN, signing_secret=SECRET).inbound(
            headers, body, datetime.fromtimestamp(1531420618 + 10, UTC)
        )
