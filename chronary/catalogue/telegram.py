"""Telegram: send messages as a bot and receive its updates (Bot API).

Methods are called at `{base_url}/bot<token>/<method>`, so the token travels in the path, never in
a header. `send_message` is sendMessage; Telegram answers `{"ok": true, "result": Message}` and the
action answers the Message. Updates arrive at the webhook set with setWebhook; its `secret_token`
comes back in the `X-Telegram-Bot-Api-Secret-Token` header of every delivery.
"""

from __future__ import annotations

from chronary.catalogue import (
    Action,
    CredentialField,
    EventType,
    Provider,
    boolean,
    input_schema,
    integer,
    obj,
    output_schema,
    string,
)

SEND_MESSAGE = Action(
    name="send_message",
    title="Send a message",
    description="Send a text message to a user, group or channel the bot can write to.",
    input_schema=input_schema(
        {
            "chat_id": {
                "type": ["integer", "string"],
                "description": "The chat's id (integer; groups are negative) or a channel's @username",
                "examples": [123456789, "@chronary_updates"],
            },
            "text": string(
                "Message text, 1–4096 characters after entity parsing",
                min_length=1,
                max_length=4096,
                examples=["Design review moved to 10:00"],
            ),
            "parse_mode": string(
                "How to read formatting in text", enum=["MarkdownV2", "HTML", "Markdown"], examples=["HTML"]
            ),
            "disable_notification": boolean(
                "Send silently: users get a notification without sound", default=False, examples=[True]
            ),
        },
        ("chat_id", "text"),
        examples=[{"chat_id": 123456789, "text": "Design review moved to <b>10:00</b>", "parse_mode": "HTML"}],
    ),
    output_schema=output_schema(
        "The sent Message",
        {
            "message_id": integer("The message's id within the chat"),
            "date": integer("Unix time it was sent"),
            "chat": obj("The chat (id, type, title or username)", closed=False),
            "text": string("The text"),
        },
        ("message_id", "date", "chat"),
    ),
)

PROVIDER = Provider(
    type="telegram",
    name="Telegram",
    category="messaging",
    description="Send Telegram messages as a bot and start flows from messages and button presses it receives.",
    auth="api_key",
    docs_url="https://core.telegram.org/bots/api",
    credentials=(
        CredentialField(
            name="bot_token",
            label="Bot token",
            description="The token @BotFather issued (123456789:AA…)",
            secret=True,
        ),
        CredentialField(
            name="webhook_secret",
            label="Webhook secret token",
            description="1–256 characters A-Z a-z 0-9 _ -, given to setWebhook as secret_token to verify deliveries",
            secret=True,
            required=False,
        ),
    ),
    base_url="https://api.telegram.org",
    capabilities=("proxy", "actions", "webhooks", "triggers"),
    actions=(SEND_MESSAGE,),
    # the kinds of Update (each carries exactly one of these fields)
    webhook_events=(
        EventType(name="message", description="A new message to the bot: text, photo, sticker, …"),
        EventType(name="edited_message", description="A message the bot knows was edited"),
        EventType(name="channel_post", description="A new post in a channel the bot is in"),
        EventType(name="callback_query", description="A user pressed an inline keyboard button"),
    ),
)
