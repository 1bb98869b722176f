"""Connect's adapters for API-key providers, one module per provider (see `base`).

`load(type)` answers the connector class of a catalogue provider type; custom providers (made
with `POST /connect/v1/providers`) run on the generic `http` connector. `client(settings)` is
the guarded httpx client every connector call uses.
"""

from __future__ import annotations

import importlib

import httpx

from chronary.config import Settings
from chronary.connectors.base import Connector
from chronary.outbound import USER_AGENT, GuardedTransport

CONNECTOR_MODULES = {
    "http": "http",
    "ntfy": "ntfy",
    "slack": "slack",
    "discord": "discord",
    "telegram": "telegram",
    "home_assistant": "home_assistant",
    "smtp": "smtp",
}


def has(provider_type: str) -> bool:
    return provider_type in CONNECTOR_MODULES


def load(provider_type: str) -> type[Connector]:
    module = importlib.import_module(f"{__name__}.{CONNECTOR_MODULES[provider_type]}")
    found: type[Connector] = module.Connector
    return found


def client(settings: Settings) -> httpx.AsyncClient:
    """Guarded (never this server, never a rebinding address), no redirects, no env proxies."""
    return httpx.AsyncClient(
        transport=GuardedTransport(settings),
        timeout=httpx.Timeout(float(settings.connect_proxy_timeout_seconds)),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )
