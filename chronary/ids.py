"""Prefixed, sortable ids (`evt_01J…`): a ULID body so ids sort by creation time."""

from __future__ import annotations

import secrets
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0

PREFIXES = frozenset(
    {"org", "agt", "cal", "evt", "key", "whk", "whe", "dlv", "isub", "con", "prp", "rul", "bkp", "req"}
    | {"rec", "flw", "trg", "exe", "tbl", "row"}  # Connect: records, flows, triggers, executions, tables, rows
    | {"run"}  # one server process's run (which process holds an Idempotency-Key)
    | {"ftk"}  # a per-device feed token (issue 21)
)


# two base32 digits per entry: a 26-digit ULID body is 13 lookups instead of 26 divisions
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_SHIFTS = tuple(range(120, -1, -10))  # 13 pairs of 5-bit digits, most significant first


def _body(ms: int, rand: int) -> str:
    """The 26 digits of a ULID: 48 bits of milliseconds (10 digits), then 80 random bits (16)."""
    value = (ms % (1 << 50)) << 80 | rand % (1 << 80)
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in _SHIFTS])


def new_id(prefix: str) -> str:
    """A new id; monotonic within one process even when many are made in the same millisecond."""
    global _last_ms, _last_rand
    if prefix not in PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    with _lock:
        ms = int(time.time() * 1000)
        if ms <= _last_ms:
            ms = _last_ms
            rand = _last_rand + 1
        else:
            rand = secrets.randbits(80)
        _last_ms, _last_rand = ms, rand
    return f"{prefix}_{_body(ms, rand)}"


def has_prefix(value: str, prefix: str) -> bool:
    return isinstance(value, str) and value.startswith(prefix + "_") and len(value) > len(prefix) + 1
