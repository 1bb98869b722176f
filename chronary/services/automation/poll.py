"""Poll triggers: which items of a provider action's latest output have not fired yet.

A poll runs an action on an interval; each run answers a list of items. `new_items` compares them
with a `PollCursor` — a watermark, not a position, so an item that vanishes (deleted, paged out)
never makes the next poll fire everything after it:

- ``updated_at``: the newest ``updated`` value seen, normalised to UTC ISO 8601 with microseconds
  (``2026-03-01T09:00:00.000000Z``, which sorts as time does). Values may be ISO 8601 with an
  offset (none: UTC), a date, RFC 2822 (RSS ``pubDate``), or unix seconds (a number or a string of
  digits; from 10^11 on read as milliseconds).
- ``ids_at``: the keys already seen at exactly ``updated_at``, so items sharing one timestamp —
  one seen now, one arriving later — are each fired once.
- ``recent_keys``: fingerprints (key + updated, or the key alone) of recently seen items, at least
  every item of the last poll and at most ``max(keep_keys, items in the last poll)``.

An item is new when its fingerprint is not recent, and its ``updated`` is after the watermark, or
equal to it with a key not in ``ids_at``. Items older than the watermark never fire (an update
that comes back dated before newer ones was missed by design: polls see what changed since the
last one). Items without a parsable ``updated`` fall back to their key: new while it is not
recent. Items without the key are identified by their content (a hash of their JSON). Fields may
be dot paths (``fields.updated``; an exact key with a dot wins). A changed ``updated`` makes the
item fire again — that is an update.

The first poll of a cursor only records the baseline (connecting a trigger does not fire for every
existing item) unless ``first_run_fires``. New items come back oldest first (by ``updated``, then
their order in the answer; items without ``updated`` last, in their order).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any

_SEP = "\x1f"  # between key and updated in a fingerprint
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_MISSING = object()


@dataclass(frozen=True)
class PollCursor:
    updated_at: str | None
    ids_at: tuple[str, ...]
    recent_keys: tuple[str, ...]
    primed: bool = False  # a poll has recorded its baseline (even of an empty answer)

    @property
    def fresh(self) -> bool:
        """Never polled: the next poll records the baseline."""
        return not self.primed and self.updated_at is None and not self.ids_at and not self.recent_keys

    def to_json(self) -> str:
        return json.dumps(
            {
                "updated_at": self.updated_at,
                "ids_at": list(self.ids_at),
                "recent_keys": list(self.recent_keys),
                "primed": self.primed,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any] | None) -> PollCursor:
        """Read `to_json`'s text (or its parsed dict); None or empty is a fresh cursor."""
        if data is None or data in ("", b""):
            return cls(None, (), ())
        raw: Any = json.loads(data) if isinstance(data, str | bytes) else data
        if not isinstance(raw, Mapping):
            raise ValueError("a poll cursor is a JSON object")
        updated_at = raw.get("updated_at")
        ids_at, recent = raw.get("ids_at", []), raw.get("recent_keys", [])
        if updated_at is not None and not isinstance(updated_at, str):
            raise ValueError("poll cursor: updated_at must be a string or null")
        for name, keys in (("ids_at", ids_at), ("recent_keys", recent)):
            if not isinstance(keys, list | tuple) or not all(isinstance(k, str) for k in keys):
                raise ValueError(f"poll cursor: {name} must be a list of strings")
        return cls(updated_at, tuple(ids_at), tuple(recent), bool(raw.get("primed", False)))


def value_at(item: Any, path: str) -> Any:
    """The field at a dotted path (an exact key containing dots wins), None when absent: the same
    reading the dedup uses, for whoever names an item by its key and timestamp."""
    value = _dig(item, path)
    return None if value is _MISSING else value


def _dig(item: Any, path: str) -> Any:
    if isinstance(item, Mapping) and path in item:
        return item[path]
    value = item
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _iso(moment: datetime) -> str:
    utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _from_number(value: float) -> str | None:
    if not math.isfinite(value):
        return None
    seconds = value / 1000 if abs(value) >= 1e11 else value
    try:
        return _iso(datetime.fromtimestamp(seconds, UTC))
    except (OverflowError, OSError, ValueError):
        return None


def stamp(value: Any) -> str | None:
    """An ``updated`` value as sortable UTC ISO 8601 text, or None when it is not a time."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_number(value)
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return _iso(datetime(value.year, value.month, value.day))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _NUMBER.fullmatch(text):
        return _from_number(float(text))
    try:
        return _iso(datetime.fromisoformat(text))
    except ValueError:
        pass
    try:
        return _iso(parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _key(item: Any, path: str) -> str:
    value = _dig(item, path) if isinstance(item, Mapping) else item
    if value is _MISSING or value is None:
        canonical = json.dumps(item, sort_keys=True, ensure_ascii=False, default=str)
        return "#" + hashlib.sha256(canonical.encode()).hexdigest()[:32]
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float | list | dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return str(value)


@dataclass
class _Seen:
    position: int
    key: str
    stamp: str | None
    item: Any

    @property
    def fingerprint(self) -> str:
        return self.key if self.stamp is None else f"{self.key}{_SEP}{self.stamp}"


def _behind(entry: _Seen, mark: str | None, at: set[str]) -> bool:
    """Older than the watermark, or at it and already seen there."""
    if entry.stamp is None or mark is None:
        return False
    return entry.stamp < mark or (entry.stamp == mark and entry.key in at)


def new_items(
    items: list[dict[str, Any]],
    cursor: PollCursor,
    *,
    key: str = "id",
    updated: str = "updated_at",
    keep_keys: int = 500,
    first_run_fires: bool = False,
) -> tuple[list[dict[str, Any]], PollCursor]:
    """The items of this poll that never fired (oldest first) and the cursor to store."""
    if keep_keys < 1:
        raise ValueError("keep_keys must be at least 1")
    seen = [
        _Seen(i, _key(item, key), stamp(_dig(item, updated)) if isinstance(item, Mapping) else None, item)
        for i, item in enumerate(items)
    ]
    seen.sort(key=lambda s: (s.stamp is None, s.stamp or "", s.position))
    recent, at, mark = set(cursor.recent_keys), set(cursor.ids_at), cursor.updated_at
    baseline = cursor.fresh and not first_run_fires

    fired: list[_Seen] = []
    batch: dict[str, None] = {}  # fingerprints of this poll, oldest first, once each
    for entry in seen:
        fingerprint = entry.fingerprint
        if fingerprint in batch:
            continue  # the same item twice in one answer
        batch[fingerprint] = None
        if baseline or fingerprint in recent or _behind(entry, mark, at):
            continue
        fired.append(entry)

    stamps = [s.stamp for s in seen if s.stamp is not None]
    new_mark = max([*stamps, *([mark] if mark is not None else [])], default=None)
    ids: dict[str, None] = dict.fromkeys(cursor.ids_at) if new_mark == mark else {}
    ids.update(dict.fromkeys(s.key for s in seen if s.stamp is not None and s.stamp == new_mark))
    keep = max(keep_keys, len(batch))
    kept = [k for k in cursor.recent_keys if k not in batch] + list(batch)
    next_cursor = PollCursor(
        updated_at=new_mark,
        ids_at=tuple(list(ids)[-keep:]),
        recent_keys=tuple(kept[-keep:]),
        primed=True,
    )
    return [s.item for s in fired], next_cursor
