"""Poll dedup: every item fires once — shared timestamps, re-polls, vanished items, key-only items."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chronary.services.automation.poll import PollCursor, new_items, stamp

EMPTY = PollCursor(None, (), ())


def item(key: str, updated: Any, **extra: Any) -> dict[str, Any]:
    return {"id": key, "updated_at": updated, **extra}


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [i["id"] for i in items]


def primed(items: list[dict[str, Any]], **kwargs: Any) -> PollCursor:
    fired, cursor = new_items(items, EMPTY, **kwargs)
    assert fired == []
    return cursor


# --- the cursor -------------------------------------------------------------------------------------


def test_cursor_round_trips_through_json() -> None:
    cursor = PollCursor("2026-01-01T09:00:00.000000Z", ("a", "b"), ("a\x1f2026", "x"), primed=True)
    text = cursor.to_json()
    assert json.loads(text) == {
        "updated_at": "2026-01-01T09:00:00.000000Z",
        "ids_at": ["a", "b"],
        "recent_keys": ["a\x1f2026", "x"],
        "primed": True,
    }
    assert PollCursor.from_json(text) == cursor
    assert PollCursor.from_json(text.encode()) == cursor
    assert PollCursor.from_json(json.loads(text)) == cursor


def test_an_absent_cursor_is_fresh_and_a_broken_one_is_an_error() -> None:
    assert PollCursor.from_json(None) == EMPTY
    assert PollCursor.from_json("") == EMPTY
    assert EMPTY.fresh is True
    assert PollCursor(None, (), (), primed=True).fresh is False
    for bad in ["[1]", '{"updated_at": 5}', '{"ids_at": "a"}', '{"recent_keys": [1]}', "{nope"]:
        with pytest.raises(ValueError):
            PollCursor.from_json(bad)


# --- the first poll ---------------------------------------------------------------------------------


def test_the_first_poll_records_the_baseline_and_fires_nothing() -> None:
    batch = [item("a", "2026-01-01T10:00:00Z"), item("b", "2026-01-01T09:00:00Z")]
    fired, cursor = new_items(batch, EMPTY)
    assert fired == []
    assert cursor == PollCursor(
        "2026-01-01T10:00:00.000000Z",
        ("a",),
        ("b\x1f2026-01-01T09:00:00.000000Z", "a\x1f2026-01-01T10:00:00.000000Z"),
        primed=True,
    )
    assert new_items(batch, cursor)[0] == []


def test_first_run_fires_returns_everything_oldest_first() -> None:
    batch = [item("a", "2026-01-01T10:00:00Z"), item("b", "2026-01-01T09:00:00Z"), item("c", "2026-01-01T09:30:00Z")]
    fired, cursor = new_items(batch, EMPTY, first_run_fires=True)
    assert ids(fired) == ["b", "c", "a"]
    assert new_items(batch, cursor)[0] == []


def test_an_empty_first_poll_still_primes_the_cursor() -> None:
    fired, cursor = new_items([], EMPTY)
    assert fired == [] and cursor.primed is True and cursor.fresh is False
    fired, _ = new_items([item("a", "2026-01-01T10:00:00Z")], cursor)
    assert ids(fired) == ["a"]


# --- later polls ------------------------------------------------------------------------------------


def test_new_items_fire_once_and_re_polls_fire_nothing() -> None:
    old = [item("a", "2026-01-01T09:00:00Z")]
    cursor = primed(old)
    batch = [item("c", "2026-01-01T11:00:00Z"), item("b", "2026-01-01T10:00:00Z"), *old]
    fired, cursor = new_items(batch, cursor)
    assert ids(fired) == ["b", "c"]
    assert cursor.updated_at == "2026-01-01T11:00:00.000000Z" and cursor.ids_at == ("c",)
    fired, cursor = new_items(batch, cursor)
    assert fired == []
    assert new_items(list(reversed(batch)), cursor)[0] == []


def test_items_sharing_a_timestamp_are_each_fired_once() -> None:
    cursor = primed([item("a", "2026-01-01T09:00:00Z")])
    fired, cursor = new_items([item("b", "2026-01-01T10:00:00Z")], cursor)
    assert ids(fired) == ["b"]
    # "c" carries the same timestamp as "b" but turns up one poll later
    fired, cursor = new_items([item("c", "2026-01-01T10:00:00Z"), item("b", "2026-01-01T10:00:00Z")], cursor)
    assert ids(fired) == ["c"]
    assert cursor.ids_at == ("b", "c")
    assert new_items([item("b", "2026-01-01T10:00:00Z"), item("c", "2026-01-01T10:00:00Z")], cursor)[0] == []


def test_a_vanished_last_seen_item_causes_no_flood() -> None:
    batch = [item(k, f"2026-01-01T0{h}:00:00Z") for k, h in (("a", 1), ("b", 2), ("c", 3))]
    cursor = primed(batch)
    # "c", the newest, was deleted; nothing older fires again, the next new one does
    assert new_items(batch[:2], cursor)[0] == []
    fired, _ = new_items([*batch[:2], item("d", "2026-01-01T04:00:00Z")], cursor)
    assert ids(fired) == ["d"]


def test_an_update_fires_again_and_an_older_timestamp_does_not() -> None:
    cursor = primed([item("a", "2026-01-01T09:00:00Z")])
    fired, cursor = new_items([item("a", "2026-01-01T12:00:00Z", v=2)], cursor)
    assert fired == [item("a", "2026-01-01T12:00:00Z", v=2)]
    # an item dated before the watermark is history: it does not fire
    assert new_items([item("z", "2026-01-01T08:00:00Z"), item("a", "2026-01-01T12:00:00Z")], cursor)[0] == []


def test_a_recent_fingerprint_is_never_new_again_even_past_the_watermark() -> None:
    cursor = PollCursor("2026-01-01T09:00:00.000000Z", (), ("a\x1f2026-01-01T10:00:00.000000Z",), primed=True)
    fired, _ = new_items([item("a", "2026-01-01T10:00:00Z"), item("b", "2026-01-01T10:00:00Z")], cursor)
    assert ids(fired) == ["b"]


def test_the_same_item_twice_in_one_answer_fires_once() -> None:
    cursor = primed([])
    fired, _ = new_items([item("a", "2026-01-01T10:00:00Z"), item("a", "2026-01-01T10:00:00Z")], cursor)
    assert ids(fired) == ["a"]


def test_items_without_updated_fall_back_to_their_key() -> None:
    cursor = primed([{"id": "a"}, {"id": "b"}])
    assert cursor.updated_at is None and cursor.recent_keys == ("a", "b")
    fired, cursor = new_items([{"id": "c"}, {"id": "a"}, {"id": "b"}], cursor)
    assert ids(fired) == ["c"]
    assert new_items([{"id": "c"}, {"id": "a"}], cursor)[0] == []


def test_key_only_items_of_a_batch_larger_than_keep_keys_stay_remembered() -> None:
    batch = [{"id": str(i)} for i in range(20)]
    cursor = primed(batch, keep_keys=5)
    assert len(cursor.recent_keys) == 20
    fired, cursor = new_items(batch + [{"id": "new"}], cursor, keep_keys=5)
    assert ids(fired) == ["new"]
    assert len(cursor.recent_keys) == 21
    _, cursor = new_items([{"id": "x"}], cursor, keep_keys=5)
    assert cursor.recent_keys == ("16", "17", "18", "19", "new")[-4:] + ("x",)


def test_unparsable_timestamps_count_as_absent() -> None:
    cursor = primed([item("a", "yesterday")])
    assert cursor.updated_at is None and cursor.recent_keys == ("a",)
    assert new_items([item("a", "today")], cursor)[0] == []


def test_dot_paths_name_nested_fields_and_an_exact_dotted_key_wins() -> None:
    def row(key: str, when: str) -> dict[str, Any]:
        return {"meta": {"id": key}, "fields": {"updated": when}}

    cursor = primed([row("a", "2026-01-01T09:00:00Z")], key="meta.id", updated="fields.updated")
    assert cursor.ids_at == ("a",)
    fired, cursor = new_items(
        [row("a", "2026-01-01T09:00:00Z"), row("b", "2026-01-01T10:00:00Z")], cursor, key="meta.id", updated="fields.updated"
    )
    assert fired == [row("b", "2026-01-01T10:00:00Z")]
    flat = {"meta.id": "flat", "meta": {"id": "nested"}, "updated_at": "2026-01-01T11:00:00Z"}
    fired, cursor = new_items([flat], cursor, key="meta.id")
    assert fired == [flat] and cursor.ids_at == ("flat",)
    listed = {"ids": ["first", "second"], "updated_at": "2026-01-01T12:00:00Z"}
    assert new_items([listed], cursor, key="ids.1")[1].ids_at == ("second",)


def test_items_without_a_key_are_identified_by_their_content() -> None:
    cursor = primed([{"text": "hello", "updated_at": 1767261600}])
    fired, cursor = new_items(
        [{"text": "hello", "updated_at": 1767261600}, {"text": "world", "updated_at": 1767261600}], cursor
    )
    assert fired == [{"text": "world", "updated_at": 1767261600}]
    assert all(k.startswith("#") for k in cursor.ids_at)


def test_scalar_items_are_their_own_keys() -> None:
    cursor = primed(["a", "b"])  # type: ignore[list-item]
    assert new_items(["b", "c", 3], cursor)[0] == ["c", 3]  # type: ignore[list-item]


def test_keep_keys_must_be_positive() -> None:
    with pytest.raises(ValueError, match="keep_keys must be at least 1"):
        new_items([], EMPTY, keep_keys=0)


# --- timestamps -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-01T10:00:00+01:00", "2026-01-01T09:00:00.000000Z"),
        ("2026-01-01T09:00:00Z", "2026-01-01T09:00:00.000000Z"),
        ("2026-01-01T09:00:00.5-05:30", "2026-01-01T14:30:00.500000Z"),
        ("2026-01-01T09:00:00", "2026-01-01T09:00:00.000000Z"),
        ("2026-01-01", "2026-01-01T00:00:00.000000Z"),
        (1767258000, "2026-01-01T09:00:00.000000Z"),
        (1767258000.25, "2026-01-01T09:00:00.250000Z"),
        ("1767258000", "2026-01-01T09:00:00.000000Z"),
        (1767258000123, "2026-01-01T09:00:00.123000Z"),
        ("1767258000123", "2026-01-01T09:00:00.123000Z"),
        ("Thu, 01 Jan 2026 10:00:00 +0100", "2026-01-01T09:00:00.000000Z"),
        ("0999-01-01T00:00:00Z", "0999-01-01T00:00:00.000000Z"),
        ("soon", None),
        ("", None),
        (True, None),
        (None, None),
        (float("nan"), None),
        (1e30, None),
        ({"a": 1}, None),
    ],
)
def test_timestamps_are_normalised_to_sortable_utc(value: Any, expected: str | None) -> None:
    assert stamp(value) == expected


def test_offsets_are_compared_as_instants_not_as_text() -> None:
    cursor = primed([item("a", "2026-01-01T09:30:00Z")])
    # 10:00+01:00 is 09:00Z, before the watermark; 09:00-01:00 is 10:00Z, after it
    fired, _ = new_items([item("b", "2026-01-01T10:00:00+01:00"), item("c", "2026-01-01T09:00:00-01:00")], cursor)
    assert ids(fired) == ["c"]


def test_new_items_come_oldest_first_and_undated_ones_last() -> None:
    cursor = primed([])
    batch = [{"id": "u1"}, item("late", 300), item("early", 100), {"id": "u2"}, item("mid", 200)]
    fired, _ = new_items(batch, cursor)
    assert ids(fired) == ["early", "mid", "late", "u1", "u2"]


# --- property: a simulated provider -----------------------------------------------------------------


@dataclass
class World:
    clock: int = 1_000
    live: dict[str, int] = field(default_factory=dict)  # key → updated (unix seconds)
    changed: set[str] = field(default_factory=set)  # since the last poll
    serial: int = 0


actions = st.lists(
    st.tuples(
        st.sampled_from(["create", "update", "delete", "tick", "poll"]),
        st.integers(min_value=0, max_value=50),
        st.randoms(use_true_random=False),
    ),
    min_size=1,
    max_size=60,
)


def _poll(world: World, rnd: Any, keyed: bool) -> list[dict[str, Any]]:
    """All that changed since the last poll, and a random part of the rest, shuffled."""
    rows = []
    for key, when in world.live.items():
        if key in world.changed or rnd.random() < 0.6:
            rows.append({"id": key, "updated_at": when} if keyed else {"id": key})
    rnd.shuffle(rows)
    world.changed.clear()
    return rows


@settings(max_examples=150, deadline=None)
@given(actions, st.sampled_from([500, 3]))
def test_every_version_fires_exactly_once(steps: list[tuple[str, int, Any]], keep: int) -> None:
    world = World()
    cursor = EMPTY
    baseline: set[tuple[str, int]] | None = None
    fired: list[tuple[str, int]] = []
    expected: set[tuple[str, int]] = set()
    for action, number, rnd in steps:
        if action == "create":
            world.serial += 1
            key = f"k{world.serial}"
            world.live[key] = world.clock
            world.changed.add(key)
        elif action == "update" and world.live:
            key = sorted(world.live)[number % len(world.live)]
            if world.live[key] < world.clock:  # a new version needs a new timestamp
                world.live[key] = world.clock
                world.changed.add(key)
        elif action == "delete" and world.live:
            key = sorted(world.live)[number % len(world.live)]
            del world.live[key]
            world.changed.discard(key)
        elif action == "tick":
            world.clock += number % 3  # 0: timestamps collide
        elif action == "poll":
            complete = keep < 10  # with a tiny keep_keys every live item comes back each poll
            rows = (
                _poll(world, rnd, keyed=True)
                if not complete
                else [{"id": k, "updated_at": v} for k, v in world.live.items()]
            )
            world.changed.clear()
            versions = {(r["id"], r["updated_at"]) for r in rows}
            new, cursor = new_items(rows, cursor, keep_keys=keep)
            cursor = PollCursor.from_json(cursor.to_json())
            if baseline is None:
                baseline = versions
                assert new == []
            else:
                expected |= versions - baseline
            got = [(r["id"], r["updated_at"]) for r in new]
            assert got == sorted(got, key=lambda v: v[1])  # oldest first
            assert set(got) <= versions
            fired.extend(got)
    assert len(fired) == len(set(fired))  # nothing twice
    assert set(fired) == expected  # nothing lost


@settings(max_examples=100, deadline=None)
@given(actions)
def test_every_undated_key_fires_exactly_once(steps: list[tuple[str, int, Any]]) -> None:
    world = World()
    cursor = EMPTY
    baseline: set[str] | None = None
    fired: list[str] = []
    expected: set[str] = set()
    for action, _number, rnd in steps:
        if action == "create":
            world.serial += 1
            world.live[f"k{world.serial}"] = 0
            world.changed.add(f"k{world.serial}")
        elif action == "delete" and world.live:
            world.live.pop(next(iter(world.live)))
        elif action == "poll":
            rows = _poll(world, rnd, keyed=False)
            new, cursor = new_items(rows, cursor)
            keys = {r["id"] for r in rows}
            if baseline is None:
                baseline = keys
                assert new == []
            else:
                expected |= keys - baseline
            fired.extend(r["id"] for r in new)
    assert len(fired) == len(set(fired))
    assert set(fired) == expected
