"""Any HTTP API: a base URL and an API key, reached through the proxy or the `request` action.

The key goes where the API expects it (`auth_style`): `Authorization: Bearer <key>`, a header of
its own (`header_name`) or a query parameter (`query_param`). Requests posted to the connection's
inbound webhook URL arrive as `request` events and can start flows.
"""

from __future__ import annotations

from chronary.catalogue import (
    Action,
    CredentialField,
    EventType,
    Provider,
    any_json,
    input_schema,
    integer,
    obj,
    output_schema,
    string,
)

_header_map = string("A header value")

REQUEST = Action(
    name="request",
    title="Send an HTTP request",
    description=(
        "Send one request to the API, relative to its base URL, with the key added as the connection says. "
        "A JSON body is sent as application/json."
    ),
    input_schema=input_schema(
        {
            "method": string(
                "HTTP method", enum=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"], default="GET", examples=["POST"]
            ),
            "path": string("Path below the base URL, starting with /", pattern="^/", examples=["/v1/tickets", "/status"]),
            "query": obj(
                "Query parameters", values=string("A parameter value"), examples=[{"state": "open", "limit": "20"}]
            ),
            "headers": obj(
                "Extra request headers (the key's header cannot be overridden)",
                values=_header_map,
                examples=[{"Accept": "application/json"}],
            ),
            "body": any_json("The request body: any JSON value", examples=[{"title": "Printer on fire"}]),
        },
        ("method", "path"),
        examples=[{"method": "POST", "path": "/v1/tickets", "body": {"title": "Printer on fire"}}],
    ),
    output_schema=output_schema(
        "The API's answer",
        {
            "status": integer("HTTP status code", minimum=100, maximum=599),
            "headers": obj("Response headers (lower-case names)", values=string("A header value")),
            "body": any_json("The body: parsed JSON when the answer is JSON, else text"),
        },
        ("status", "headers", "body"),
    ),
)

PROVIDER = Provider(
    type="http",
    name="HTTP API",
    category="http",
    description=(
        "Connect any HTTP API with a base URL and an API key: call it through the proxy or the request "
        "action, and receive its webhooks as events."
    ),
    auth="api_key",
    docs_url="https://www.rfc-editor.org/rfc/rfc9110",
    credentials=(
        CredentialField(
            name="base_url",
            label="Base URL",
            description="Where the API lives; request paths are relative to it",
            format="url",
        ),
        CredentialField(
            name="api_key",
            label="API key",
            description="The key or token the API issued (leave empty for an open API)",
            secret=True,
            required=False,
        ),
        CredentialField(
            name="auth_style",
            label="Send the key as",
            description=(
                "bearer: Authorization: Bearer <key>; header: in the header named below; "
                "query: as the query parameter named below"
            ),
            required=False,
            default="bearer",
            choices=("bearer", "header", "query"),
        ),
        CredentialField(
            name="header_name",
            label="Header name",
            description="The header carrying the key when auth_style is header",
            required=False,
            default="X-API-Key",
        ),
        CredentialField(
            name="query_param",
            label="Query parameter",
            description="The query parameter carrying the key when auth_style is query",
            required=False,
            default="api_key",
        ),
    ),
    capabilities=("proxy", "actions", "webhooks", "triggers"),
    actions=(REQUEST,),
    webhook_events=(
        EventType(
            name="request",
            description="A request posted to the connection's inbound webhook URL (method, headers, body)",
        ),
    ),
)
