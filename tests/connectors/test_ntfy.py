"""The ntfy connector against FakeNtfy on 127.0.0.1: the credential check, JSON publishing, and
ntfy's errors (401 unknown token, 403 protected topic, 400 bad input, 429 rate limit)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from chronary.config import Settings
from chronary.connectors import load
from chronary.connectors.base import BadCredentials, BadInput, ConnectorError
from chronary.connectors.ntfy import Connector
from tests.connectors._support import run_connector
from tests.fakes.ntfy import FakeNtfy

T = TypeVar("T")


@pytest.fixture
def ntfy() -> Iterator[FakeNtfy]:
    with FakeNtfy() as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def call(settings: Settings, credentials: dict[str, str], fn: Callable[[Connector], Awaitable[T]]) -> T:
    return run_connector(Connector, settings, credentials, fn)


def publish(settings: Settings, credentials: dict[str, str], **inputs: Any) -> dict[str, Any]:
    return call(settings, credentials, lambda c: c.run("publish", inputs))


def test_the_registry_loads_this_connector() -> None:
    assert load("ntfy") is Connector


def test_target_defaults_to_ntfy_sh_and_adds_the_token(settings: Settings) -> None:
    anonymous = Connector({}, settings, httpx.AsyncClient()).target()
    assert (anonymous.base_url, dict(anonymous.headers)) == ("https://ntfy.sh", {})
    with_token = Connector({"base_url": "https://ntfy.example.com", "access_token": "tk_abc"}, settings, httpx.AsyncClient())
    assert dict(with_token.target().headers) == {"Authorization": "Bearer tk_abc"}
    assert with_token.target().base_url == "https://ntfy.example.com"


def test_check_without_a_token_asks_the_health_endpoint(ntfy: FakeNtfy, settings: Settings) -> None:
    assert call(settings, {"base_url": ntfy.url}, lambda c: c.check()) is None
    (seen,) = ntfy.requests
    assert (seen.method, seen.path, seen.header("authorization")) == ("GET", "/v1/health", None)


def test_check_fails_when_the_server_is_unhealthy(ntfy: FakeNtfy, settings: Settings) -> None:
    ntfy.healthy = False
    with pytest.raises(ConnectorError) as caught:
        call(settings, {"base_url": ntfy.url}, lambda c: c.check())
    assert "not healthy" in caught.value.reason
    assert not isinstance(caught.value, BadCredentials)


def test_check_with_a_token_answers_the_username(ntfy: FakeNtfy, settings: Settings) -> None:
    token = ntfy.add_token("phil")
    assert call(settings, {"base_url": ntfy.url, "access_token": token}, lambda c: c.check()) == "phil"
    (seen,) = ntfy.requests
    assert (seen.path, seen.header("authorization")) == ("/v1/account", f"Bearer {token}")


def test_check_with_an_unknown_token_is_bad_credentials(ntfy: FakeNtfy, settings: Settings) -> None:
    token = "tk_" + "x" * 29
    with pytest.raises(BadCredentials) as caught:
        call(settings, {"base_url": ntfy.url, "access_token": token}, lambda c: c.check())
    assert (caught.value.field, caught.value.status) == ("access_token", 401)
    assert token not in caught.value.reason


def test_publish_sends_ntfy_json_and_answers_the_message(ntfy: FakeNtfy, settings: Settings) -> None:
    answer = publish(
        settings,
        {"base_url": ntfy.url},
        topic="chronary-alerts-8f3k2",
        message="Design review in 10 minutes",
        title="Reminder",
        priority=4,
        tags=["calendar"],
        click="https://chronary.local/",
        actions=[{"action": "view", "label": "Open", "url": "https://chronary.local/"}],
    )
    (seen,) = ntfy.requests
    assert (seen.method, seen.path, seen.header("content-type")) == ("POST", "/", "application/json")
    assert seen.header("authorization") is None
    assert seen.json() == {
        "topic": "chronary-alerts-8f3k2",
        "message": "Design review in 10 minutes",
        "title": "Reminder",
        "priority": 4,
        "tags": ["calendar"],
        "click": "https://chronary.local/",
        "actions": [{"action": "view", "label": "Open", "url": "https://chronary.local/"}],
    }
    assert answer["event"] == "message" and answer["topic"] == "chronary-alerts-8f3k2"
    assert answer["id"] == ntfy.messages[0]["id"] and isinstance(answer["time"], int)
    assert (answer["title"], answer["priority"], answer["tags"]) == ("Reminder", 4, ["calendar"])


def test_publish_leaves_out_absent_options(ntfy: FakeNtfy, settings: Settings) -> None:
    publish(settings, {"base_url": ntfy.url}, topic="t1", message="hi", title=None)
    assert ntfy.requests[0].json() == {"topic": "t1", "message": "hi"}


def test_publish_to_a_protected_topic_with_its_token(ntfy: FakeNtfy, settings: Settings) -> None:
    token = ntfy.add_token("phil")
    ntfy.protect("private-ops", token)
    answer = publish(settings, {"base_url": ntfy.url, "access_token": token}, topic="private-ops", message="ok")
    assert answer["topic"] == "private-ops"
    assert ntfy.requests[0].header("authorization") == f"Bearer {token}"
    assert [m["message"] for m in ntfy.messages] == ["ok"]


def test_a_protected_topic_without_or_with_another_token_is_forbidden(ntfy: FakeNtfy, settings: Settings) -> None:
    allowed, other = ntfy.add_token("phil"), ntfy.add_token("eve")
    ntfy.protect("private-ops", allowed)
    for creds in ({"base_url": ntfy.url}, {"base_url": ntfy.url, "access_token": other}):
        with pytest.raises(ConnectorError) as caught:
            publish(settings, creds, topic="private-ops", message="nope")
        assert caught.value.status == 403
        assert "forbidden" in caught.value.reason
        assert not isinstance(caught.value, BadCredentials | BadInput)
        assert other not in caught.value.reason
    assert ntfy.messages == []


def test_publish_with_an_unknown_token_is_bad_credentials(ntfy: FakeNtfy, settings: Settings) -> None:
    with pytest.raises(BadCredentials) as caught:
        publish(settings, {"base_url": ntfy.url, "access_token": "tk_revoked123"}, topic="t1", message="x")
    assert (caught.value.field, caught.value.status) == ("access_token", 401)
    assert "tk_revoked123" not in caught.value.reason
    assert ntfy.messages == []


def test_ntfy_input_errors_name_the_field(ntfy: FakeNtfy, settings: Settings) -> None:
    # inputs the schema would refuse, to see ntfy's own answers mapped (Connect validates first)
    with pytest.raises(BadInput) as topic:
        publish(settings, {"base_url": ntfy.url}, topic="no spaces allowed", message="x")
    assert (topic.value.field, topic.value.status) == ("topic", 400)
    assert "topic invalid" in topic.value.reason
    with pytest.raises(BadInput) as priority:
        publish(settings, {"base_url": ntfy.url}, topic="t1", message="x", priority=9)
    assert priority.value.field == "priority"


def test_a_rate_limit_carries_retry_after(ntfy: FakeNtfy, settings: Settings) -> None:
    ntfy.limit_next(retry_after=17)
    with pytest.raises(ConnectorError) as with_header:
        publish(settings, {"base_url": ntfy.url}, topic="t1", message="x")
    assert (with_header.value.status, with_header.value.retry_after) == (429, 17.0)
    assert "too many requests" in with_header.value.reason
    ntfy.limit_next()
    with pytest.raises(ConnectorError) as without:
        publish(settings, {"base_url": ntfy.url}, topic="t1", message="x")
    assert (without.value.status, without.value.retry_after) == (429, 60.0)
    assert ntfy.messages == []


def test_a_server_error_is_a_connector_error_with_its_status(ntfy: FakeNtfy, settings: Settings) -> None:
    ntfy.fail_next(500, {"code": 50001, "http": 500, "error": "internal server error"})
    with pytest.raises(ConnectorError) as caught:
        publish(settings, {"base_url": ntfy.url}, topic="t1", message="x")
    assert caught.value.status == 500 and "internal server error" in caught.value.reason
    assert caught.value.retry_after is None


def test_a_token_echoed_by_the_server_is_masked(ntfy: FakeNtfy, settings: Settings) -> None:
    token = ntfy.add_token("phil")
    ntfy.fail_next(400, {"code": 40099, "http": 400, "error": f"bad header Bearer {token}"})
    with pytest.raises(ConnectorError) as caught:
        publish(settings, {"base_url": ntfy.url, "access_token": token}, topic="t1", message="x")
    assert token not in caught.value.reason and "***" in caught.value.reason


def test_unknown_action(settings: Settings) -> None:
    with pytest.raises(BadInput) as caught:
        call(settings, {}, lambda c: c.run("subscribe", {}))
    assert caught.value.field == "actionName"


def test_the_fake_also_takes_plain_publishing(ntfy: FakeNtfy) -> None:
    token = ntfy.add_token("phil")
    ntfy.protect("ops", token)
    http = httpx.Client(trust_env=False)
    ok = http.post(
        f"{ntfy.url}/ops",
        content=b"Backup done",
        headers={"Authorization": f"Bearer {token}", "X-Title": "Backup", "X-Priority": "high", "X-Tags": "a, b"},
    )
    assert ok.status_code == 200
    assert {k: ok.json()[k] for k in ("topic", "message", "title", "priority", "tags")} == {
        "topic": "ops",
        "message": "Backup done",
        "title": "Backup",
        "priority": 4,
        "tags": ["a", "b"],
    }
    refused = http.post(f"{ntfy.url}/ops", content=b"x")
    assert (refused.status_code, refused.json()["code"]) == (403, 40301)
    assert http.get(f"{ntfy.url}/v1/account").json()["username"] == "*"
    http.close()
