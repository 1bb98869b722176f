"""The Connect API front door (`/connect/v1`): Calimatic Connect's paths and names, the same API
keys, error envelope and OpenAPI document as `/v1`. Each module exports `ROUTES` (behind the key
guard) and may export `PUBLIC_ROUTES` (full paths, no key: the inbound URLs)."""

from __future__ import annotations

from typing import Any

from chronary.connect_api import automation, calls, providers, records, tables, webhooks

_MODULES = (providers, calls, webhooks, automation, tables, records)


def routes() -> list[Any]:
    return [r for m in _MODULES for r in m.ROUTES]


def public_routes() -> list[Any]:
    return [r for m in _MODULES for r in getattr(m, "PUBLIC_ROUTES", [])]
