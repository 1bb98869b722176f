"""The Home Assistant connector against FakeHomeAssistant over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chronary.config import Settings
from chronary.connectors import load
from chronary.connectors.base import BadCredentials, BadInput, ConnectorError
from chronary.connectors.home_assistant import Connector
from tests.connectors._support import run_connector
from tests.fakes.home_assistant import TOKEN, FakeHomeAssistant

NOW = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[FakeHomeAssistant]:
    with FakeHomeAssistant(location_name="Lakeside cabin") as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def call(settings: Settings, credentials: dict[str, str], fn: Callable[[Connector], Awaitable[Any]]) -> Any:
    return run_connector(Connector, settings, credentials, fn)


def creds(fake: FakeHomeAssistant, token: str = TOKEN) -> dict[str, str]:
    return {"base_url": fake.url + "/", "access_token": token}


def test_the_registry_loads_this_connector() -> None:
    assert load("home_assistant") is Connector


def test_the_target_is_the_instance_with_a_bearer_token(settings: Settings, fake: FakeHomeAssistant) -> None:
    target = Connector(creds(fake), settings, None).target()  # type: ignore[arg-type]
    assert target.base_url == fake.url
    assert dict(target.headers) == {"Authorization": f"Bearer {TOKEN}"}
    for bad in ("homeassistant.local:8123", "ftp://ha.example", "http://user:pw@ha.example"):
        with pytest.raises(BadCredentials) as err:
            Connector({"base_url": bad, "access_token": TOKEN}, settings, None).target()  # type: ignore[arg-type]
        assert err.value.field == "base_url"


def test_check_answers_the_location_name(settings: Settings, fake: FakeHomeAssistant) -> None:
    assert call(settings, creds(fake), lambda c: c.check()) == "Lakeside cabin"
    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/api/"), ("GET", "/api/config")]
    assert all(r.header("authorization") == f"Bearer {TOKEN}" for r in fake.requests)


def test_check_refuses_a_wrong_token(settings: Settings, fake: FakeHomeAssistant) -> None:
    with pytest.raises(BadCredentials) as err:
        call(settings, creds(fake, "wrong-token"), lambda c: c.check())
    assert err.value.field == "access_token" and err.value.status == 401
    assert [r.path for r in fake.requests] == ["/api/"]


def test_check_refuses_a_url_that_is_not_home_assistant(settings: Settings, fake: FakeHomeAssistant) -> None:
    with pytest.raises(BadCredentials) as err:
        call(settings, {"base_url": fake.url + "/somewhere", "access_token": TOKEN}, lambda c: c.check())
    assert err.value.field == "base_url"


def test_check_without_a_config_answer_has_no_label(settings: Settings, fake: FakeHomeAssistant) -> None:
    fake.fail_next(500, path="/api/config")
    assert call(settings, creds(fake), lambda c: c.check()) is None


def test_turn_on_a_light_answers_the_changed_states(settings: Settings, fake: FakeHomeAssistant) -> None:
    inputs = {"domain": "light", "service": "turn_on", "entity_id": "light.office", "data": {"brightness_pct": 60}}
    answer = call(settings, creds(fake), lambda c: c.run("call_service", inputs))
    assert set(answer) == {"changed_states"}
    [state] = answer["changed_states"]
    assert state["entity_id"] == "light.office" and state["state"] == "on"
    assert state["attributes"]["brightness"] == 153
    [req] = fake.requests
    assert (req.method, req.path, req.query) == ("POST", "/api/services/light/turn_on", {})
    assert req.json() == {"brightness_pct": 60, "entity_id": "light.office"}
    assert req.header("content-type") == "application/json"
    assert fake.states["light.office"]["state"] == "on"


def test_a_call_that_changes_nothing_answers_no_states(settings: Settings, fake: FakeHomeAssistant) -> None:
    inputs = {"domain": "switch", "service": "turn_off", "entity_id": ["switch.coffee"]}
    assert call(settings, creds(fake), lambda c: c.run("call_service", inputs)) == {"changed_states": []}
    assert fake.requests[0].json() == {"entity_id": ["switch.coffee"]}


def test_return_response_adds_the_query_and_answers_the_response(settings: Settings, fake: FakeHomeAssistant) -> None:
    inputs = {
        "domain": "weather",
        "service": "get_forecasts",
        "entity_id": "weather.home",
        "data": {"type": "daily"},
        "return_response": True,
    }
    answer = call(settings, creds(fake), lambda c: c.run("call_service", inputs))
    assert answer["changed_states"] == []
    assert answer["service_response"]["weather.home"]["forecast"][0]["condition"] == "sunny"
    [req] = fake.requests
    assert req.path == "/api/services/weather/get_forecasts"
    assert "return_response" in req.query
    assert req.json() == {"type": "daily", "entity_id": "weather.home"}


def test_a_service_that_needs_return_response_names_it(settings: Settings, fake: FakeHomeAssistant) -> None:
    inputs: dict[str, Any] = {
        "domain": "weather",
        "service": "get_forecasts",
        "entity_id": "weather.home",
        "data": {"type": "daily"},
    }
    with pytest.raises(BadInput) as err:
        call(settings, creds(fake), lambda c: c.run("call_service", inputs))
    assert err.value.field == "return_response" and err.value.status == 400
    assert "requires responses" in err.value.reason
    inputs = {"domain": "light", "service": "turn_on", "entity_id": "light.hall", "return_response": True}
    with pytest.raises(BadInput) as err:
        call(settings, creds(fake), lambda c: c.run("call_service", inputs))
    assert err.value.field == "return_response"
    assert fake.states["light.hall"]["attributes"]["brightness"] == 255  # nothing ran


def test_an_unknown_domain_or_service_is_named(settings: Settings, fake: FakeHomeAssistant) -> None:
    with pytest.raises(BadInput) as err:
        call(settings, creds(fake), lambda c: c.run("call_service", {"domain": "vacuum", "service": "start"}))
    assert err.value.field == "domain" and err.value.status == 400
    with pytest.raises(BadInput) as err:
        call(settings, creds(fake), lambda c: c.run("call_service", {"domain": "light", "service": "explode"}))
    assert err.value.field == "service"
    # the fake answered "400: Bad Request" and the connector looked the services up
    assert [r.path for r in fake.requests[-2:]] == ["/api/services/light/explode", "/api/services"]


def test_an_unknown_service_answered_404_is_named(settings: Settings, fake: FakeHomeAssistant) -> None:
    fake.answer_404_for_unknown = True
    fake.fail_next(500, path=r"^/api/services$")  # even without the service list
    with pytest.raises(BadInput) as err:
        call(settings, creds(fake), lambda c: c.run("call_service", {"domain": "light", "service": "explode"}))
    assert err.value.field == "service" and err.value.status == 404


def test_data_the_service_refuses_names_data(settings: Settings, fake: FakeHomeAssistant) -> None:
    inputs = {"domain": "light", "service": "turn_on", "entity_id": "light.office", "data": {"brightness_pct": 300}}
    with pytest.raises(BadInput) as err:
        call(settings, creds(fake), lambda c: c.run("call_service", inputs))
    assert err.value.field == "data" and err.value.status == 400
    assert fake.states["light.office"]["state"] == "off"
    with pytest.raises(BadInput) as err:
        call(settings, creds(fake), lambda c: c.run("call_service", {"domain": "notify", "service": "mobile_app_pixel"}))
    assert err.value.field == "data"
    assert fake.notifications == []


def test_notify_passes_the_data_through(settings: Settings, fake: FakeHomeAssistant) -> None:
    inputs = {
        "domain": "notify",
        "service": "mobile_app_pixel",
        "data": {"message": "Meeting in 5 minutes", "title": "Chronary"},
    }
    assert call(settings, creds(fake), lambda c: c.run("call_service", inputs)) == {"changed_states": []}
    assert fake.notifications == [{"service": "mobile_app_pixel", "message": "Meeting in 5 minutes", "title": "Chronary"}]


def test_a_revoked_token_on_a_call_is_a_401_connector_error(settings: Settings, fake: FakeHomeAssistant) -> None:
    with pytest.raises(ConnectorError) as err:
        call(settings, creds(fake, "revoked"), lambda c: c.run("call_service", {"domain": "light", "service": "toggle"}))
    assert type(err.value) is ConnectorError
    assert err.value.status == 401 and err.value.field == "access_token"
    assert "revoked" not in err.value.reason


def test_a_server_error_is_a_connector_error_with_its_status(settings: Settings, fake: FakeHomeAssistant) -> None:
    fake.fail_next(500, {"message": f"boom {TOKEN}"})
    with pytest.raises(ConnectorError) as err:
        call(settings, creds(fake), lambda c: c.run("call_service", {"domain": "light", "service": "toggle"}))
    assert type(err.value) is ConnectorError and err.value.status == 500
    assert "boom" in err.value.reason and TOKEN not in err.value.reason


def test_a_domain_that_is_not_a_path_segment_is_refused(settings: Settings, fake: FakeHomeAssistant) -> None:
    with pytest.raises(BadInput) as err:
        call(settings, creds(fake), lambda c: c.run("call_service", {"domain": "../api", "service": "x"}))
    assert err.value.field == "domain"
    assert fake.requests == []


def test_inbound_relays_a_state_change(settings: Settings) -> None:
    payload = {
        "entity_id": "binary_sensor.front_door",
        "old_state": {"state": "off"},
        "new_state": {"state": "on"},
    }
    connector = Connector({"base_url": "http://ha.example:8123", "access_token": TOKEN}, settings, None)  # type: ignore[arg-type]
    got = connector.inbound({"content-type": "application/json"}, json.dumps(payload).encode(), NOW)
    assert (got.event, got.payload) == ("state_changed", payload)
    for bad in (b"", b"door opened", b"[1, 2]"):
        with pytest.raises(BadInput):
            connector.inbound({}, bad, NOW)
