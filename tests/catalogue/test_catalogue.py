"""The Connect catalogue: one module per provider, each a consistent declaration whose action
schemas are well-formed JSON Schema, whose examples satisfy them, and (for Chronary itself) whose
inputs and outputs match the REST structs."""

from __future__ import annotations

import importlib
import re
import sys
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec
import pytest

from chronary import catalogue
from chronary.catalogue import JSON_SCHEMA_DIALECT, Action, Provider
from chronary.schemas.events import Event, EventCreate, EventList, EventUpdate
from chronary.schemas.scheduling import FindMeetingTime, Interval, MeetingSlots
from chronary.webhooks.types import EVENT_TYPES

REQUIRED = {
    "chronary",
    "google",
    "microsoft",
    "icloud",
    "caldav",
    "ical",
    "http",
    "ntfy",
    "slack",
    "discord",
    "telegram",
    "home_assistant",
    "smtp",
}
# credential fields through which a user supplies the server (then base_url may be None or not https)
SERVER_FIELDS = {"base_url", "server_url", "host", "url"}
PROVIDERS = catalogue.all_providers()
ACTIONS = [(p.type, a) for p in PROVIDERS for a in p.actions]


def _ids(item: tuple[str, Action]) -> str:
    return f"{item[0]}.{item[1].name}"


# --- the registry -----------------------------------------------------------------------------


def test_every_module_is_registered_once_under_its_own_name() -> None:
    modules = catalogue.provider_modules()
    types = [p.type for p in PROVIDERS]
    assert sorted(types) == sorted(modules)
    assert len(set(types)) == len(types)
    for name in modules:
        module = importlib.import_module(f"chronary.catalogue.{name}")
        provider = catalogue.get(name)
        assert provider is not None and module.PROVIDER is provider
        assert provider.type == name


def test_the_required_providers_are_there() -> None:
    assert {p.type for p in PROVIDERS} >= REQUIRED


def test_the_order_is_stable_and_grouped_by_category() -> None:
    assert [p.type for p in catalogue.all_providers()] == [p.type for p in PROVIDERS]
    assert PROVIDERS[0].type == "chronary"
    ranks = [catalogue.CATEGORIES.index(p.category) for p in PROVIDERS]
    assert ranks == sorted(ranks)
    # callers get their own list: changing it does not change the registry
    catalogue.all_providers().clear()
    assert len(catalogue.all_providers()) == len(PROVIDERS)


def test_lookups() -> None:
    assert catalogue.get("nope") is None
    assert catalogue.get("slack") is not None
    assert catalogue.action("nope", "post_message") is None
    assert catalogue.action("slack", "nope") is None
    post = catalogue.action("slack", "post_message")
    assert post is not None and post.name == "post_message"
    assert catalogue.action("chronary", "create_hold") is catalogue.get("chronary").action("create_hold")  # type: ignore[union-attr]


def test_the_catalogue_is_json_and_reads_back_as_itself() -> None:
    raw = msgspec.json.encode(PROVIDERS)
    assert msgspec.json.decode(raw, type=list[Provider]) == PROVIDERS  # Literal fields checked on the way back
    slack = next(p for p in msgspec.json.decode(raw) if p["type"] == "slack")
    assert slack["actions"][0]["input_schema"]["properties"]["channel"]["type"] == "string"
    assert slack["credentials"][0]["secret"] is True


# --- each provider is consistent ----------------------------------------------------------------


def _supplies_server(p: Provider) -> bool:
    return any(c.name in SERVER_FIELDS for c in p.credentials)


@pytest.mark.parametrize("p", PROVIDERS, ids=lambda p: p.type)
def test_provider_fields_are_consistent(p: Provider) -> None:
    assert re.fullmatch(r"[a-z][a-z0-9_]*", p.type)
    assert p.name and p.description.strip()
    assert p.docs_url.startswith("https://") or (p.type == "chronary" and p.docs_url.startswith("/"))
    assert len(set(p.capabilities)) == len(p.capabilities)

    if p.auth == "oauth2":
        assert p.connect_via == "/v1/connections/start"
    if p.auth == "api_key":
        assert any(c.secret for c in p.credentials), "an API-key provider needs a secret credential"
    if p.auth == "basic":
        assert any(c.secret for c in p.credentials) and any(c.name == "username" for c in p.credentials)
    if p.auth == "none" and p.type != "ical":
        assert p.credentials == ()

    if p.base_url is not None:
        assert urlsplit(p.base_url).scheme == "https" and urlsplit(p.base_url).netloc
        assert not p.base_url.endswith("/")
    else:
        assert _supplies_server(p) or p.type == "chronary", "no base_url: the user must supply the server"

    assert ("actions" in p.capabilities) == bool(p.actions)
    assert ("webhooks" in p.capabilities) == bool(p.webhook_events)
    if "triggers" in p.capabilities:
        assert "webhooks" in p.capabilities
    if "calendar_sync" in p.capabilities:
        assert p.category == "calendar" and p.connect_via
    if "proxy" in p.capabilities:
        assert p.base_url is not None or _supplies_server(p)
    if p.connect_via is not None:
        assert p.connect_via.startswith("/v1/")

    names = [c.name for c in p.credentials]
    assert len(set(names)) == len(names)
    assert len({a.name for a in p.actions}) == len(p.actions)
    assert len({e.name for e in p.webhook_events}) == len(p.webhook_events)
    assert all(e.description.strip() for e in p.webhook_events)


@pytest.mark.parametrize("p", PROVIDERS, ids=lambda p: p.type)
def test_credential_fields(p: Provider) -> None:
    for c in p.credentials:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", c.name)
        assert c.label and c.description.strip()
        if c.secret:
            assert c.default is None, "a secret has no default"
        if c.choices is not None:
            assert c.choices and c.default in (*c.choices, None)
        if c.default is not None and c.format == "url":
            assert urlsplit(c.default).scheme in ("http", "https")
        if c.default is not None and c.format == "port":
            assert 1 <= int(c.default) <= 65535
        if c.name == "base_url" and c.default is not None and p.base_url is not None:
            assert c.default == p.base_url


def test_provider_specifics() -> None:
    by_type = {p.type: p for p in PROVIDERS}
    assert by_type["google"].base_url == "https://www.googleapis.com/calendar/v3"
    assert by_type["microsoft"].base_url == "https://graph.microsoft.com/v1.0"
    assert by_type["slack"].base_url == "https://slack.com/api"
    assert by_type["discord"].base_url == "https://discord.com/api/v10"
    assert by_type["telegram"].base_url == "https://api.telegram.org"
    assert by_type["icloud"].connect_via == by_type["caldav"].connect_via == "/v1/connections"
    assert by_type["ical"].connect_via == "/v1/agents/{agent_id}/ical-subscriptions"
    assert by_type["icloud"].auth == by_type["caldav"].auth == "basic"
    assert by_type["ical"].auth == "none"
    ntfy_server = next(c for c in by_type["ntfy"].credentials if c.name == "base_url")
    assert ntfy_server.default == "https://ntfy.sh"
    smtp = {c.name: c for c in by_type["smtp"].credentials}
    assert set(smtp) == {"host", "port", "username", "password", "security", "from_address"}
    assert smtp["port"].default == "587" and smtp["security"].choices == ("starttls", "ssl", "none")
    http = {c.name for c in by_type["http"].credentials}
    assert {"base_url", "api_key", "auth_style", "header_name", "query_param"} <= http
    assert {a.name for a in by_type["smtp"].actions} == {"send_email", "send_invitation"}
    assert {e.name for e in by_type["telegram"].webhook_events} >= {"message", "edited_message", "callback_query"}
    assert {e.name for e in by_type["slack"].webhook_events} >= {"message", "app_mention"}
    assert "state_changed" in {e.name for e in by_type["home_assistant"].webhook_events}


# --- a small structural JSON Schema check, and a validator for the examples ------------------------

KEYWORDS = {
    "$schema",
    "type",
    "description",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "format",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "minProperties",
    "default",
    "examples",
    "oneOf",
    "anyOf",
}
TYPES = {"object", "array", "string", "integer", "number", "boolean", "null"}
FORMATS = {"date-time", "date", "email", "uri"}


def _types(schema: dict[str, Any]) -> list[str]:
    t = schema.get("type")
    return [] if t is None else [t] if isinstance(t, str) else list(t)


def check_schema(schema: Any, where: str) -> list[str]:
    """Problems with one (sub)schema: unknown keywords, bad types, required not among properties,
    properties without a description, defaults and examples that do not satisfy it."""
    if not isinstance(schema, dict):
        return [f"{where}: not an object"]
    problems = [f"{where}: unknown keyword {k}" for k in schema if k not in KEYWORDS]
    types = _types(schema)
    if not set(types) <= TYPES or len(set(types)) != len(types):
        problems.append(f"{where}: bad type {schema.get('type')!r}")
    if "format" in schema and schema["format"] not in FORMATS:
        problems.append(f"{where}: unknown format {schema['format']}")
    if "pattern" in schema:
        re.compile(schema["pattern"])
    if "enum" in schema and not (isinstance(schema["enum"], list) and schema["enum"]):
        problems.append(f"{where}: enum must be a non-empty list")
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        problems.append(f"{where}: properties must be an object")
        properties = {}
    for name, sub in properties.items():
        if not (isinstance(sub, dict) and str(sub.get("description", "")).strip()):
            problems.append(f"{where}.{name}: no description")
        problems += check_schema(sub, f"{where}.{name}")
    if properties and "object" not in types:
        problems.append(f"{where}: properties on a non-object")
    required = schema.get("required", [])
    if not isinstance(required, list) or not set(required) <= set(properties):
        problems.append(f"{where}: required {required} not all among properties")
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        problems += check_schema(extra, f"{where}[*]")
    elif extra is not None and not isinstance(extra, bool):
        problems.append(f"{where}: additionalProperties must be a boolean or a schema")
    if "array" in types:
        if "items" not in schema:
            problems.append(f"{where}: array without items")
        else:
            problems += check_schema(schema["items"], f"{where}[]")
    for keyword in ("oneOf", "anyOf"):
        for i, branch in enumerate(schema.get(keyword, [])):
            if not set(branch.get("required", [])) <= set(properties):
                problems.append(f"{where}.{keyword}[{i}]: requires an unknown property")
    if "default" in schema:
        problems += [f"{where} default: {e}" for e in validate(schema["default"], schema)]
    examples = schema.get("examples", [])
    if not isinstance(examples, list):
        problems.append(f"{where}: examples must be a list")
        examples = []
    for i, example in enumerate(examples):
        problems += [f"{where} example {i}: {e}" for e in validate(example, schema)]
    return problems


def _is(value: Any, json_type: str) -> bool:
    return {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "null": value is None,
    }[json_type]


def _format_ok(value: str, fmt: str) -> bool:
    try:
        if fmt == "date-time":
            return "T" in value and datetime.fromisoformat(value).tzinfo is not None
        if fmt == "date":
            date.fromisoformat(value)
            return len(value) == 10
    except ValueError:
        return False
    if fmt == "email":
        return re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value) is not None
    if fmt == "uri":
        return urlsplit(value).scheme in ("http", "https") and bool(urlsplit(value).netloc)
    return True


def validate(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """The keywords `check_schema` allows, applied to an instance."""
    types = _types(schema)
    if types and not any(_is(value, t) for t in types):
        return [f"{where}: {value!r} is not {types}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            errors.append(f"{where}: length {len(value)} out of range")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if "format" in schema and not _format_ok(value, schema["format"]):
            errors.append(f"{where}: {value!r} is not a {schema['format']}")
    if _is(value, "number") and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        errors.append(f"{where}: {value} out of range")
    if isinstance(value, list):
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            errors.append(f"{where}: {len(value)} items out of range")
        for i, item in enumerate(value):
            errors += validate(item, schema.get("items", {}), f"{where}[{i}]")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        errors += [f"{where}: {name} is required" for name in schema.get("required", []) if name not in value]
        if len(value) < schema.get("minProperties", 0):
            errors.append(f"{where}: fewer than {schema['minProperties']} properties")
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                errors += validate(item, properties[name], f"{where}.{name}")
            elif extra is False:
                errors.append(f"{where}: unknown property {name}")
            elif isinstance(extra, dict):
                errors += validate(item, extra, f"{where}.{name}")
    if "oneOf" in schema and sum(not validate(value, b, where) for b in schema["oneOf"]) != 1:
        errors.append(f"{where}: must match exactly one of {schema['oneOf']}")
    if "anyOf" in schema and not any(not validate(value, b, where) for b in schema["anyOf"]):
        errors.append(f"{where}: must match one of {schema['anyOf']}")
    return errors


def test_the_checker_catches_broken_schemas() -> None:
    good = catalogue.input_schema({"a": catalogue.string("A", examples=["x"])}, ("a",), examples=[{"a": "x"}])
    assert check_schema(good, "good") == []
    assert validate({"a": "x", "b": 1}, good)  # closed
    assert validate({}, good)  # required
    broken = {
        "type": "object",
        "properties": {"a": {"type": "strin"}, "b": {"type": "integer", "description": "B", "maximum": 3, "examples": [4]}},
        "required": ["c"],
        "maxlength": 3,
    }
    problems = " | ".join(check_schema(broken, "broken"))
    for expected in (
        "unknown keyword maxlength",
        "broken.a: no description",
        "bad type 'strin'",
        "required ['c']",
        "out of range",
    ):
        assert expected in problems


@pytest.mark.parametrize("item", ACTIONS, ids=_ids)
def test_action_schemas_are_well_formed(item: tuple[str, Action]) -> None:
    _, a = item
    assert re.fullmatch(r"[a-z][a-z0-9_]*", a.name) and a.title and a.description.strip()
    for kind, schema in (("input", a.input_schema), ("output", a.output_schema)):
        assert schema["$schema"] == JSON_SCHEMA_DIALECT
        assert schema["type"] == "object" and isinstance(schema["properties"], dict) and schema["properties"]
        assert set(schema["required"]) <= set(schema["properties"])
        assert check_schema(schema, f"{a.name}.{kind}") == []
    inputs = a.input_schema
    assert inputs["additionalProperties"] is False
    assert inputs["examples"], "an input carries at least one complete example"
    for name, sub in inputs["properties"].items():
        assert sub.get("examples"), f"{a.name}.{name} has no examples"


@pytest.mark.parametrize("item", ACTIONS, ids=_ids)
def test_minimal_inputs_satisfy_the_schema(item: tuple[str, Action]) -> None:
    """The first example of each property, put together, is a valid input (branches aside)."""
    _, a = item
    schema = a.input_schema
    whole = {name: sub["examples"][0] for name, sub in schema["properties"].items()}
    alternatives = schema.get("oneOf")
    if alternatives:  # keep only the first alternative's properties among the exclusive ones
        exclusive = {n for b in alternatives for n in b["required"]} - set(alternatives[0]["required"])
        whole = {k: v for k, v in whole.items() if k not in exclusive}
    assert validate(whole, schema) == []


# --- Chronary's own actions mirror the REST structs ------------------------------------------------


def _fields(struct: type[msgspec.Struct]) -> set[str]:
    return set(struct.__struct_fields__)


def _chronary(name: str) -> Action:
    found = catalogue.action("chronary", name)
    assert found is not None, name
    return found


def _props(schema: dict[str, Any]) -> set[str]:
    return set(schema["properties"])


def test_chronary_inputs_match_the_rest_bodies() -> None:
    ids = {"calendar_id", "event_id"}
    assert _props(_chronary("create_event").input_schema) == _fields(EventCreate) | {"calendar_id"}
    assert _props(_chronary("update_event").input_schema) == _fields(EventUpdate) | ids
    assert _props(_chronary("create_hold").input_schema) == _fields(EventCreate) - {"status", "transparency"} | {
        "calendar_id"
    }
    for name in ("cancel_event", "confirm_hold", "release_hold"):
        assert _props(_chronary(name).input_schema) == ids
    assert _props(_chronary("find_meeting_time").input_schema) == _fields(FindMeetingTime) | {"explain"}  # ?explain=
    assert {"calendar_id", "agent_id", "start_after", "start_before", "status", "source", "limit", "offset"} == _props(
        _chronary("list_events").input_schema
    )
    create_required = {f.name for f in msgspec.structs.fields(EventCreate) if f.required}
    assert set(_chronary("create_event").input_schema["required"]) == create_required | {"calendar_id"}
    find_required = {f.name for f in msgspec.structs.fields(FindMeetingTime) if f.required}
    assert set(_chronary("find_meeting_time").input_schema["required"]) == find_required


def _rest_properties(struct: type[msgspec.Struct]) -> dict[str, Any]:
    _, components = msgspec.json.schema_components([struct])
    return components[struct.__name__]["properties"]


def _constraints(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The bounds msgspec states for a field (looking through `anyOf: [X, null]`), and whether null is allowed."""
    branches = schema.get("anyOf", [schema])
    nullable = any(b.get("type") == "null" for b in branches)
    keys = ("minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems", "enum")
    bounds = {k: b[k] for b in branches if b.get("type") != "null" for k in keys if k in b}
    return bounds, nullable


@pytest.mark.parametrize(
    ("action_name", "struct"),
    [("create_event", EventCreate), ("update_event", EventUpdate), ("find_meeting_time", FindMeetingTime)],
)
def test_chronary_inputs_carry_the_rest_bounds(action_name: str, struct: type[msgspec.Struct]) -> None:
    mine = _chronary(action_name).input_schema["properties"]
    for name, rest in _rest_properties(struct).items():
        bounds, nullable = _constraints(rest)
        for key, value in bounds.items():
            ours = mine[name].get(key)
            if key == "enum":  # msgspec sorts a Literal's values
                ours, value = {v for v in ours or () if v is not None}, set(value)
            assert ours == value, f"{action_name}.{name}: {key} {ours!r} != REST {value!r}"
        assert ("null" in _types(mine[name])) == nullable, f"{action_name}.{name}: nullability differs from REST"


def test_chronary_outputs_match_the_rest_answers() -> None:
    for name in ("create_event", "update_event", "cancel_event", "create_hold", "confirm_hold"):
        assert _props(_chronary(name).output_schema) == _fields(Event), name
    slots = _chronary("find_meeting_time").output_schema
    assert _props(slots) == _fields(MeetingSlots)
    assert set(slots["properties"]["slots"]["items"]["properties"]) == _fields(Interval)
    assert _props(_chronary("list_events").output_schema) == _fields(EventList)


def test_chronary_events_are_the_webhook_types() -> None:
    chronary = catalogue.get("chronary")
    assert chronary is not None
    assert tuple(e.name for e in chronary.webhook_events) == EVENT_TYPES


@pytest.mark.parametrize(
    ("source", "error"),
    [
        (
            "from chronary.catalogue import Provider\nPROVIDER = Provider(type='other', name='X', category='http', "
            "description='x', auth='none', docs_url='https://example.com')\n",
            ValueError,
        ),
        ("PROVIDER = None\n", TypeError),
    ],
)
def test_a_module_that_does_not_declare_itself_is_refused(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, source: str, error: type[Exception]
) -> None:
    (tmp_path / "zz_broken.py").write_text(source, encoding="utf-8")
    monkeypatch.setattr(catalogue, "__path__", [*catalogue.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "chronary.catalogue.zz_broken", raising=False)
    catalogue._registry.cache_clear()
    try:
        with pytest.raises(error, match="zz_broken"):
            catalogue.all_providers()
    finally:
        monkeypatch.undo()
        sys.modules.pop("chronary.catalogue.zz_broken", None)
        catalogue._registry.cache_clear()
    assert [p.type for p in catalogue.all_providers()] == [p.type for p in PROVIDERS]
