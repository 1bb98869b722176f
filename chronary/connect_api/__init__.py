"""The Connect API front door (`/connect/v1`): Calimatic Connect's paths and names, the same API
keys, error envelope and OpenAPI document as `/v1`. Each module exports `ROUTES`."""

from __future__ import annotations

from typing import Any

from chronary.connect_api import providers


def routes() -> list[Any]:
    return [*providers.ROUTES]
