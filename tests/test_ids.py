"""Ids: a known prefix and a 26-digit ULID body (Crockford base32) that sorts by creation."""

from __future__ import annotations

import threading
import time

import pytest

from chronary import ids

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _value(body: str) -> int:
    value = 0
    for char in body:
        value = value * 32 + ALPHABET.index(char)
    return value


def test_the_body_is_the_millisecond_then_80_random_bits() -> None:
    before = int(time.time() * 1000)
    made = ids.new_id("evt")
    after = int(time.time() * 1000)
    prefix, _, body = made.partition("_")
    assert prefix == "evt" and len(body) == 26 and set(body) <= set(ALPHABET)
    assert before <= _value(body) >> 80 <= after


def test_ids_made_in_one_millisecond_still_sort_in_creation_order() -> None:
    made = [ids.new_id("cal") for _ in range(5000)]
    assert made == sorted(made) and len(set(made)) == len(made)
    values = [_value(m[4:]) for m in made]
    same_ms = [(a, b) for a, b in zip(values, values[1:], strict=False) if a >> 80 == b >> 80]
    assert same_ms and all(b == a + 1 for a, b in same_ms)  # the random part counts up within a millisecond


def test_threads_never_make_the_same_id() -> None:
    out: list[list[str]] = [[] for _ in range(4)]

    def make(i: int) -> None:
        out[i].extend(ids.new_id("whe") for _ in range(3000))

    threads = [threading.Thread(target=make, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [m for chunk in out for m in chunk]
    assert len(set(every)) == len(every)


def test_digits_round_trip_for_every_value_range() -> None:
    for ms, rand in [(0, 0), (1, 1), ((1 << 48) - 1, (1 << 80) - 1), (1_900_000_000_000, 12345), (31, 32)]:
        assert _value(ids._body(ms, rand)) == ms << 80 | rand


def test_unknown_prefixes_are_refused() -> None:
    with pytest.raises(ValueError):
        ids.new_id("nope")
    assert ids.has_prefix(ids.new_id("ftk"), "ftk") and not ids.has_prefix("ftk_", "ftk")
