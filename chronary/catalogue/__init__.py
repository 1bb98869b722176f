"""The Connect API's provider catalogue, as data: what each outside system is and what it offers.

One module per provider lives in this package and exports `PROVIDER`, a `Provider`; adding a
provider is adding one module (the registry finds it with pkgutil, the PyInstaller spec collects
every submodule of `chronary`). Modules whose name starts with `_` are not providers.

Everything here is a msgspec Struct so `/connect/v1` can answer with it as it is; the structs are
frozen and their lists are tuples because the registry hands the same objects to every caller
(treat the schema dicts as read-only too). Action schemas are JSON Schema draft 2020-12 objects
built with the small helpers below (`string`, `integer`, `array`, `obj`, `input_schema`, …), so
every provider module reads as a declaration.

Capabilities:
- ``calendar_sync``: calendars of the account are mirrored into Chronary calendars (`connect_via`)
- ``proxy``: Connect can forward an authenticated raw request to `base_url`
- ``actions``: named, typed operations (`actions`)
- ``webhooks``: the provider sends the `webhook_events` over HTTP (to Connect's inbound URL; for
  ``chronary`` itself: its signed webhooks)
- ``triggers``: those events can start Connect flows (trigger subscriptions, ``trg_``). Google
  and Microsoft push notifications only wake the sync engine, whose changes reach flows as
  Chronary ``event.*`` changes, so they have ``webhooks`` without ``triggers``.

`base_url` is None where the user supplies the server (a credential field such as ``base_url``,
``server_url``, ``host`` or ``url``) and for ``chronary`` (this server).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import Any, Literal

import msgspec

Category = Literal["calendar", "notifications", "messaging", "smart_home", "email", "http", "chronary"]
Auth = Literal["oauth2", "api_key", "basic", "none"]
Capability = Literal["calendar_sync", "proxy", "webhooks", "actions", "triggers"]
FieldFormat = Literal["url", "email", "hostname", "port"]

CATEGORIES: tuple[str, ...] = ("chronary", "calendar", "email", "messaging", "notifications", "smart_home", "http")
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
Schema = dict[str, Any]


class CredentialField(msgspec.Struct, frozen=True, kw_only=True):
    """One value a user enters to connect an account (secret ones are stored encrypted, never answered)."""

    name: str
    label: str
    description: str
    secret: bool = False
    required: bool = True
    default: str | None = None
    format: FieldFormat | None = None
    choices: tuple[str, ...] | None = None  # the allowed values, when there are a few


class Action(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    title: str
    description: str
    input_schema: Schema
    output_schema: Schema


class EventType(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    description: str


class Provider(msgspec.Struct, frozen=True, kw_only=True):
    type: str
    name: str
    category: Category
    description: str
    auth: Auth
    docs_url: str
    credentials: tuple[CredentialField, ...] = ()
    base_url: str | None = None
    capabilities: tuple[Capability, ...] = ()
    actions: tuple[Action, ...] = ()
    webhook_events: tuple[EventType, ...] = ()
    connect_via: str | None = None  # the REST endpoint that connects an account, where it is not Connect itself

    def action(self, name: str) -> Action | None:
        return next((a for a in self.actions if a.name == name), None)


# --- the registry -----------------------------------------------------------------------------


def provider_modules() -> list[str]:
    """The names of this package's provider modules (every submodule not starting with `_`)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


@cache
def _registry() -> dict[str, Provider]:
    found: dict[str, Provider] = {}
    for module_name in provider_modules():
        module = importlib.import_module(f"{__name__}.{module_name}")
        provider = getattr(module, "PROVIDER", None)
        if not isinstance(provider, Provider):
            raise TypeError(f"{module.__name__} must export PROVIDER, a chronary.catalogue.Provider")
        if provider.type != module_name:
            raise ValueError(f"{module.__name__} declares type {provider.type!r}; it must match the module name")
        found[provider.type] = provider
    ordered = sorted(found.values(), key=lambda p: (CATEGORIES.index(p.category), p.type))
    return {p.type: p for p in ordered}


def all_providers() -> list[Provider]:
    """Every provider: chronary first, then by category (calendar, email, messaging, …) and type."""
    return list(_registry().values())


def get(provider_type: str) -> Provider | None:
    return _registry().get(provider_type)


def action(provider_type: str, name: str) -> Action | None:
    provider = get(provider_type)
    return provider.action(name) if provider is not None else None


# --- JSON Schema helpers for the provider modules ----------------------------------------------


def _put(schema: Schema, **keywords: Any) -> Schema:
    schema.update({k: v for k, v in keywords.items() if v is not None})
    return schema


def _typed(json_type: str, nullable: bool) -> str | list[str]:
    return [json_type, "null"] if nullable else json_type


def string(
    description: str,
    *,
    examples: list[Any] | None = None,
    format: str | None = None,
    enum: list[str] | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
    default: str | None = None,
    nullable: bool = False,
) -> Schema:
    schema: Schema = {"type": _typed("string", nullable), "description": description}
    if enum is not None:
        schema["enum"] = [*enum, None] if nullable else enum
    return _put(
        schema,
        format=format,
        minLength=min_length,
        maxLength=max_length,
        pattern=pattern,
        default=default,
        examples=examples,
    )


def integer(
    description: str,
    *,
    examples: list[Any] | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
    default: int | None = None,
    nullable: bool = False,
) -> Schema:
    schema: Schema = {"type": _typed("integer", nullable), "description": description}
    return _put(schema, minimum=minimum, maximum=maximum, default=default, examples=examples)


def boolean(description: str, *, default: bool | None = None, examples: list[Any] | None = None) -> Schema:
    return _put({"type": "boolean", "description": description}, default=default, examples=examples)


def array(
    description: str,
    items: Schema,
    *,
    examples: list[Any] | None = None,
    min_items: int | None = None,
    max_items: int | None = None,
    nullable: bool = False,
) -> Schema:
    schema: Schema = {"type": _typed("array", nullable), "description": description, "items": items}
    return _put(schema, minItems=min_items, maxItems=max_items, examples=examples)


def any_json(description: str, *, examples: list[Any] | None = None) -> Schema:
    """Any JSON value (no `type`)."""
    return _put({"description": description}, examples=examples)


def obj(
    description: str,
    properties: dict[str, Schema] | None = None,
    required: tuple[str, ...] = (),
    *,
    closed: bool = True,
    values: Schema | None = None,
    examples: list[Any] | None = None,
    nullable: bool = False,
) -> Schema:
    """A nested object: `closed` forbids properties not listed; `values` types a free-form map's values."""
    schema: Schema = {"type": _typed("object", nullable), "description": description}
    if properties is not None:
        schema["properties"] = properties
    if required:
        schema["required"] = list(required)
    if values is not None:
        schema["additionalProperties"] = values
    elif properties is not None:
        schema["additionalProperties"] = not closed
    return _put(schema, examples=examples)


def input_schema(
    properties: dict[str, Schema],
    required: tuple[str, ...] = (),
    *,
    examples: list[dict[str, Any]],
    **keywords: Any,
) -> Schema:
    """An action's input: a closed object, with at least one complete example."""
    schema: Schema = {
        "$schema": JSON_SCHEMA_DIALECT,
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }
    schema.update(keywords)  # e.g. oneOf / anyOf / minProperties
    schema["examples"] = examples
    return schema


def output_schema(description: str, properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    """An action's answer: open (a provider may add fields), the ones listed are documented."""
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "type": "object",
        "description": description,
        "properties": properties,
        "required": list(required),
        "additionalProperties": True,
    }
