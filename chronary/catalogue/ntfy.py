"""ntfy: push notifications to phones and desktops by publishing to a topic (ntfy.sh or self-hosted).

`publish` is ntfy's JSON publishing: `POST /` on the server with the topic in the body. An access
token (tk_…) goes in `Authorization: Bearer`; public topics on ntfy.sh need none.
"""

from __future__ import annotations

from chronary.catalogue import (
    Action,
    CredentialField,
    Provider,
    array,
    boolean,
    input_schema,
    integer,
    obj,
    output_schema,
    string,
)

_action_button = obj(
    "An action button: view opens a URL, http sends a request, broadcast sends an Android intent",
    {
        "action": string("Button type", enum=["view", "http", "broadcast"]),
        "label": string("Button text"),
        "url": string("URL to open (view) or request (http)", format="uri"),
        "clear": boolean("Dismiss the notification after the button is tapped"),
        "method": string("HTTP method for http buttons (default POST)"),
        "headers": obj("Headers for http buttons", values=string("A header value")),
        "body": string("Body for http buttons"),
        "intent": string("Android intent for broadcast buttons"),
        "extras": obj("Intent extras for broadcast buttons", values=string("An extra's value")),
    },
    ("action", "label"),
)

PUBLISH = Action(
    name="publish",
    title="Publish a notification",
    description="Send a notification to everyone subscribed to a topic.",
    input_schema=input_schema(
        {
            "topic": string(
                "The topic: letters, digits, _ and -, up to 64 characters (on ntfy.sh a topic is effectively a password)",
                pattern="^[-_A-Za-z0-9]{1,64}$",
                examples=["chronary-alerts-8f3k2"],
            ),
            "message": string("The notification's text", examples=["Design review starts in 10 minutes"]),
            "title": string("Title above the message", examples=["Reminder"]),
            "priority": integer(
                "1 min, 2 low, 3 default, 4 high, 5 max (urgent)", minimum=1, maximum=5, default=3, examples=[4]
            ),
            "tags": array(
                "Tags; names of emoji shortcodes show as emoji",
                string("A tag or emoji shortcode"),
                examples=[["calendar", "warning"]],
            ),
            "click": string(
                "URL opened when the notification is tapped", format="uri", examples=["https://chronary.local/"]
            ),
            "actions": array(
                "Up to three action buttons",
                _action_button,
                max_items=3,
                examples=[[{"action": "view", "label": "Open", "url": "https://chronary.local/"}]],
            ),
        },
        ("topic", "message"),
        examples=[
            {"topic": "chronary-alerts-8f3k2", "title": "Reminder", "message": "Design review in 10 minutes", "priority": 4}
        ],
    ),
    output_schema=output_schema(
        "The published message as ntfy answers it",
        {
            "id": string("Message id"),
            "time": integer("Unix time of publishing"),
            "expires": integer("Unix time the server forgets the message"),
            "event": string("Always message"),
            "topic": string("The topic"),
            "message": string("The text"),
            "title": string("The title"),
            "priority": integer("The priority"),
            "tags": array("The tags", string("A tag")),
            "click": string("The click URL"),
        },
        ("id", "time", "event", "topic"),
    ),
)

PROVIDER = Provider(
    type="ntfy",
    name="ntfy",
    category="notifications",
    description="Push notifications to phones and desktops through ntfy.sh or a self-hosted ntfy server.",
    auth="api_key",
    docs_url="https://docs.ntfy.sh/publish/",
    credentials=(
        CredentialField(
            name="base_url",
            label="Server",
            description="The ntfy server; change it for a self-hosted one",
            required=False,
            default="https://ntfy.sh",
            format="url",
        ),
        CredentialField(
            name="access_token",
            label="Access token",
            description="An access token (tk_…) for protected topics; public topics need none",
            secret=True,
            required=False,
        ),
    ),
    base_url="https://ntfy.sh",
    capabilities=("proxy", "actions"),
    actions=(PUBLISH,),
)
