"""apsw connections: one writer thread committing queued writes in groups, readers one per thread.

This is datasette's pattern on apsw + WAL: writes are serialized on a single connection with
`BEGIN IMMEDIATE` (so no request ever sees "database is locked"), and reads run concurrently
on their own snapshots without waiting for writes. A request's writes run inside one call to
`write()`, so they commit together or not at all.

Group commit: the writer thread takes every write waiting in its queue (up to `GROUP_MAX`) and
runs them in one transaction, each inside its own SAVEPOINT: a write that raises is rolled back
to its savepoint alone, the others commit together with one COMMIT (one fsync with
synchronous=FULL), and only then is any of them answered. A request is acknowledged only once
its writes are durable, as before; under load the commits (the fsyncs) are shared. If COMMIT
itself fails, every write of the group fails with that error.

Credentials stamp: a commit that changed `STAMPED_TABLES` (API keys, agents) appends a byte to
the file `<database>-stamp`, before and after its COMMIT and in whatever process made it (the
server, `chronary keys revoke`), so `stamp()` (one stat) differs from any value read before that
commit. The server's authenticated-key cache (services/keys.KeyCache) is only trusted for the
stamp it was filled under: a revoked key stops working at once, wherever it was revoked.

After a commit the writer says who has work (`wake_on`, `Tx.wake`): a worker is woken only by
commits that wrote a table it reads, or that a listener marked for it — not by every commit.

The stdlib `sqlite3` module must never open this file inside the server process (see
STACK-NOTES: two SQLite copies in one process do not share POSIX locks).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from collections.abc import Callable, Hashable, Iterable, Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import apsw

from chronary.clock import Clock, SystemClock

T = TypeVar("T")
# Savepoint and statement journals (a commit group's writes each run in a savepoint) stay in memory
# up to this size before SQLite moves them to a temporary file: SQLite's default (64 KiB) sent most
# groups' journals through a new temp file, a couple of dozen writes each. A process-wide setting,
# made before this module opens any connection (SQLite must be reinitialised for it).
JOURNAL_SPILL_BYTES = 4 * 1024 * 1024
apsw.shutdown()
apsw.config(apsw.SQLITE_CONFIG_STMTJRNL_SPILL, JOURNAL_SPILL_BYTES)
apsw.initialize()
GROUP_MAX = 64  # writes taken into one commit (a bound on how long the first waits; a loop turn's batch stays whole)
_SAVEPOINT = "chronary_write"
# what a presented API key resolves to comes from these rows: a commit that changed any moves `stamp()`
STAMPED_TABLES = frozenset({"api_keys", "agents", "orgs"})
Stamp = tuple[int, int, int]


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
    is per-transaction memo space for listeners (what they already did in this transaction);
    the writes of one commit group share it (it is emptied when one of them rolls back).
    `wake` names the signals to notify once this transaction has committed (work it made for a
    worker that no table of `Database.wake_on` shows). `written` is the tables this transaction
    has written so far (the update hook's; rolled-back savepoints' included).
    """

    conn: apsw.Connection
    now: datetime
    writable: bool
    changes: Any = None
    origin: str = "api"
    scratch: dict[str, Any] = field(default_factory=dict)
    wake: set[str] = field(default_factory=set)
    written: Set[str] = frozenset()

    def memo(self, key: Hashable, tables: Iterable[str], compute: Callable[[], T]) -> T:
        """`compute()`, remembered for the rest of this transaction while it has written none of
        `tables` (those the answer reads): a cheap question every change of a transaction, or of
        a commit group, asks again (is there a webhook endpoint? is this calendar mirrored?)."""
        if not self.written.isdisjoint(tables):
            return compute()
        memo: dict[Hashable, Any] = self.scratch.setdefault("tx.memo", {})
        if key not in memo:
            memo[key] = compute()
        value: T = memo[key]
        return value


@dataclass(eq=False)
class _Job:
    fn: Callable[[Any], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    raw: bool = False  # fn gets the bare connection, outside any transaction (maintenance)
    ok: bool = False
    value: Any = None


def _settle(jobs: list[_Job]) -> None:
    """On the jobs' event loop: hand each waiting coroutine its result or its exception."""
    for job in jobs:
        if job.future.cancelled():
            continue
        if job.ok:
            job.future.set_result(job.value)
        else:
            job.future.set_exception(job.value)


class Database:
    def __init__(self, path: Path, clock: Clock | None = None, readers: int = 4, synchronous: str = "full") -> None:
        self.path = path
        self.synchronous = synchronous
        self.clock = clock or SystemClock()
        self._local = threading.local()
        self._all: list[apsw.Connection] = []
        self._all_lock = threading.Lock()
        self._queue: queue.SimpleQueue[list[_Job] | None] = queue.SimpleQueue()
        self._pending: dict[asyncio.AbstractEventLoop, list[_Job]] = {}  # per loop: writes of this turn
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._closed = False
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="chronary-reader")
        self._write_lock = threading.Lock()
        # called after every commit (from the committing thread), without arguments
        self.commit_listeners: list[Callable[[], None]] = []
        # signal name → woken after a commit that wrote one of these tables (`wake_on`)
        self._wake_tables: dict[str, set[str]] = {}
        # notifies signals by name after a commit (runtime.Signals.notify_many); None: nobody
        self.notify: Callable[[Iterable[str]], None] | None = None
        # the change pipeline every Tx carries (services/changes.Pipeline), set by open_runtime
        self.changes: Any = None
        self.stamp_path = Path(f"{path}-stamp")

    def stamp(self) -> Stamp | None:
        """Moves with every commit that changed `STAMPED_TABLES`, from any process (the file only
        grows: one byte per such commit); None when the file cannot be read or made."""
        try:
            st = os.stat(self.stamp_path)
        except FileNotFoundError:
            try:
                self._restamp()
                st = os.stat(self.stamp_path)
            except OSError:
                return None
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _restamp(self) -> None:
        with open(self.stamp_path, "ab") as f:  # O_APPEND: concurrent processes each add their byte
            f.write(b".")

    def _restamp_if(self, tables: set[str]) -> None:
        if not STAMPED_TABLES.isdisjoint(tables):
            self._restamp()

    def wake_on(self, signal: str, *tables: str) -> None:
        """Notify `signal` after every commit that inserted, updated or deleted rows of `tables`."""
        for table in tables:
            self._wake_tables.setdefault(table, set()).add(signal)

    def _conn(self) -> apsw.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = open_connection(self.path, synchronous=self.synchronous)
            touched: set[str] = set()
            # the tables each write transaction changed (rowid tables; triggers' writes included)
            conn.set_update_hook(lambda _op, _db, table, _rowid: touched.add(table))
            self._local.conn, self._local.touched = conn, touched
            with self._all_lock:
                self._all.append(conn)
        return conn

    def _touched(self) -> set[str]:
        touched: set[str] = self._local.touched
        return touched

    def _after_commit(self, tables: set[str], wake: set[str]) -> None:
        for listener in self.commit_listeners:
            listener()
        signals = set(wake)
        for table in tables:
            signals |= self._wake_tables.get(table, set())
        if signals and self.notify is not None:
            self.notify(signals)

    def write_sync(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` in one IMMEDIATE transaction on this thread's connection; commit or roll back.

        Usable from any thread (CLI, workers, tests); `write` queues to the writer thread.
        """
        conn = self._conn()
        touched = self._touched()
        with self._write_lock:
            touched.clear()
            conn.execute("BEGIN IMMEDIATE")
            try:
                tx = Tx(conn, self.clock.now(), True, self.changes, written=touched)
                result = fn(tx)
                self._restamp_if(touched)
                conn.execute("COMMIT")
            except BaseException:
                # COMMIT itself can fail (a deferred constraint, disk full): roll back so this
                # connection is not left inside a transaction that every later BEGIN trips over.
                # SQLite may already have rolled back on its own, hence the check.
                if not conn.getautocommit():
                    conn.execute("ROLLBACK")
                raise
            tables = set(touched)
            self._restamp_if(tables)
        self._after_commit(tables, tx.wake)
        return result

    def write_sync_raw(self, fn: Callable[[apsw.Connection], T]) -> T:
        """Hand `fn` the bare connection (it manages its own transactions): migrations."""
        with self._write_lock:
            conn = self._conn()
            touched = self._touched()
            touched.clear()
            try:
                return fn(conn)
            finally:
                self._restamp_if(touched)

    def read_sync(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` on one consistent snapshot (a deferred read transaction)."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            return fn(Tx(conn, self.clock.now(), False, self.changes))
        finally:
            if not conn.getautocommit():
                conn.execute("COMMIT")

    # -- the writer thread -----------------------------------------------------------------------

    def _submit(self, fn: Callable[[Any], Any], raw: bool) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        job = _Job(fn, loop, loop.create_future(), raw)
        if self._writer is None:
            with self._writer_lock:
                if self._closed:
                    raise RuntimeError("the database is closed: no more writes")
                if self._writer is None:
                    self._writer = threading.Thread(target=self._write_loop, name="chronary-writer_0", daemon=True)
                    self._writer.start()
        pending = self._pending.get(loop)
        if pending is None:  # the first write of this turn of the loop: hand them over after it
            pending = self._pending[loop] = []
            loop.call_soon(self._hand_over, loop)
        pending.append(job)
        return job.future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        """Queue, as one batch, the writes a turn of `loop` submitted (run on that loop).

        The writer then starts once the requests that arrived together have all been read, while
        the loop waits for their answers, instead of contending with the loop for the GIL from
        the first of them on (each SQLite call releases it): bench/write_bench.py."""
        jobs = self._pending.pop(loop, [])
        with self._writer_lock:  # `close` marks the end of the queue under this lock
            if not self._closed:
                self._queue.put(jobs)
                return
        for job in jobs:
            job.value = RuntimeError("the database is closed: no more writes")
        _settle(jobs)

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                self._refuse_late()
                return
            group, stop = list(first), False
            while len(group) < GROUP_MAX:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                group += more
            self._run(group)
            if stop:
                self._refuse_late()
                return

    def _refuse_late(self) -> None:
        """Writes that raced `close` into the queue after its stop mark fail instead of hanging."""
        late: list[_Job] = []
        while True:
            try:
                jobs = self._queue.get_nowait()
            except queue.Empty:
                break
            for job in jobs or ():
                job.value = RuntimeError("the database is closed: no more writes")
                late.append(job)
        for job in late:
            with contextlib.suppress(RuntimeError):
                job.loop.call_soon_threadsafe(_settle, [job])

    def _run(self, group: list[_Job]) -> None:
        """Run the queued jobs in order: raw ones alone, the others in shared transactions."""
        done: list[_Job] = []
        batch: list[_Job] = []
        for job in group:
            if job.future.cancelled():  # its request went away before its turn: never run
                continue
            if job.raw:
                if batch:
                    self._commit_group(batch)
                    done += batch
                    batch = []
                try:
                    job.value, job.ok = self.write_sync_raw(job.fn), True
                except BaseException as exc:  # noqa: BLE001 - handed to the waiting coroutine
                    job.value = exc
                done.append(job)
            else:
                batch.append(job)
        if batch:
            self._commit_group(batch)
            done += batch
        by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
        for job in done:
            by_loop.setdefault(job.loop, []).append(job)
        for loop, jobs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # its loop closed meanwhile: nobody waits
                loop.call_soon_threadsafe(_settle, jobs)

    def _commit_group(self, jobs: list[_Job]) -> None:
        """One transaction for all of `jobs`, each in its own savepoint when there are several."""
        if len(jobs) == 1:
            job = jobs[0]
            try:
                job.value, job.ok = self.write_sync(job.fn), True
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting coroutine
                job.value = exc
            return
        conn = self._conn()
        touched = self._touched()
        wake: set[str] = set()
        with self._write_lock:
            touched.clear()
            try:
                conn.execute("BEGIN IMMEDIATE")
                scratch: dict[str, Any] = {}  # one transaction: its once-per-transaction work is done once
                for job in jobs:
                    self._run_in_savepoint(conn, job, wake, scratch, touched)
                self._restamp_if(touched)
                conn.execute("COMMIT")
            except BaseException as exc:  # noqa: BLE001 - the transaction is lost: all of it fails
                if not conn.getautocommit():
                    conn.execute("ROLLBACK")
                for job in jobs:
                    if job.ok:
                        job.ok, job.value = False, exc
                    elif job.value is None:
                        job.value = exc
                return
            tables = set(touched)
            self._restamp_if(tables)
        self._after_commit(tables, wake)

    def _run_in_savepoint(
        self, conn: apsw.Connection, job: _Job, wake: set[str], scratch: dict[str, Any], written: set[str]
    ) -> None:
        conn.execute(f"SAVEPOINT {_SAVEPOINT}")
        tx = Tx(conn, self.clock.now(), True, self.changes, scratch=scratch, written=written)
        try:
            job.value, job.ok = job.fn(tx), True
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting coroutine
            job.value = exc
            if conn.getautocommit():  # SQLite rolled the whole transaction back: nothing commits
                raise
            conn.execute(f"ROLLBACK TO {_SAVEPOINT}")
            conn.execute(f"RELEASE {_SAVEPOINT}")
            scratch.clear()  # what it did once for the group is undone: the next write does it again
            return
        conn.execute(f"RELEASE {_SAVEPOINT}")
        wake |= tx.wake

    async def write(self, fn: Callable[[Tx], T]) -> T:
        """`fn` in a write transaction on the writer thread, committed with whatever else waits."""
        result: T = await self._submit(fn, raw=False)
        return result

    async def write_raw(self, fn: Callable[[apsw.Connection], T]) -> T:
        """`write_sync_raw` on the writer thread (maintenance that runs outside transactions)."""
        result: T = await self._submit(fn, raw=True)
        return result

    async def read(self, fn: Callable[[Tx], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self.read_sync, fn)

    def close(self) -> None:
        with self._writer_lock:
            self._closed = True
            writer, self._writer = self._writer, None
        if writer is not None:
            self._queue.put(None)  # after the writes already queued
            writer.join()
        self._readers.shutdown(wait=True)
        with self._all_lock:
            for conn in self._all:
                with contextlib.suppress(apsw.Error):
                    conn.close()
            self._all.clear()
