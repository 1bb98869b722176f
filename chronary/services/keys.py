"""API keys: minting, hashing, authenticating, revoking."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from chronary import ids, permissions
from chronary.errors import Forbidden, NotFound, Unauthorized, ValidationError
from chronary.schemas.keys import ApiKey, ApiKeyWithSecret
from chronary.services.context import Page, Principal
from chronary.store import agents as agent_store
from chronary.store import keys as key_store
from chronary.store import orgs as org_store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms

ORG_PREFIX = "chr_sk_"
AGENT_PREFIX = "chr_ak_"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def granted(row: dict[str, Any]) -> frozenset[str]:
    stored = row.get("permissions")
    return permissions.defaults(row["agent_id"] is None) if stored is None else frozenset(stored)


def present(row: dict[str, Any]) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        agent_id=row["agent_id"],
        prefix=row["prefix"],
        last4=row["last4"],
        created_at=row["created_at"],
        permissions=sorted(granted(row)),
    )


def mint(tx: Tx, org_id: str, name: str, agent_id: str | None, grants: list[str] | None = None) -> ApiKeyWithSecret:
    """Create a key; the returned struct is the only place the secret ever appears."""
    prefix = AGENT_PREFIX if agent_id else ORG_PREFIX
    secret = prefix + secrets.token_urlsafe(32)
    row: dict[str, Any] = {
        "id": ids.new_id("key"),
        "org_id": org_id,
        "agent_id": agent_id,
        "name": name,
        "prefix": prefix,
        "last4": secret[-4:],
        "hash": digest(secret),
        "created_at": iso_ms(tx.now),
    }
    if grants is not None:  # NULL (no column value) means the defaults of the key's kind
        row["permissions"] = sorted(set(grants))
    key_store.create(tx.conn, row)
    return ApiKeyWithSecret(
        id=row["id"],
        name=name,
        agent_id=agent_id,
        prefix=prefix,
        last4=row["last4"],
        created_at=row["created_at"],
        permissions=sorted(granted(row)),
        secret=secret,
    )


def create(
    tx: Tx, principal: Principal, name: str, agent_id: str | None, grants: list[str] | None = None
) -> ApiKeyWithSecret:
    principal.require_org("key management")
    if agent_id is not None and agent_store.get(tx.conn, agent_id) is None:
        raise ValidationError(f"agent_id {agent_id!r} does not exist", "agent_id")
    missing = sorted(set(grants or ()) - principal.granted)
    if missing:  # a key can hand out only what it holds
        raise Forbidden(f"This API key cannot grant {', '.join(missing)}: it does not hold them", "permissions")
    return mint(tx, principal.org_id, name, agent_id, grants)


def list_(tx: Tx, principal: Principal, agent_id: str | None, limit: int, offset: int) -> Page[ApiKey]:
    principal.require_org("key management")
    rows, total = key_store.list_active(tx.conn, agent_id, limit, offset)
    return Page([present(r) for r in rows], total, limit, offset)


def revoke(tx: Tx, principal: Principal, key_id: str) -> None:
    principal.require_org("key management")
    row = key_store.get(tx.conn, key_id)
    if row is None or row["revoked_at"] is not None:
        raise NotFound(f"No API key with id {key_id!r}")
    key_store.revoke(tx.conn, key_id, iso_ms(tx.now))


def authenticate(tx: Tx, presented: str | None) -> Principal:
    if presented is None:
        raise Unauthorized("Missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'")
    if not presented:
        raise Unauthorized("Malformed credentials: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'")
    if not (presented.startswith(ORG_PREFIX) or presented.startswith(AGENT_PREFIX)) or len(presented) > 200:
        raise Unauthorized("Malformed API key")
    # Looking up by SHA-256 leaks nothing useful through timing: a guesser controls the key,
    # not its hash, so an index probe reveals no prefix of any stored secret.
    row = key_store.by_hash(tx.conn, digest(presented))
    if row is None:
        raise Unauthorized("Unknown API key")
    if row["revoked_at"] is not None:
        raise Unauthorized("This API key has been revoked")
    return Principal(org_id=row["org_id"], key_id=row["id"], agent_id=row["agent_id"], permissions=granted(row))


class KeyCache:
    """Authenticated keys (SHA-256 of the presented key → its Principal) for one stamp of the
    database (`Database.stamp`, which moves with every commit that changed api_keys, agents or
    orgs, in any process): a request whose key is here skips the lookup on a reader thread. An
    entry is used only under the stamp it was filled under, so a revoked key stops working with
    the commit that revoked it; the stamp must be read before the lookup that fills it. Only
    successes are kept, at most `max_entries` (then it starts over)."""

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self._stamp: object = None
        self._entries: dict[str, Principal] = {}

    def get(self, key_digest: str, stamp: object) -> Principal | None:
        if stamp is None or stamp != self._stamp:
            return None
        return self._entries.get(key_digest)

    def put(self, key_digest: str, principal: Principal, stamp: object) -> None:
        if stamp is None:
            return
        if stamp != self._stamp or len(self._entries) >= self.max_entries:
            self._entries = {}
            self._stamp = stamp
        self._entries[key_digest] = principal


def bootstrap(tx: Tx) -> tuple[str, str | None]:
    """Create the org on a fresh database and mint its first key; (org_id, secret or None)."""
    org = org_store.get_default(tx.conn)
    if org is not None:
        return org["id"], None
    org_id = ids.new_id("org")
    org_store.create(tx.conn, {"id": org_id, "name": "default", "created_at": iso_ms(tx.now)})
    key = mint(tx, org_id, "first org key", None)
    return org_id, key.secret
