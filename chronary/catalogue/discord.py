"""Discord: send messages to channels as a bot (REST API v10, `Authorization: Bot <token>`).

`send_message` is Create Message (`POST /channels/{channel.id}/messages`). Discord delivers
messages and other activity over its Gateway (a WebSocket), not HTTP webhooks, so this provider
has no webhook events.
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

_embed = obj(
    "A rich embed",
    {
        "title": string("Title", max_length=256),
        "description": string("Text", max_length=4096),
        "url": string("Link of the title", format="uri"),
        "color": integer("Side colour as an integer (0xRRGGBB)", minimum=0, maximum=0xFFFFFF),
        "timestamp": string("ISO 8601 timestamp shown in the footer", format="date-time"),
        "fields": array(
            "Up to 25 fields",
            obj(
                "A field",
                {
                    "name": string("Field name", max_length=256),
                    "value": string("Field value", max_length=1024),
                    "inline": boolean("Show beside other inline fields"),
                },
                ("name", "value"),
            ),
            max_items=25,
        ),
        "footer": obj("Footer", {"text": string("Footer text", max_length=2048)}, ("text",), closed=False),
        "image": obj("Image", {"url": string("Image URL", format="uri")}, ("url",), closed=False),
        "thumbnail": obj("Thumbnail", {"url": string("Image URL", format="uri")}, ("url",), closed=False),
        "author": obj("Author", {"name": string("Author name", max_length=256)}, ("name",), closed=False),
    },
)

SEND_MESSAGE = Action(
    name="send_message",
    title="Send a message",
    description=(
        "Post a message to a channel the bot can write to (Send Messages permission). Give content, embeds or both."
    ),
    input_schema=input_schema(
        {
            "channel_id": string(
                "The channel's id (a snowflake; Developer Mode → Copy Channel ID)",
                pattern=r"^\d{17,20}$",
                examples=["1234567890123456789"],
            ),
            "content": string(
                "Message text (Discord markdown), up to 2000 characters",
                max_length=2000,
                examples=["Design review moved to 10:00"],
            ),
            "embeds": array(
                "Up to 10 rich embeds",
                _embed,
                max_items=10,
                examples=[[{"title": "Design review", "description": "Moved to 10:00", "color": 0x5865F2}]],
            ),
        },
        ("channel_id",),
        anyOf=[{"required": ["content"]}, {"required": ["embeds"]}],
        examples=[{"channel_id": "1234567890123456789", "content": "Design review moved to 10:00"}],
    ),
    output_schema=output_schema(
        "The created message object",
        {
            "id": string("The message's id"),
            "channel_id": string("The channel's id"),
            "content": string("The text"),
            "timestamp": string("When it was sent", format="date-time"),
            "author": obj("The bot user", closed=False),
            "embeds": array("The embeds", obj("An embed", closed=False)),
        },
        ("id", "channel_id"),
    ),
)

PROVIDER = Provider(
    type="discord",
    name="Discord",
    category="messaging",
    description="Post messages and embeds to Discord channels as a bot.",
    auth="api_key",
    docs_url="https://discord.com/developers/docs/resources/message#create-message",
    credentials=(
        CredentialField(
            name="bot_token",
            label="Bot token",
            description=(
                "The application's bot token (Developer Portal → Bot → Reset Token); sent as Authorization: Bot <token>"
            ),
            secret=True,
        ),
    ),
    base_url="https://discord.com/api/v10",
    capabilities=("proxy", "actions"),
    actions=(SEND_MESSAGE,),
)
