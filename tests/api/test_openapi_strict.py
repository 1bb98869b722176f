"""The OpenAPI document is as strict as the server: formats on time fields, closed request bodies."""

from __future__ import annotations

from typing import Any

import pytest

from chronary.schemas.common import Input


def _all_subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub, *_all_subclasses(sub)}
    return out


@pytest.fixture
def components(api: Any) -> dict[str, Any]:
    r = api.as_key("").get("/schema/openapi.json")
    assert r.status_code == 200
    return r.json()["components"]["schemas"]


def _formats(prop: dict[str, Any]) -> set[str]:
    found = {prop["format"]} if "format" in prop else set()
    for key in ("anyOf", "oneOf"):
        for alt in prop.get(key, []):
            found |= _formats(alt)
    return found


def test_every_request_body_refuses_unknown_fields_in_the_schema(components: dict[str, Any]) -> None:
    bodies = [c.__name__ for c in _all_subclasses(Input) if c.__name__ in components]
    assert {"EventCreate", "EventUpdate", "AgentCreate", "CalendarCreate", "WebhookCreate"} <= set(bodies)
    for name in bodies:
        assert components[name].get("additionalProperties") is False, name
    # responses stay open: adding a field to an answer is not a breaking change for clients
    assert "additionalProperties" not in components["Event"]


def test_time_fields_declare_their_format(components: dict[str, Any]) -> None:
    event = components["Event"]["properties"]
    for name in ("start_time", "end_time", "created_at", "updated_at", "hold_expires_at"):
        assert _formats(event[name]) == {"date-time"}, name
    for name in ("start_date", "end_date"):
        assert _formats(event[name]) == {"date"}, name
    create = components["EventCreate"]["properties"]
    assert _formats(create["start_time"]) == {"date-time", "date"}  # all-day events take a date
    assert _formats(create["hold_expires_at"]) == {"date-time"}


@pytest.mark.parametrize("body", [{"": 0}, {"name": "x", "": 1}])
def test_an_empty_key_is_named_as_the_unknown_field(api: Any, body: dict[str, Any]) -> None:
    r = api.post("/v1/agents", json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "validation_error"
    assert error["param"] == ""
    assert error["message"] == "Unknown field '' in request body"


def test_unknown_field_still_named(api: Any) -> None:
    error = api.post("/v1/agents", json={"name": "x", "colour": 1}).json()["error"]
    assert (error["param"], error["message"]) == ("colour", "Unknown field 'colour' in request body")


def test_input_structs_really_forbid_unknown_fields() -> None:
    for cls in _all_subclasses(Input):
        assert cls.__struct_config__.forbid_unknown_fields, cls


def test_every_timestamp_field_in_every_component_is_date_time(components: dict[str, Any]) -> None:
    checked = 0
    for name, component in components.items():
        for prop_name, prop in component.get("properties", {}).items():
            if prop_name.endswith("_at") or prop_name in ("start_time", "end_time"):
                assert _formats(prop) == {"date-time"} or (
                    name.endswith(("Create", "Update")) and "date" in _formats(prop)
                ), (
                    name,
                    prop_name,
                )
                checked += 1
    assert checked > 40  # agents, calendars, events, keys, proposals, webhooks, deliveries, connections, subscriptions
