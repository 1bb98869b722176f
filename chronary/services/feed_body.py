"""A feed body kept compressed in chunks of VEVENTs, rebuilt by reusing every unchanged chunk.

A 100k-event feed is ~50 MB of text; kept as it is (and as the per-event cache a rebuild needs)
it doubled the server's memory. Here the VEVENTs of a build are grouped into chunks of ~128
consecutive events, each chunk zlib-compressed (~12x smaller) with, per event, a version (a hash
of everything its rendering depends on) and its end offset. A rebuild reads the new versions (one
array, computed in C), cuts them into chunks, and reuses whole every chunk whose events are the
same ones in the same order, without decompressing it; in the other chunks an event whose
version the previous build has reuses its text, and only the rest are rendered. Chunk boundaries
are content-defined (after an event whose version has its low bits zero), so an insertion or a
deletion only changes the chunk it falls in, not every later one.

Serving decompresses one chunk at a time (streamed, ~1 GB/s); the strong ETag hashes the chunk
digests, not the 50 MB of text.
"""

from __future__ import annotations

import functools
import hashlib
import re
import sys
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

LEVEL = 6  # decompression speed barely depends on it; level 6 makes chunks ~15 % smaller than 1
BOUNDARY_MASK = 127  # a chunk ends after an event whose version has these bits zero: ~128 events
MIN_EVENTS = 16
MAX_EVENTS = 1024


@dataclass(frozen=True, slots=True)
class Chunk:
    versions: array[int]  # "q": one per event, in feed order
    ends: array[int]  # "I": where each event's text ends in the raw chunk
    blob: bytes  # zlib-compressed raw chunk
    digest: bytes  # sha256 of the raw chunk
    ids: str  # each event's id followed by a newline
    starts: array[int]  # "q": each event's start_ts

    @property
    def first(self) -> tuple[int, str]:
        """(start_ts, id) of its first event: where it is in the feed."""
        return (self.starts[0], self.ids[: self.ids.index("\n")])

    @property
    def last(self) -> tuple[int, str]:
        return (self.starts[-1], self.ids[:-1].rpartition("\n")[2])

    def entries(self) -> list[tuple[int, str, int, bytes]]:
        """(start_ts, id, version, text) of each event."""
        raw = self.raw()
        ids = self.ids.split("\n")
        out = []
        begin = 0
        for k, end in enumerate(self.ends):
            out.append((self.starts[k], ids[k], self.versions[k], raw[begin:end]))
            begin = end
        return out

    def raw(self) -> bytes:
        return zlib.decompress(self.blob)

    @property
    def length(self) -> int:
        return self.ends[-1] if self.ends else 0

    @property
    def size(self) -> int:
        """Bytes kept for this chunk (what the feed cache bounds)."""
        return len(self.blob) + len(self.ids) + 20 * len(self.versions) + 200


def make_chunk(versions: array[int], texts: list[bytes], keys: list[tuple[int, str]]) -> Chunk:
    """A chunk of events in feed order: their versions, VEVENT texts and (start_ts, id)."""
    ends = array("I")
    total = 0
    for text in texts:
        total += len(text)
        ends.append(total)
    raw = b"".join(texts)
    ids = "".join(eid + "\n" for _, eid in keys)
    starts = array("q", [start for start, _ in keys])
    return Chunk(versions, ends, zlib.compress(raw, LEVEL), hashlib.sha256(raw).digest(), ids, starts)


def boundaries(versions: array[int]) -> list[tuple[int, int]]:
    """[a, b) position ranges of the chunks: content-defined, so unchanged runs of events fall
    into the same chunks as in the previous build. The candidates (low byte & 127 == 0) are
    found in C, in the versions' bytes, rather than by a Python loop over every event."""
    raw = versions.tobytes()
    low = raw[0 :: versions.itemsize] if sys.byteorder == "little" else raw[versions.itemsize - 1 :: versions.itemsize]
    out = []
    start = 0
    for match in _CANDIDATE.finditer(low.translate(_marks(BOUNDARY_MASK))):
        end = match.start() + 1
        while end - start > MAX_EVENTS:
            out.append((start, start + MAX_EVENTS))
            start += MAX_EVENTS
        if end - start >= MIN_EVENTS:
            out.append((start, end))
            start = end
    while len(versions) - start > MAX_EVENTS:
        out.append((start, start + MAX_EVENTS))
        start += MAX_EVENTS
    if start < len(versions):
        out.append((start, len(versions)))
    return out


@functools.cache
def _marks(mask: int) -> bytes:
    return bytes(1 if not b & mask else 0 for b in range(256))


_CANDIDATE = re.compile(b"\x01")


class Previous:
    """The chunks of the previous build, found by their events' versions."""

    def __init__(self, chunks: tuple[Chunk, ...]) -> None:
        self.chunks = chunks
        self.by_first: dict[int, int] = {c.versions[0]: k for k, c in enumerate(chunks) if c.versions}
        self._raw: tuple[int, bytes] | None = None

    def same_chunk(self, versions: array[int]) -> Chunk | None:
        """The old chunk holding exactly these events (same versions, same order), if any."""
        k = self.by_first.get(versions[0]) if versions else None
        return self.chunks[k] if k is not None and self.chunks[k].versions == versions else None

    def between(self, before: Chunk | None, after: Chunk | None) -> dict[int, tuple[int, int]]:
        """Where (chunk, index) each event of the old chunks between two reused ones (None: the
        start or the end) is, by version: what a run of changed chunks can take texts from."""
        lo = self._place(before) + 1 if before is not None else 0
        hi = self._place(after) if after is not None else len(self.chunks)
        return {v: (c, i) for c in range(lo, hi) for i, v in enumerate(self.chunks[c].versions)}

    def _place(self, chunk: Chunk) -> int:
        return self.by_first[chunk.versions[0]]

    def text(self, where: tuple[int, int]) -> bytes:
        c, i = where
        if self._raw is None or self._raw[0] != c:
            self._raw = (c, self.chunks[c].raw())
        ends = self.chunks[c].ends
        return self._raw[1][ends[i - 1] if i else 0 : ends[i]]


def parts(head: bytes, chunks: tuple[Chunk, ...], tail: bytes) -> Iterator[bytes]:
    """The body, one decompressed chunk at a time."""
    yield head
    for chunk in chunks:
        yield chunk.raw()
    yield tail


def etag(head: bytes, chunks: tuple[Chunk, ...], tail: bytes) -> str:
    """A strong ETag: sha256 over the head, each chunk's digest and the tail."""
    h = hashlib.sha256(head)
    for chunk in chunks:
        h.update(chunk.digest)
    h.update(tail)
    return '"' + h.hexdigest()[:40] + '"'
