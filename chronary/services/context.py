"""Who is asking, and what the answer needs to know about this server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from chronary.errors import Forbidden, NotFound
from chronary.permissions import defaults as permission_defaults

T = TypeVar("T")


@dataclass(frozen=True)
class Principal:
    """The holder of an API key: the whole org, or one agent."""

    org_id: str
    key_id: str
    agent_id: str | None = None
    permissions: frozenset[str] | None = None  # Connect API permission keys; None: the kind's defaults

    @property
    def granted(self) -> frozenset[str]:
        return permission_defaults(self.is_org) if self.permissions is None else self.permissions

    def require(self, permission: str) -> None:
        """403 naming the Connect API permission this key lacks."""
        if permission not in self.granted:
            raise Forbidden(f"This API key lacks the permission {permission!r}", "permissions")

    @property
    def is_org(self) -> bool:
        return self.agent_id is None

    def require_org(self, what: str = "this endpoint") -> None:
        if not self.is_org:
            raise Forbidden(f"An agent key cannot use {what}; use an org key (chr_sk_…)")

    def can_see_agent(self, agent_id: str | None) -> bool:
        """Agent keys see only their own agent; org-level resources (agent_id None) are org-only."""
        return self.is_org or (agent_id is not None and agent_id == self.agent_id)

    def check_agent(self, agent_id: str | None, kind: str, ident: str) -> None:
        """404 rather than 403 for someone else's data, so ids do not leak."""
        if not self.can_see_agent(agent_id):
            raise NotFound(f"No {kind} with id {ident!r}")


@dataclass(frozen=True)
class Ctx:
    principal: Principal
    base_url: str


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list operation: `items` are the resource's structs (`Page[Agent]`)."""

    items: list[T]
    total: int
    limit: int
    offset: int
