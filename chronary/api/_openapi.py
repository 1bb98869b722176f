"""OpenAPI as strict as the server: request bodies that refuse unknown fields say so.

Every request body is an `Input` struct (`forbid_unknown_fields=True`); Litestar's struct schema
plugin does not read that option, so this subclass adds `additionalProperties: false` to exactly
those components. It extends Litestar's own plugin (not public API); tests/api/test_openapi.py
pins the result, so a Litestar change that breaks it fails loudly.
"""

from __future__ import annotations

from typing import Any

from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.spec import Schema
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
