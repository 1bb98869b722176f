"""Every URL field is checked strictly by one validator (issue 11, item 6): webhook url,
subscription url and connection server_url answer 400 validation_error naming the field, and
nothing is stored."""

from __future__ import annotations

from typing import Any

import pytest

from chronary.errors import ValidationError
from chronary.outbound import InvalidUrl, parse_url
from chronary.services.validation import check_url

BAD = [
    ("http://127.0.0.1:9/a\x00b", "control"),
    ("http://127.0.0.1:9/\x01", "control"),
    ("http://127.0.0.1:9/a\r\nX-Injected: 1", "control"),
    ("http://127.0.0.1:9/a\n", "control"),
    ("http://127.0.0.1:9/a\tb", "control"),
    ("http://127.0.0.1:9/a\x7f", "control"),
    ("http://127.0.0.1:9/a\u200bb", "invisible"),
    ("http://127.0.0.1:9/a b", "space"),
    (" http://127.0.0.1:9/", "scheme"),
    ("http://exa mple.com/", "space"),
    ("http://exa\x00mple.com/", "control"),
    ("http://exa<mple.com/", "host"),
    ("http://exa%41mple.com/", "host"),
    ("http://a..b.example/", "host"),
    ("http://-a.example/", "host"),
    ("http:///path", "no host"),
    ("http://:80/", "no host"),
    ("http:", "look like"),
    ("http:/example.com/", "look like"),
    ("http://example.com:0/", "port"),
    ("http://example.com:99999/", "port"),
    ("http://example.com:8o/", "port"),
    ("http://example.com:\u0668\u0660/", "port"),  # Arabic-Indic digits: int() would read 80
    ("http://[fe80::1%25eth0]/", "zone"),
    ("http://[::1/", "host"),
    ("http://[not-v6]/", "host"),
    ("http://[::1]x/", "IPv6"),
    ("http://example.com\\@127.0.0.1/", "backslash"),
    ("http://user@example.com/", "credentials"),
    ("http://user:pw@example.com/", "credentials"),
    ("javascript:alert(1)", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://example.com/", "scheme"),
    ("example.com/x", "scheme"),
    ("", "scheme"),
]


@pytest.mark.parametrize(("url", "words"), BAD)
def test_validator_refuses_with_a_reason(url: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_url(url, "url")
    assert caught.value.param == "url"
    assert words in caught.value.message, caught.value.message


@pytest.mark.parametrize("host", ["127.1", "0x7f.1", "2130706433", "0", "0177.0.0.1", "127.000.000.001", "1.2.3"])
def test_numeric_host_shorthands_are_not_urls_we_accept(host: str) -> None:
    """Parsers disagree on these (inet_aton reads them all as IPv4); we take only a.b.c.d."""
    with pytest.raises(InvalidUrl, match="four decimal numbers"):
        parse_url(f"http://{host}:9/")


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("https://Example.COM./feed?x=1#top", "example.com", 443),
        ("http://192.168.1.10:8080/hook", "192.168.1.10", 8080),
        ("http://[FD00::5]:9/", "fd00::5", 9),
        ("https://bücher.example/cal.ics", "xn--bcher-kva.example", 443),
        ("http://my_host.lan/hook", "my_host.lan", 80),
        ("http://example.com:/x", "example.com", 80),
        ("https://example.com/caf%C3%A9/ü", "example.com", 443),
    ],
)
def test_ordinary_urls_pass_and_are_normalized(url: str, host: str, port: int) -> None:
    target = parse_url(url)
    assert (target.host, target.port) == (host, port)
    assert check_url(url, "url") == url


def test_webcal_only_where_allowed() -> None:
    assert parse_url("webcal://cal.example.com/x.ics", ("http", "https", "webcal")).port == 80
    assert parse_url("webcals://cal.example.com/x.ics", ("webcals",)).port == 443
    with pytest.raises(ValidationError, match="scheme"):
        check_url("webcal://cal.example.com/x.ics", "url")


def _assert_400(r: Any, param: str) -> None:
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "validation_error" and err["param"] == param, err
    assert err["request_id"].startswith("req_")


@pytest.mark.parametrize(("url", "words"), BAD)
def test_webhook_url_is_validated_on_create_and_update(api: Any, url: str, words: str) -> None:
    _assert_400(api.post("/v1/webhooks", json={"url": url, "events": ["*"]}), "url")
    wh = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["*"]})
    assert wh.status_code == 201, wh.text
    _assert_400(api.patch(f"/v1/webhooks/{wh.json()['id']}", json={"url": url}), "url")
    listed = api.get("/v1/webhooks").json()["data"]
    assert [w["url"] for w in listed] == ["http://127.0.0.1:9/hook"]  # nothing stored


@pytest.mark.parametrize(("url", "words"), BAD)
def test_subscription_url_is_validated_on_create_and_update(api: Any, url: str, words: str) -> None:
    agent = api.agent()
    cal = api.calendar(agent["id"])
    base = f"/v1/agents/{agent['id']}/ical-subscriptions"
    _assert_400(api.post(base, json={"calendar_id": cal["id"], "url": url.replace("http://", "webcal://", 1)}), "url")
    _assert_400(api.post(base, json={"calendar_id": cal["id"], "url": url}), "url")
    sub = api.post(base, json={"calendar_id": cal["id"], "url": "http://127.0.0.1:9/cal.ics"})
    assert sub.status_code == 201, sub.text
    _assert_400(api.patch(f"/v1/ical-subscriptions/{sub.json()['id']}", json={"url": url}), "url")
    assert [s["url"] for s in api.get(base).json()["data"]] == ["http://127.0.0.1:9/cal.ics"]


@pytest.mark.parametrize(("url", "words"), BAD)
def test_connection_server_url_is_validated(api: Any, url: str, words: str) -> None:
    agent = api.agent()
    body = {"provider": "caldav", "agent_id": agent["id"], "username": "ada", "password": "pw", "server_url": url}
    _assert_400(api.post("/v1/connections", json=body), "server_url")
    assert api.get("/v1/connections").json()["total"] == 0


def test_agent_key_still_gets_403_before_url_errors(api: Any) -> None:
    agent = api.agent()
    as_agent = api.as_key(api.agent_key(agent["id"]))
    body = {"provider": "caldav", "agent_id": agent["id"], "username": "a", "password": "p", "server_url": "http://x\x00/"}
    assert as_agent.post("/v1/connections", json=body).status_code == 403
    assert as_agent.post("/v1/webhooks", json={"url": "http://x\x00/", "events": ["*"]}).status_code == 403
