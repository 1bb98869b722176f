"""Slack: post messages with a bot token (Web API) and receive workspace events (Events API).

`post_message` is `chat.postMessage` (scope chat:write), sent as JSON with the bot token in
`Authorization: Bearer`. Events API requests are checked with the app's signing secret
(`X-Slack-Signature`, HMAC-SHA256 of `v0:{timestamp}:{body}`); the url_verification handshake is
answered by Connect and is not an event.
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

POST_MESSAGE = Action(
    name="post_message",
    title="Post a message",
    description=(
        "Post a message to a channel, private channel or DM the bot is in. Give text, blocks or both; with "
        "blocks, text is the notification fallback (Slack recommends always sending it)."
    ),
    input_schema=input_schema(
        {
            "channel": string(
                "Channel id (C…, G…, D…) or name; ids keep working after a rename",
                min_length=1,
                examples=["C0123456789", "#general"],
            ),
            "text": string("Message text (mrkdwn)", examples=["Design review moved to *10:00*"]),
            "blocks": array(
                "Block Kit blocks",
                obj("A Block Kit block", {"type": string("Block type, e.g. section")}, ("type",), closed=False),
                max_items=50,
                examples=[[{"type": "section", "text": {"type": "mrkdwn", "text": "Design review moved to *10:00*"}}]],
            ),
            "thread_ts": string(
                "Reply in the thread of this parent message (its ts)",
                pattern=r"^\d+\.\d+$",
                examples=["1712345678.123456"],
            ),
        },
        ("channel",),
        anyOf=[{"required": ["text"]}, {"required": ["blocks"]}],
        examples=[{"channel": "C0123456789", "text": "Design review moved to 10:00"}],
    ),
    output_schema=output_schema(
        "Slack's answer",
        {
            "ok": boolean("true on success (failures answer ok false with an error code)"),
            "channel": string("The channel's id"),
            "ts": string("The new message's timestamp, its id within the channel"),
            "message": obj("The message as posted", closed=False),
        },
        ("ok", "channel", "ts"),
    ),
)

PROVIDER = Provider(
    type="slack",
    name="Slack",
    category="messaging",
    description="Post to Slack channels as a bot and start flows from messages and mentions in a workspace.",
    auth="api_key",
    docs_url="https://docs.slack.dev/reference/methods/chat.postMessage",
    credentials=(
        CredentialField(
            name="bot_token",
            label="Bot token",
            description="The app's Bot User OAuth Token (xoxb-…), with the chat:write scope",
            secret=True,
        ),
        CredentialField(
            name="signing_secret",
            label="Signing secret",
            description="The app's signing secret (Basic Information → App Credentials), to verify Events API requests",
            secret=True,
            required=False,
        ),
    ),
    base_url="https://slack.com/api",
    capabilities=("proxy", "actions", "webhooks", "triggers"),
    actions=(POST_MESSAGE,),
    webhook_events=(
        EventType(name="message", description="A message was posted in a channel or DM the bot is in"),
        EventType(name="app_mention", description="Someone mentioned the bot (@app) in a message"),
        EventType(name="reaction_added", description="A reaction was added to a message"),
    ),
)
