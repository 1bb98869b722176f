"""Provider adapters: CalDAV/iCloud, subscribed iCal feeds, and the OAuth providers.

Each module exports a `Provider` class implementing `chronary.providers.base.Provider`; `load`
finds it by provider name. Nothing here imports `chronary.services` (the sync engine there
depends on this package, never the other way round).
"""

from __future__ import annotations

import importlib

from chronary.providers.base import Provider, ProviderError

# provider name → module under chronary.providers that exports `Provider`
MODULES = {"icloud": "caldav", "caldav": "caldav", "ics": "ics", "google": "google", "microsoft": "microsoft"}
PASSWORD_PROVIDERS = ("icloud", "caldav")
OAUTH_PROVIDERS = ("google", "microsoft")


def load(provider_name: str) -> type[Provider]:
    """The Provider class for a provider name (`icloud`, `caldav`, `ics`, …)."""
    module_name = MODULES.get(provider_name)
    if module_name is None:
        raise ValueError(f"unknown provider {provider_name!r}")
    try:
        module = importlib.import_module(f"chronary.providers.{module_name}")
    except ModuleNotFoundError as exc:
        raise ProviderError(f"provider {provider_name} is not available in this build", retryable=False) from exc
    cls: type[Provider] = module.Provider
    return cls
