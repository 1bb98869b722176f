"""The OpenAPI document and the interactive docs are generated from the code and complete."""

from __future__ import annotations

import re

import pytest

EXPECTED = {
    "/v1/agents": {"get", "post"},
    "/v1/agents/{agent_id}": {"get", "patch", "delete"},
    "/v1/agents/{agent_id}/calendars": {"get", "post"},
    "/v1/agents/{agent_id}/events": {"get"},
    "/v1/calendars": {"get", "post"},
    "/v1/calendars/{calendar_id}": {"get", "patch", "delete"},
    "/v1/calendars/{calendar_id}/events": {"get", "post"},
    "/v1/calendars/{calendar_id}/events/{event_id}": {"get", "patch", "delete"},
    "/v1/calendars/{calendar_id}/events/{event_id}/cancel": {"post"},
    "/v1/calendars/{calendar_id}/events/{event_id}/confirm": {"post"},
    "/v1/calendars/{calendar_id}/events/{event_id}/release": {"post"},
    "/v1/keys": {"get", "post"},
    "/v1/keys/{key_id}": {"delete"},
}
ERROR_CODES = {"400", "401", "403", "404", "409", "413", "415", "429"}


@pytest.fixture
def schema(api):
    r = api.as_key("").get("/schema/openapi.json")
    assert r.status_code == 200
    return r.json()


def test_every_foundation_path_and_method_is_listed(schema):
    for path, methods in EXPECTED.items():
        assert path in schema["paths"], path
        listed = {m for m in schema["paths"][path] if m in {"get", "post", "put", "patch", "delete"}}
        assert methods <= listed, (path, listed)


def test_every_operation_documents_summary_and_error_envelopes(schema):
    envelope = schema["components"]["schemas"]["ErrorEnvelope"]
    assert "error" in envelope["properties"]
    body = schema["components"]["schemas"]["ErrorBody"]["properties"]
    assert {"type", "message", "param", "request_id"} <= set(body)
    for path, methods in EXPECTED.items():
        for method in methods:
            op = schema["paths"][path][method]
            assert op.get("summary"), (path, method)
            assert set(op["responses"]) >= ERROR_CODES, (path, method, sorted(op["responses"]))
            for code in ERROR_CODES:
                ref = op["responses"][code]["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/ErrorEnvelope")
            success = {c for c in op["responses"] if c.startswith("2")}
            assert len(success) == 1, (path, method, success)


def test_status_codes_match_the_contract(schema):
    p = schema["paths"]
    assert "201" in p["/v1/agents"]["post"]["responses"]
    assert "201" in p["/v1/calendars/{calendar_id}/events"]["post"]["responses"]
    assert "201" in p["/v1/keys"]["post"]["responses"]
    assert "204" in p["/v1/agents/{agent_id}"]["delete"]["responses"]
    assert "204" in p["/v1/calendars/{calendar_id}"]["delete"]["responses"]
    assert "204" in p["/v1/keys/{key_id}"]["delete"]["responses"]
    assert "204" in p["/v1/calendars/{calendar_id}/events/{event_id}/release"]["post"]["responses"]
    assert "200" in p["/v1/calendars/{calendar_id}/events/{event_id}/confirm"]["post"]["responses"]


def test_fields_and_rules_are_in_the_schemas(schema):
    s = schema["components"]["schemas"]
    name = s["AgentCreate"]["properties"]["name"]
    assert (name.get("minLength"), name.get("maxLength")) == (1, 255)
    assert set(s["AgentCreate"]["required"]) == {"name"}
    title = s["EventCreate"]["properties"]["title"]
    assert (title.get("minLength"), title.get("maxLength")) == (1, 500)
    assert {"title", "start_time", "end_time"} <= set(s["EventCreate"]["required"])
    assert {"name", "timezone"} <= set(s["CalendarCreate"]["required"])
    assert "ical_url" in s["Calendar"]["properties"]
    assert "secret" in s["ApiKeyWithSecret"]["properties"] and "secret" not in s["ApiKey"]["properties"]
    for struct in ("AgentUpdate", "CalendarUpdate", "EventUpdate"):
        assert not s[struct].get("required"), struct


def test_list_parameters_are_documented(schema):
    params = {p["name"]: p for p in schema["paths"]["/v1/calendars/{calendar_id}/events"]["get"]["parameters"]}
    assert {"start_after", "start_before", "status", "source", "limit", "offset"} <= set(params)
    limit = params["limit"]["schema"]
    assert (limit.get("minimum"), limit.get("maximum")) == (1, 200)
    assert params["offset"]["schema"].get("minimum") == 0
    agent_params = {p["name"] for p in schema["paths"]["/v1/agents"]["get"]["parameters"]}
    assert {"type", "status", "limit", "offset"} <= agent_params


def test_both_key_headers_are_documented(schema):
    schemes = schema["components"]["securitySchemes"]
    assert any(s.get("type") == "http" and s.get("scheme") == "bearer" for s in schemes.values())
    assert any(
        s.get("type") == "apiKey" and s.get("in") == "header" and s.get("name") == "x-api-key" for s in schemes.values()
    )
    op = schema["paths"]["/v1/agents"]["get"]
    assert len(op.get("security", schema.get("security", []))) >= 2


def test_interactive_docs_are_served_without_a_key(api):
    r = api.as_key("").get("/schema")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "redoc" in r.text.lower() and "/v1/calendars/{calendar_id}/events" in r.text  # spec embedded
    # offline: Redoc comes from this server and no web fonts are asked for
    scripts = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', r.text)
    assert scripts and all(u.startswith("/") for u in scripts), scripts
    assert "fonts.googleapis" not in r.text and "cdn.jsdelivr" not in r.text
    js = api.as_key("").get(next(u for u in scripts if "redoc" in u))
    assert js.status_code == 200 and "javascript" in js.headers["content-type"] and len(js.content) > 100_000
    assert "immutable" in js.headers["cache-control"]  # fingerprinted: cached for a year
    assert api.as_key("").get("/schema/openapi.yaml").status_code == 200


def test_fields_carry_descriptions(schema):
    s = schema["components"]["schemas"]
    assert "IANA" in s["AgentCreate"]["properties"]["timezone"]["description"]
    assert "IANA" in s["CalendarCreate"]["properties"]["timezone"]["description"]
    assert "16 KB" in s["AgentCreate"]["properties"]["metadata"]["description"]
    assert "only" in s["ApiKeyWithSecret"]["properties"]["secret"]["description"]
