"""The OAuth connection flow (`POST /v1/connections/start` → provider consent → `/callback`).

The request shapes, validation and answers are final; the provider side (authorization URL,
code exchange, token storage) arrives with each OAuth provider. Until a provider is configured
the flow stops at `start` with an answer that says so, and no `state` can exist, so every
callback is refused as unknown.
"""

from __future__ import annotations

from chronary.errors import ValidationError
from chronary.schemas.connections import ConnectionStart, ConnectionStartResult
from chronary.services.agents import load as load_agent
from chronary.services.context import Principal
from chronary.services.validation import check_url
from chronary.store import connections as con_store
from chronary.store.db import Tx

PROVIDER_LABELS = {"google": "Google Calendar", "microsoft": "Microsoft 365 / Outlook"}


def start(tx: Tx, principal: Principal, data: ConnectionStart) -> ConnectionStartResult:
    principal.require_org("connections")
    check_url(data.return_url, "return_url")
    load_agent(tx, principal, data.agent_id)
    if data.connection_id is not None:
        existing = con_store.get(tx.conn, data.connection_id)
        if existing is None or existing["org_id"] != principal.org_id:
            raise ValidationError(f"No connection with id {data.connection_id!r}", "connection_id")
        if existing["provider"] != data.provider:
            raise ValidationError(
                f"Connection {data.connection_id} is a {existing['provider']} connection, not {data.provider}",
                "connection_id",
            )
    raise ValidationError(
        f"{PROVIDER_LABELS[data.provider]} connections are not available on this server yet: it has no OAuth "
        f"client for {data.provider}. iCloud and CalDAV accounts connect with POST /v1/connections.",
        "provider",
    )


def finish(code: str | None, state: str | None) -> None:
    """The provider's redirect back; the state is the only credential, so an unknown one ends here."""
    if not state:
        raise ValidationError("state is required", "state")
    if not code:
        raise ValidationError("code is required", "code")
    raise ValidationError("Unknown or expired state: start again with POST /v1/connections/start", "state")
