"""OpenAPI as strict as the server: request bodies that refuse unknown fields say so.

Every request body is an `Input` struct (`forbid_unknown_fields=True`); Litestar's struct schema
plugin does not read that option, so this subclass adds `additionalProperties: false` to exactly
those components. It extends Litestar's own plugin (not public API); tests/api/test_openapi.py
pins the result, so a Litestar change that breaks it fails loudly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Litestar
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.enums import ParamType
from litestar.openapi.spec import OpenAPIType, Operation, Parameter, Schema
from litestar.routes import HTTPRoute
from litestar.typing import FieldDefinition


class ClosedStructSchemaPlugin(StructSchemaPlugin):
    """Struct schemas for bodies that forbid unknown fields, with `additionalProperties: false`."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        if not super().is_plugin_supported_field(field_definition):
            return False
        config = getattr(field_definition.type_, "__struct_config__", None)
        return bool(getattr(config, "forbid_unknown_fields", False))

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: Any) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        schema.additional_properties = False
        return schema


_IDEMPOTENCY_HEADER = Parameter(
    name="Idempotency-Key",
    param_in=ParamType.HEADER,
    required=False,
    description=(
        "Makes a retry safe: the first answer for this key is kept 24 hours (per API key) and a retry with the "
        "same key and body gets that answer again (header `Idempotent-Replayed: true`) without doing the work "
        "twice. While the first request still runs, a retry waits for it, or gets 409 `idempotency_in_progress`; "
        "the same key with another method, path or body is 422 `idempotency_mismatch`, naming what differs."
    ),
    schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=255),
)


@dataclass
class IdempotentOperation(Operation):
    """An operation that documents the Idempotency-Key header (api/_idempotency.py honours it)."""

    def __post_init__(self) -> None:
        self.parameters = [*(self.parameters or []), _IDEMPOTENCY_HEADER]


def document_idempotency(app: Litestar, prefixes: tuple[str, ...]) -> None:
    """Give every POST and PATCH under `prefixes` the Idempotency-Key header in the OpenAPI document
    (set on the registered handlers, so the document is still built only when first asked for)."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith(prefixes):
            continue
        for handler in route.route_handlers:
            if handler.http_methods & {"POST", "PATCH"}:
                handler.operation_class = IdempotentOperation
