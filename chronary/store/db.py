"""apsw connections: one writer thread draining a queue, reader connections one per thread.

This is datasette's pattern on apsw + WAL: writes are serialized on a single connection with
`BEGIN IMMEDIATE` (so no request ever sees "database is locked"), and reads run concurrently
on their own snapshots without waiting for writes. A request's writes run inside one call to
`write()`, so they commit together or not at all.

The stdlib `sqlite3` module must never open this file inside the server process (see
STACK-NOTES: two SQLite copies in one process do not share POSIX locks).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import apsw

from chronary.clock import Clock, SystemClock

T = TypeVar("T")


def _dict_rows(cursor: apsw.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cursor.getdescription(), row, strict=True)}


def open_connection(path: Path | str, *, readonly: bool = False, synchronous: str = "full") -> apsw.Connection:
    """A configured connection. `synchronous=full` (the default) makes every acknowledged commit
    durable across power loss in WAL mode; `normal` is faster but may lose the last commits."""
    if synchronous not in ("full", "normal"):
        raise ValueError(f"synchronous must be full or normal, not {synchronous!r}")
    flags = apsw.SQLITE_OPEN_READONLY if readonly else apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    conn = apsw.Connection(str(path), flags=flags)
    conn.set_busy_timeout(5000)
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DML, 0)
    conn.config(apsw.SQLITE_DBCONFIG_DQS_DDL, 0)
    if not readonly:
        # before WAL writes the first page: a new database hands pruned pages back with
        # `PRAGMA incremental_vacuum` (on an existing one this is a no-op until a VACUUM)
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA synchronous={synchronous.upper()}")
    conn.row_trace = _dict_rows
    return conn


@dataclass
class Tx:
    """What a service gets: one connection inside one transaction, and the time it started.

    `now` is read once per transaction so every row a request writes carries the same instant.
    `changes` is the change pipeline the runtime assembled (services/changes.Pipeline: the
    listeners `changes.record` calls inside this transaction; None calls none). `origin` is where
    the changes recorded in this transaction come from unless a change names its own: "api" for
    requests; a worker sets "system", "sync:<connection id>" or "subscription:<id>". `scratch`
    is per-transaction memo space for listeners (what they already did in this transaction).
    """

    conn: apsw.Connection
    now: datetime
    writable: bool
    changes: Any = None
    origin: str = "api"
    scratch: dict[str, Any] = field(default_factory=dict)


class Database:
    def __init__(self, path: Path, clock: Clock | None = None, readers: int = 4, synchronous: str = "full") -> None:
        self.path = path
        self.synchronous = synchronous
        self.clock = clock or SystemClock()
        self._local = threading.local()
        self._all: list[apsw.Connection] = []
        self._all_lock = threading.Lock()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="chronary-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="chronary-reader")
        self._write_lock = threading.Lock()
        # called after every commit (from the committing thread): workers use it to wake up
        self.commit_listeners: list[Callable[[], None]] = []
        # the change pipeline every Tx carries (services/changes.Pipeline), set by open_runtime
        self.changes: Any = None

    def _conn(self) -> apsw.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = open_connection(self.path, synchronous=self.synchronous)
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def write_sync(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` in one IMMEDIATE transaction on this thread's connection; commit or roll back.

        Usable from any thread (CLI, workers); the async API funnels requests to one thread.
        """
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(Tx(conn, self.clock.now(), True, self.changes))
                conn.execute("COMMIT")
            except BaseException:
                # COMMIT itself can fail (a deferred constraint, disk full): roll back so this
                # connection is not left inside a transaction that every later BEGIN trips over.
                # SQLite may already have rolled back on its own, hence the check.
                if not conn.getautocommit():
                    conn.execute("ROLLBACK")
                raise
        for listener in self.commit_listeners:
            listener()
        return result

    def write_sync_raw(self, fn: Callable[[apsw.Connection], T]) -> T:
        """Hand `fn` the bare connection (it manages its own transactions): migrations."""
        with self._write_lock:
            return fn(self._conn())

    def read_sync(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` on one consistent snapshot (a deferred read transaction)."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            return fn(Tx(conn, self.clock.now(), False, self.changes))
        finally:
            if not conn.getautocommit():
                conn.execute("COMMIT")

    async def write(self, fn: Callable[[Tx], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, self.write_sync, fn)

    async def write_raw(self, fn: Callable[[apsw.Connection], T]) -> T:
        """`write_sync_raw` on the writer thread (maintenance that runs outside transactions)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, self.write_sync_raw, fn)

    async def read(self, fn: Callable[[Tx], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self.read_sync, fn)

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._all_lock:
            for conn in self._all:
                with contextlib.suppress(apsw.Error):
                    conn.close()
            self._all.clear()
