"""Permission keys of the Connect API, granted per API key.

Org keys hold every permission unless created with a narrower list; agent keys hold none unless
they are granted some. An endpoint that needs one answers 403 `forbidden` naming it.
"""

from __future__ import annotations

PERMISSIONS: tuple[str, ...] = (
    "templates.view",
    "templates.write",
    "actions.view",
    "actions.execute",
    "triggers.view",
    "triggers.write",
    "flows.view",
    "flows.write",
    "task_history.view",
    "records.view",
    "records.write",
    "tables.view",
    "tables.write",
    "providers.view",
    "providers.write",
    "proxy.execute",
)


def defaults(is_org: bool) -> frozenset[str]:
    return frozenset(PERMISSIONS) if is_org else frozenset()
