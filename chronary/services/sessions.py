"""Signing in to the web UI: one-time links and pasted API keys become cookie sessions.

A sign-in link (`chronary serve` prints one, `chronary login-link` makes another) carries a random
token valid for 15 minutes and usable once; it signs in as the org, through the org's
"web sign-in" key (an ordinary org key whose secret nobody holds: revoking it ends every session
that came from a link). Pasting an API key signs in as that key: an agent key sees only its agent,
exactly as on the API. Either way the browser gets an HttpOnly, SameSite=Strict cookie holding a
random session id (only its SHA-256 is stored) and the UI gets a CSRF token it must send as
`X-CSRF-Token` on every write. Sessions end after 12 hours without use, after 7 days at most, on
sign-out, or when their key is revoked. Failed sign-ins are rate limited per client address.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from chronary.errors import RateLimited, Unauthorized
from chronary.services import keys as key_service
from chronary.services.context import Principal
from chronary.store import sessions as store
from chronary.store.db import Tx
from chronary.timeutil import iso_ms, to_ts

LINK_TTL = 15 * 60
SESSION_IDLE = 12 * 3600
SESSION_MAX = 7 * 86400
TOUCH_EVERY = 60  # seconds between idle-timer updates of one session
WEB_KEY_NAME = "web sign-in"
COOKIE = "chronary_session"
CSRF_HEADER = "x-csrf-token"
FAILED_PER_MINUTE = 10  # failed sign-ins one client address may make a minute


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str
    expires_ts: int


def create_login_link(tx: Tx, org_id: str, base_url: str) -> tuple[str, int]:
    """A new one-time sign-in URL and its expiry (unix seconds)."""
    token = secrets.token_urlsafe(32)
    now = to_ts(tx.now)
    store.prune(tx.conn, now)
    store.add_login_token(
        tx.conn,
        {"token_hash": _hash(token), "org_id": org_id, "expires_ts": now + LINK_TTL, "created_at": iso_ms(tx.now)},
    )
    return f"{base_url.rstrip('/')}/login?token={token}", now + LINK_TTL


def _web_key_id(tx: Tx, org_id: str) -> str:
    row = store.web_key(tx.conn, org_id, WEB_KEY_NAME)
    if row is not None:
        return str(row["id"])
    return key_service.mint(tx, org_id, WEB_KEY_NAME, None).id  # its secret is dropped here: nobody holds it


def _open(tx: Tx, key_id: str) -> tuple[str, str]:
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    now = to_ts(tx.now)
    store.add_session(
        tx.conn,
        {
            "id_hash": _hash(session_id),
            "key_id": key_id,
            "csrf": csrf,
            "created_at": iso_ms(tx.now),
            "expires_ts": now + SESSION_MAX,
            "idle_until_ts": now + SESSION_IDLE,
        },
    )
    return session_id, csrf


def sign_in_with_link(tx: Tx, token: str) -> str:
    """The new session id for a sign-in link's token; Unauthorized when unknown, used or expired."""
    row = store.take_login_token(tx.conn, _hash(token)) if token else None
    if row is None or row["expires_ts"] <= to_ts(tx.now):
        raise Unauthorized("This sign-in link is unknown, already used or expired; run `chronary login-link`")
    return _open(tx, _web_key_id(tx, row["org_id"]))[0]


def sign_in_with_key(tx: Tx, api_key: str) -> str:
    """The new session id for a pasted API key (its own scope); Unauthorized as the API says."""
    principal = key_service.authenticate(tx, api_key.strip())
    return _open(tx, principal.key_id)[0]


def resolve(tx: Tx, session_id: str | None) -> Session | None:
    """The live session for a cookie value, its idle timer moved on; None when there is none."""
    if not session_id or len(session_id) > 200:
        return None
    id_hash = _hash(session_id)
    row = store.session(tx.conn, id_hash)
    now = to_ts(tx.now)
    if row is None or row["revoked_at"] is not None or row["expires_ts"] <= now or row["idle_until_ts"] <= now:
        return None
    if row["idle_until_ts"] - now < SESSION_IDLE - TOUCH_EVERY:
        store.touch(tx.conn, id_hash, now + SESSION_IDLE)
    principal = Principal(
        org_id=row["org_id"], key_id=row["key_id"], agent_id=row["agent_id"], permissions=key_service.granted(row)
    )
    return Session(principal, row["csrf"], row["expires_ts"])


def csrf_ok(session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf, presented or "")


def sign_out(tx: Tx, session_id: str | None) -> None:
    if session_id:
        store.delete_session(tx.conn, _hash(session_id))


class FailedSignIns:
    """Failed sign-ins per client address in the last minute (in memory: a restart forgets them,
    which costs a guesser nothing worth having: 10 guesses of a 256-bit key)."""

    def __init__(self, per_minute: int = FAILED_PER_MINUTE) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._seen.get(client, []) if now - t < 60]
            self._seen[client] = recent
            if len(recent) >= self.per_minute:
                wait = int(60 - (now - recent[0])) + 1
                raise RateLimited(f"Too many failed sign-ins from this address; try again in {wait} s", wait)

    def failed(self, client: str) -> None:
        with self._lock:
            self._seen.setdefault(client, []).append(time.monotonic())
