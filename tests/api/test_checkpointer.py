"""The writer thread leaves WAL checkpoints to the checkpointer thread (store/db.py): a long log
is checkpointed on the checkpointer's own connection, not inside a COMMIT of the writer."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from chronary.store import db as db_module
from chronary.store.db import Database, Tx


def _insert(tx: Tx) -> None:
    tx.conn.execute("INSERT INTO t (x) VALUES (randomblob(20000))")  # ~5 pages of WAL each


def _wait_for(check: object, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_a_long_wal_is_checkpointed_by_the_checkpointer_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "CHECKPOINT_PAGES", 50)
    db = Database(tmp_path / "t.db")
    db.write_sync_raw(lambda conn: conn.execute("CREATE TABLE t (x BLOB)"))
    seen: list[str] = []
    real = db._checkpoint_loop

    def spy() -> None:
        seen.append(threading.current_thread().name)
        real()

    monkeypatch.setattr(db, "_checkpoint_loop", spy)

    async def main() -> None:
        for _ in range(2):  # ~12 pages: under the threshold, nothing to do yet
            await db.write(_insert)
        assert db.checkpoints == 0
        for _ in range(20):
            await db.write(_insert)

    try:
        asyncio.run(main())
        assert _wait_for(lambda: db.checkpoints >= 1)
        assert seen == ["chronary-checkpointer"]
        # the writer's own connection did not checkpoint: its frames went to the database file
        # only through the checkpointer, and every write is still there
        assert db.read_sync(lambda tx: tx.conn.execute("SELECT count(*) AS n FROM t").fetchall()) == [{"n": 22}]
    finally:
        db.close()
    assert db._checkpointer is None
