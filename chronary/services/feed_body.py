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

import bisect
import hashlib
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

LEVEL = 6  # decompression speed barely depends on it; level 6 makes chunks ~15 % smaller than 1
BOUNDARY_MASK = 127  # a chunk ends after an event whose version has these bits zero: ~128 events
MIN_EVENTS = 16
MAX_EVENTS = 1024
SCANS_BEFORE_INDEX = 512  # old versions looked up by a linear scan before they are indexed


@dataclass(frozen=True, slots=True)
class Chunk:
    versions: array[int]  # "q": one per event, in feed order
    ends: array[int]  # "I": where each event's text ends in the raw chunk
    blob: bytes  # zlib-compressed raw chunk
    digest: bytes  # sha256 of the raw chunk

    def raw(self) -> bytes:
        return zlib.decompress(self.blob)

    @property
    def length(self) -> int:
        return self.ends[-1] if self.ends else 0

    @property
    def size(self) -> int:
        """Bytes kept for this chunk (what the feed cache bounds)."""
        return len(self.blob) + 12 * len(self.versions) + 100


def make_chunk(versions: array[int], texts: list[bytes]) -> Chunk:
    ends = array("I")
    total = 0
    for text in texts:
        total += len(text)
        ends.append(total)
    raw = b"".join(texts)
    return Chunk(versions, ends, zlib.compress(raw, LEVEL), hashlib.sha256(raw).digest())


def boundaries(versions: array[int]) -> list[tuple[int, int]]:
    """[a, b) position ranges of the chunks: content-defined, so unchanged runs of events fall
    into the same chunks as in the previous build."""
    out = []
    start = 0
    for i, version in enumerate(versions):
        n = i - start + 1
        if n >= MAX_EVENTS or (n >= MIN_EVENTS and not version & BOUNDARY_MASK):
            out.append((start, i + 1))
            start = i + 1
    if start < len(versions):
        out.append((start, len(versions)))
    return out


class Previous:
    """The events of the previous build, found by version."""

    def __init__(self, chunks: tuple[Chunk, ...]) -> None:
        self.chunks = chunks
        self.starts: list[int] = []
        self.versions = array("q")
        self.by_first: dict[int, Chunk] = {}
        for chunk in chunks:
            self.starts.append(len(self.versions))
            self.versions.extend(chunk.versions)
            if chunk.versions:
                self.by_first[chunk.versions[0]] = chunk
        self._scans = 0
        self._index: dict[int, int] | None = None
        self._raw: tuple[int, bytes] | None = None

    def same_chunk(self, versions: array[int]) -> Chunk | None:
        """The old chunk holding exactly these events (same versions, same order), if any."""
        chunk = self.by_first.get(versions[0]) if versions else None
        return chunk if chunk is not None and chunk.versions == versions else None

    def text(self, version: int) -> bytes | None:
        """The old text of the event with this version, or None (new or changed)."""
        position = self._position(version)
        if position is None:
            return None
        c = bisect.bisect_right(self.starts, position) - 1
        if self._raw is None or self._raw[0] != c:
            self._raw = (c, self.chunks[c].raw())
        ends = self.chunks[c].ends
        i = position - self.starts[c]
        return self._raw[1][ends[i - 1] if i else 0 : ends[i]]

    def _position(self, version: int) -> int | None:
        # a few changed chunks (an edit): scan in C; many (a bulk change): index every version once
        if self._index is None and self._scans < SCANS_BEFORE_INDEX:
            self._scans += 1
            try:
                return self.versions.index(version)
            except ValueError:
                return None
        if self._index is None:
            self._index = {v: i for i, v in enumerate(self.versions)}
        return self._index.get(version)


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
