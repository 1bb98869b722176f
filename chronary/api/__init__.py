"""HTTP handlers, one module per resource, discovered by name.

Each module exports `ROUTES` (handlers mounted under `/v1`, behind API-key auth) and/or
`PUBLIC_ROUTES` (mounted at the root with no key: health, iCal feeds, OAuth callbacks).
Discovery means a new resource never edits a shared list.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any


def discover() -> tuple[list[Any], list[Any]]:
    private: list[Any] = []
    public: list[Any] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        private.extend(getattr(module, "ROUTES", []))
        public.extend(getattr(module, "PUBLIC_ROUTES", []))
    return private, public
