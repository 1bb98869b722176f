"""The org's provider catalogue: the built-in providers (chronary/catalogue) plus its custom ones.

A custom provider (`POST /connect/v1/providers`) is any HTTP API given a type, a base URL and how
to send the key; it is served as a `Provider` of category http with the proxy and the generic
`request` action, and runs on the `http` connector.
"""

from __future__ import annotations

from typing import Any

from chronary import catalogue
from chronary.catalogue import CredentialField, Provider
from chronary.catalogue import http as http_catalogue
from chronary.errors import Conflict, NotFound, ValidationError
from chronary.outbound import OutboundError, parse_url
from chronary.schemas.connect import CustomProviderCreate
from chronary.services.context import Principal
from chronary.store import connect as store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms

CUSTOM_DOCS = "https://www.rfc-editor.org/rfc/rfc9110"


def custom_provider(row: dict[str, Any]) -> Provider:
    auth = row["auth"]
    style = auth.get("style", "bearer")
    credentials: tuple[CredentialField, ...] = ()
    if style != "none":
        credentials = (
            CredentialField(
                name="api_key",
                label="API key",
                description=f"The key {row['name']} issued; sent as {describe_auth(auth)}",
                secret=True,
            ),
        )
    return Provider(
        type=row["type"],
        name=row["name"],
        category="http",
        description=row["description"] or f"{row['name']}: a custom HTTP API at {row['base_url']}",
        auth="none" if style == "none" else "api_key",
        docs_url=row["docs_url"] or CUSTOM_DOCS,
        credentials=credentials,
        base_url=row["base_url"],
        capabilities=("proxy", "actions", "webhooks", "triggers"),
        actions=http_catalogue.PROVIDER.actions,
        webhook_events=http_catalogue.PROVIDER.webhook_events,
    )


def describe_auth(auth: dict[str, Any]) -> str:
    style = auth.get("style", "bearer")
    if style == "header":
        return f"the {auth.get('header_name') or 'X-API-Key'} header"
    if style == "query":
        return f"the {auth.get('query_param') or 'api_key'} query parameter"
    return "Authorization: Bearer" if style == "bearer" else "nothing"


def is_custom(tx: Tx, org_id: str, provider_type: str) -> bool:
    return catalogue.get(provider_type) is None and store.get_provider(tx.conn, org_id, provider_type) is not None


def custom_row(tx: Tx, org_id: str, provider_type: str) -> dict[str, Any] | None:
    return store.get_provider(tx.conn, org_id, provider_type)


def get(tx: Tx, org_id: str, provider_type: str) -> Provider:
    """The provider of that type for this org, or 404 "Provider not found"."""
    found = catalogue.get(provider_type)
    if found is not None:
        return found
    row = store.get_provider(tx.conn, org_id, provider_type)
    if row is None:
        raise NotFound("Provider not found", "type")
    return custom_provider(row)


def all_for(tx: Tx, org_id: str) -> list[Provider]:
    return [*catalogue.all_providers(), *(custom_provider(r) for r in store.list_providers(tx.conn, org_id))]


def check_base_url(url: str) -> None:
    """Syntax only (no network, fine inside a transaction); the API layer checks the target too."""
    try:
        target = parse_url(url)
    except OutboundError as exc:
        raise ValidationError(f"baseUrl is not usable: {exc.reason}", "baseUrl") from None
    if target.scheme not in ("http", "https"):
        raise ValidationError("baseUrl must be an http(s) URL", "baseUrl")
    if "?" in url or "#" in url:
        raise ValidationError("baseUrl may not carry a query or fragment", "baseUrl")


def create(tx: Tx, principal: Principal, data: CustomProviderCreate) -> Provider:
    principal.require("providers.write")
    if catalogue.get(data.type) is not None:
        raise Conflict(f"{data.type} is a built-in provider; choose another type", "type")
    if store.get_provider(tx.conn, principal.org_id, data.type) is not None:
        raise Conflict(f"A custom provider {data.type} already exists", "type")
    check_base_url(data.base_url)
    auth: dict[str, Any] = {"style": data.auth.style}
    if data.auth.style == "header":
        auth["header_name"] = data.auth.header_name or "X-API-Key"
    elif data.auth.header_name is not None:
        raise ValidationError("auth.headerName goes with auth.style header", "auth.headerName")
    if data.auth.style == "query":
        auth["query_param"] = data.auth.query_param or "api_key"
    elif data.auth.query_param is not None:
        raise ValidationError("auth.queryParam goes with auth.style query", "auth.queryParam")
    now = iso_ms(tx.now)
    row: dict[str, Any] = {
        "org_id": principal.org_id,
        "type": data.type,
        "name": data.name,
        "description": data.description,
        "base_url": data.base_url.rstrip("/"),
        "auth": auth,
        "docs_url": data.docs_url,
        "created_at": now,
        "updated_at": now,
    }
    store.create_provider(tx.conn, row)
    return custom_provider(row)


def delete(tx: Tx, principal: Principal, provider_type: str) -> None:
    """Forget a custom provider; refused while connections to it exist (disconnect them first)."""
    principal.require("providers.write")
    if catalogue.get(provider_type) is not None:
        raise ValidationError(f"{provider_type} is a built-in provider and cannot be deleted", "type")
    if store.get_provider(tx.conn, principal.org_id, provider_type) is None:
        raise NotFound("Provider not found", "type")
    connected = store.count_connections(tx.conn, principal.org_id, provider_type)
    if connected:
        raise Conflict(
            f"{provider_type} still has {connected} connection(s); "
            f"POST /connect/v1/providers/{provider_type}/disconnect first",
            "type",
        )
    store.delete_provider(tx.conn, principal.org_id, provider_type)
