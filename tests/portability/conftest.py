"""Running `chronary import|export …` in-process (click's runner) against a test data dir, and
the real Radicale of tests/sync for the storage-folder import."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import apsw
import pytest
from click.testing import CliRunner, Result

from tests.sync.conftest import Radicale, radicale  # noqa: F401 - the module-scoped Radicale fixture

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "portability"

__all__ = ["FIXTURES", "Radicale", "count_rows", "events_of"]


@pytest.fixture
def chronary(data_dir: Path) -> Callable[..., Result]:
    """chronary("import", "ics", …) → click Result, with --data-dir of the test added."""
    from chronary.cli import cli

    def run(*args: str, data: Path | None = None) -> Result:
        return CliRunner().invoke(cli, [*args, "--data-dir", str(data or data_dir)], catch_exceptions=False)

    return run


def count_rows(data_dir: Path, table: str, where: str = "1", params: tuple[Any, ...] = ()) -> int:
    """A row count read with apsw in this process (the server's own driver; never sqlite3 here)."""
    conn = apsw.Connection(str(data_dir / "chronary.db"), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return int(next(conn.execute(f"SELECT count(*) FROM {table} WHERE {where}", params))[0])
    finally:
        conn.close()


def events_of(api: Any, calendar_id: str, **params: Any) -> list[dict[str, Any]]:
    r = api.get(f"/v1/calendars/{calendar_id}/events", params={"limit": 200, **params})
    assert r.status_code == 200, r.text
    return list(r.json()["data"])
