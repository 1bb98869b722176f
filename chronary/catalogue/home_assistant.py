"""Home Assistant: call services (lights, scenes, scripts, notify, …) and react to its changes.

`call_service` is the REST API's `POST /api/services/<domain>/<service>` with the service data as
the body (a long-lived access token in `Authorization: Bearer`); with `return_response` it adds
`?return_response` and Home Assistant answers `{changed_states, service_response}`, which is the
action's shape in both cases. Home Assistant has no outgoing webhooks of its own: an automation
(state trigger + rest_command) posts state changes to the connection's inbound webhook URL.
"""

from __future__ import annotations

from chronary.catalogue import (
    Action,
    CredentialField,
    EventType,
    Provider,
    array,
    boolean,
    input_schema,
    obj,
    output_schema,
    string,
)

_state = obj(
    "An entity state",
    {
        "entity_id": string("The entity, e.g. light.office"),
        "state": string("Its state, e.g. on"),
        "attributes": obj("Its attributes", closed=False),
        "last_changed": string("When the state last changed", format="date-time"),
        "last_updated": string("When state or attributes last changed", format="date-time"),
    },
    ("entity_id", "state"),
    closed=False,
)

CALL_SERVICE = Action(
    name="call_service",
    title="Call a service",
    description="Call a Home Assistant service (an action in the UI), e.g. light.turn_on or scene.turn_on.",
    input_schema=input_schema(
        {
            "domain": string("The integration's domain", pattern="^[a-z0-9_]+$", examples=["light", "scene", "notify"]),
            "service": string(
                "The service in that domain", pattern="^[a-z0-9_]+$", examples=["turn_on", "mobile_app_pixel"]
            ),
            "entity_id": {
                "type": ["string", "array"],
                "items": {"type": "string", "description": "An entity id"},
                "description": "The target entity or entities",
                "examples": ["light.office", ["light.office", "light.hall"]],
            },
            "data": obj(
                "Further service data, as the service documents it",
                closed=False,
                examples=[{"brightness_pct": 60}, {"message": "Meeting in 5 minutes"}],
            ),
            "return_response": boolean(
                "Ask for the service's response data (required by services that answer data, e.g. weather.get_forecasts)",
                default=False,
                examples=[False],
            ),
        },
        ("domain", "service"),
        examples=[{"domain": "light", "service": "turn_on", "entity_id": "light.office", "data": {"brightness_pct": 60}}],
    ),
    output_schema=output_schema(
        "What the call changed",
        {
            "changed_states": array("States that changed while the service ran", _state),
            "service_response": obj("The service's response data (with return_response)", closed=False),
        },
        ("changed_states",),
    ),
)

PROVIDER = Provider(
    type="home_assistant",
    name="Home Assistant",
    category="smart_home",
    description=(
        "Control a Home Assistant instance (lights, scenes, scripts, notifications) and start flows from its state changes."
    ),
    auth="api_key",
    docs_url="https://developers.home-assistant.io/docs/api/rest/",
    credentials=(
        CredentialField(
            name="base_url",
            label="Home Assistant URL",
            description="Where the instance answers, with its port",
            default="http://homeassistant.local:8123",
            format="url",
        ),
        CredentialField(
            name="access_token",
            label="Long-lived access token",
            description="Created in the user's profile (Security → Long-lived access tokens)",
            secret=True,
        ),
    ),
    capabilities=("proxy", "actions", "webhooks", "triggers"),
    actions=(CALL_SERVICE,),
    webhook_events=(
        EventType(
            name="state_changed",
            description="An entity's state changed (entity_id, old_state, new_state), posted by an automation",
        ),
    ),
)
