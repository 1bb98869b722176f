"""Idempotency-Key: a retried POST or PATCH answers what the first one did, without redoing it.

Agents retry after timeouts and dropped connections; a retry that books a second meeting is the
bug this prevents. The first answer for a (key holder, key) is kept for 24 hours. The same key
with another method, path or body is a client bug and is refused (422, naming what differs),
never silently answered with the first request's result. While the first request is still
running a retry waits for its answer (the front door polls `begin`) and gets 409
`idempotency_in_progress` if it does not come in time. A key left running by a server process
that has since stopped is taken over by the retry: that request never answered. Kept answers
are encrypted with the server's secret box: some carry a secret shown only once (a new API key,
a feed token's URL), and a copied database must not give them away.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from chronary.crypto import SecretBox
from chronary.errors import IdempotencyMismatch, ValidationError
from chronary.store import idempotency as store
from chronary.store.db import Tx
from chronary.store.rows import dumps, loads

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
TTL_SECONDS = 24 * 3600
STALE_SECONDS = 300  # a request of this process still "running" after this long died without an answer
# what a replay repeats of the first answer (never cookies, dates or the request id)
KEPT_HEADERS = frozenset({"content-type", "location", "etag", "retry-after"})


@dataclass(frozen=True)
class Fingerprint:
    """What a request was, to tell a true retry from a reused key (no values kept)."""

    method: str
    target: str
    body_hash: str
    fields: dict[str, str] | None  # per top-level field of a JSON object body


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Begun:
    """This request holds the key: run it, then `finish` or `release`."""


@dataclass(frozen=True)
class Running:
    """Another request with this key has not answered yet."""


Outcome = Begun | Running | Answer


def check_key(value: str) -> str:
    """The header's value if it is 1–255 visible ASCII characters; else a 400 naming it."""
    if not value or len(value) > MAX_KEY_LENGTH or not all(0x21 <= ord(c) <= 0x7E for c in value):
        raise ValidationError(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} visible ASCII characters (a UUID is a good choice)", HEADER
        )
    return value


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(method: str, target: str, body: bytes) -> Fingerprint:
    """Bodies compare as JSON (key order and whitespace don't make a different request)."""
    try:
        parsed = json.loads(body) if body.strip() else None
    except ValueError:
        return Fingerprint(method, target, _digest(body), None)
    canonical = json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
    fields = None
    if isinstance(parsed, dict):
        fields = {
            name: _digest(json.dumps(value, sort_keys=True, separators=(",", ":")).encode())
            for name, value in parsed.items()
        }
    return Fingerprint(method, target, _digest(canonical), fields)


def _mismatch(row: dict[str, Any], fp: Fingerprint) -> str | None:
    """What differs from the key's first request, in words; None for a true retry."""
    if (row["method"], row["target"]) != (fp.method, fp.target):
        return f"it was first used for {row['method']} {row['target']}, not {fp.method} {fp.target}"
    if row["body_hash"] == fp.body_hash:
        return None
    first, now = loads(row["fields"]), fp.fields
    if isinstance(first, dict) and now is not None:
        changed = sorted(name for name in first.keys() | now.keys() if first.get(name) != now.get(name))
        return f"it was first used with a different body (fields that differ: {', '.join(changed)})"
    return "it was first used with a different body"


def begin(tx: Tx, holder: str, key: str, fp: Fingerprint, owner: str, now: int, box: SecretBox) -> Outcome:
    """Take the key, or say what the earlier request with it left: its answer, or still running."""
    store.prune(tx.conn, now)
    row = store.get(tx.conn, holder, key)
    if row is not None and row["expires_at"] > now:
        problem = _mismatch(row, fp)
        if problem is not None:
            raise IdempotencyMismatch(f"This {HEADER} can't be reused: {problem}", HEADER)
        if row["state"] == "done":
            headers = [(str(name), str(value)) for name, value in loads(row["headers"]) or []]
            return Answer(int(row["status"]), headers, _open(box, row["body"]))
        abandoned = row["owner"] != owner or now - int(row["created_at"]) > STALE_SECONDS
        if not abandoned:
            return Running()
    store.claim(
        tx.conn,
        {
            "holder": holder,
            "key": key,
            "method": fp.method,
            "target": fp.target,
            "body_hash": fp.body_hash,
            "fields": dumps(fp.fields),
            "owner": owner,
            "created_at": now,
            "expires_at": now + TTL_SECONDS,
        },
    )
    return Begun()


def worth_keeping(status: int) -> bool:
    """Answers a retry must see again: successes and the client's own errors. A 5xx or a 429 said
    nothing about the request itself, so its key is released and the retry runs it."""
    return status < 500 and status != 429


def finish(tx: Tx, holder: str, key: str, owner: str, answer: Answer, box: SecretBox) -> None:
    kept = [(name, value) for name, value in answer.headers if name.lower() in KEPT_HEADERS]
    store.finish(tx.conn, holder, key, owner, answer.status, kept, _seal(box, answer.body))


def _seal(box: SecretBox, body: bytes) -> bytes:
    return box.encrypt(body.decode("latin-1")).encode("ascii")  # latin-1: any bytes round-trip


def _open(box: SecretBox, sealed: bytes | None) -> bytes:
    return box.decrypt(bytes(sealed).decode("ascii")).encode("latin-1") if sealed else b""


def release(tx: Tx, holder: str, key: str, owner: str) -> None:
    store.release(tx.conn, holder, key, owner)
