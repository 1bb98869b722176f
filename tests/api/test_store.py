"""The store under the running server: apsw with WAL and foreign keys, recorded migrations,
refusal of a newer schema, all-or-nothing request writes, and no stdlib sqlite3 in the server."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import apsw
import pytest

from chronary.app import create_app
from chronary.config import Settings
from chronary.errors import SchemaTooNew
from chronary.store.migrate import available
from tests.api._helpers import assert_error
from tests.conftest import free_port

T0, T1 = "2030-01-07T09:00:00Z", "2030-01-07T10:00:00Z"


def _pragma(db, name: str, write: bool = False):
    def fn(tx):
        return list(tx.conn.execute(f"PRAGMA {name}"))[0]

    row = db.write_sync(fn) if write else db.read_sync(fn)
    return next(iter(row.values()))


def test_wal_foreign_keys_and_busy_timeout_on_every_connection(api, data_dir):
    db = api.runtime.db
    for write in (True, False):
        assert _pragma(db, "journal_mode", write) == "wal"
        assert _pragma(db, "foreign_keys", write) == 1
        assert _pragma(db, "busy_timeout", write) >= 1000
    # WAL is a property of the file: a fresh connection sees it too
    conn = apsw.Connection(str(data_dir / "chronary.db"))
    assert list(conn.execute("PRAGMA journal_mode"))[0][0] == "wal"
    conn.close()


def test_foreign_keys_are_enforced(api):
    def orphan(tx):
        tx.conn.execute(
            "INSERT INTO events (id, calendar_id, ical_uid, title, start_ts, end_ts, status, created_at, updated_at)"
            " VALUES ('evt_x', 'cal_missing', 'u', 't', 0, 1, 'confirmed', '', '')"
        )

    with pytest.raises(apsw.ConstraintError):
        api.runtime.db.write_sync(orphan)


def test_migrations_are_recorded_and_run_once(make_api, data_dir):
    api = make_api()
    shipped = [name for name, _ in available()]
    assert shipped == sorted(shipped) and shipped[0] == "0001_foundation"
    rows = api.runtime.db.read_sync(
        lambda tx: list(tx.conn.execute("SELECT name, applied_at FROM schema_migrations ORDER BY name"))
    )
    assert [r["name"] for r in rows] == shipped and all(r["applied_at"] for r in rows)
    assert _pragma(api.runtime.db, "user_version") == len(shipped)
    assert api.as_key("").get("/health").json()["schema_version"] == len(shipped)
    assert api.runtime.first_key and api.runtime.first_key.startswith("chr_sk_")
    a = api.agent()
    # a second start on the same data dir migrates nothing, keeps the data and prints no new key
    again = create_app(Settings(data_dir=data_dir, workers=False))
    try:
        assert again.state.runtime.first_key is None
        rows2 = again.state.db.read_sync(
            lambda tx: list(tx.conn.execute("SELECT name, applied_at FROM schema_migrations ORDER BY name"))
        )
        assert rows2 == rows
        assert again.state.db.read_sync(lambda tx: list(tx.conn.execute("SELECT id FROM agents")))[0]["id"] == a["id"]
    finally:
        again.state.db.close()


def _make_db_from_the_future(data_dir: Path) -> None:
    app = create_app(Settings(data_dir=data_dir, workers=False))
    app.state.db.write_sync(
        lambda tx: tx.conn.execute(
            "INSERT INTO schema_migrations (name, applied_at) VALUES ('9999_from_the_future', '2099-01-01T00:00:00Z')"
        )
    )
    app.state.db.close()


def test_newer_schema_refuses_to_start(data_dir):
    _make_db_from_the_future(data_dir)
    with pytest.raises(SchemaTooNew, match="9999_from_the_future"):
        create_app(Settings(data_dir=data_dir, workers=False))


def test_serve_prints_a_clear_message_for_a_newer_schema(data_dir):
    _make_db_from_the_future(data_dir)
    proc = subprocess.run(
        [sys.executable, "-m", "chronary", "serve", "--data-dir", str(data_dir), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "newer Chronary" in out and "9999_from_the_future" in out
    assert "Traceback" not in out and "Listening" not in out


# --- all or nothing ----------------------------------------------------------------------------------


def _counts(api) -> dict[str, int]:
    return api.runtime.db.read_sync(
        lambda tx: {
            t: list(tx.conn.execute(f"SELECT count(*) AS n FROM {t}"))[0]["n"]
            for t in ("agents", "calendars", "events", "outbox", "api_keys")
        }
    )


def test_a_failed_request_writes_nothing(api, monkeypatch):
    from chronary.store import changes

    agent = api.agent()
    cal = api.calendar(agent["id"])
    api.event(cal["id"], T0, T1)
    api.agent_key(agent["id"])
    before = _counts(api)

    def explode(*args, **kwargs):
        raise RuntimeError("forced failure after the writes")

    # the change-log append runs after the request's row changes, inside the same db.write
    monkeypatch.setattr(changes, "append", explode)
    assert_error(api.post("/v1/agents", json={"name": "ghost"}), 500, "internal_error")
    assert_error(
        api.post(f"/v1/calendars/{cal['id']}/events", json={"title": "t", "start_time": T0, "end_time": T1}),
        500,
        "internal_error",
    )
    assert_error(api.delete(f"/v1/agents/{agent['id']}"), 500, "internal_error")
    assert_error(api.delete(f"/v1/calendars/{cal['id']}"), 500, "internal_error")
    assert _counts(api) == before
    revoked = api.runtime.db.read_sync(
        lambda tx: list(tx.conn.execute("SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NOT NULL"))
    )[0]["n"]
    assert revoked == 0
    monkeypatch.undo()
    assert api.get(f"/v1/agents/{agent['id']}").status_code == 200


def test_db_write_rolls_back_on_exception(api):
    db = api.runtime.db

    def half_done(tx):
        tx.conn.execute("INSERT INTO orgs (id, name, created_at) VALUES ('org_partial', 'x', 'now')")
        raise ValueError("stop")

    with pytest.raises(ValueError):
        db.write_sync(half_done)
    assert db.read_sync(lambda tx: list(tx.conn.execute("SELECT id FROM orgs WHERE id = 'org_partial'"))) == []
    # and the writer is usable afterwards (no transaction left open)
    assert api.post("/v1/agents", json={"name": "after"}).status_code == 201


def test_a_failed_commit_does_not_wedge_the_writer(api):
    """COMMIT can fail (here a deferred foreign key); the writer connection must come out of the
    transaction, or every later request would fail with "cannot start a transaction"."""
    import asyncio

    def orphan_checked_at_commit(tx):
        tx.conn.execute("PRAGMA defer_foreign_keys = ON")
        tx.conn.execute(
            "INSERT INTO calendars (id, org_id, name, timezone, agent_status, feed_token, created_at, updated_at)"
            " VALUES ('cal_orphan', 'org_missing', 'n', 'UTC', 'idle', 'tok', '', '')"
        )

    with pytest.raises(apsw.ConstraintError):
        asyncio.run(api.runtime.db.write(orphan_checked_at_commit))  # on the request writer thread
    assert api.post("/v1/agents", json={"name": "still writable"}).status_code == 201
    assert_error(api.get("/v1/calendars/cal_orphan"), 404, "not_found")


def test_concurrent_requests_never_see_a_locked_database(live_server):
    """Writes from many connections at once are serialized by the writer, not refused."""
    from concurrent.futures import ThreadPoolExecutor

    server = live_server(workers=True)

    def client_session(i: int) -> list[int]:
        statuses = []
        with server.client() as c:
            r = c.post("/v1/agents", json={"name": f"a{i}"})
            statuses.append(r.status_code)
            cal = c.post(f"/v1/agents/{r.json()['id']}/calendars", json={"name": "c", "timezone": "UTC"})
            statuses.append(cal.status_code)
            for j in range(8):
                statuses.append(
                    c.post(
                        f"/v1/calendars/{cal.json()['id']}/events", json={"title": f"e{j}", "start_time": T0, "end_time": T1}
                    ).status_code
                )
                statuses.append(c.get(f"/v1/agents/{r.json()['id']}/events").status_code)
        return statuses

    with ThreadPoolExecutor(8) as pool:
        results = [s for statuses in pool.map(client_session, range(8)) for s in statuses]
    assert set(results) <= {200, 201}, sorted(set(results))
    with server.client() as c:
        assert c.get("/v1/agents").json()["total"] == 8
        assert c.get("/v1/calendars", params={"include": "all"}).json()["total"] == 8


# --- stdlib sqlite3 never opens the database inside the server ---------------------------------------


def test_server_process_never_opens_the_db_with_stdlib_sqlite3(live_server, data_dir, monkeypatch):
    calls: list[tuple] = []
    real_connect = sqlite3.connect

    def recording_connect(*args, **kwargs):
        calls.append((args, kwargs))
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", recording_connect)
    server = live_server(workers=True)
    with server.client() as c:
        agent = c.post("/v1/agents", json={"name": "A"}).json()
        cal = c.post(f"/v1/agents/{agent['id']}/calendars", json={"name": "C", "timezone": "UTC"}).json()
        for i in range(5):
            r = c.post(f"/v1/calendars/{cal['id']}/events", json={"title": f"e{i}", "start_time": T0, "end_time": T1})
            assert r.status_code == 201
        assert c.get(f"/v1/agents/{agent['id']}/events").json()["total"] == 5
        assert c.post("/v1/keys", json={"name": "k"}).status_code == 201
        assert c.get("/health").status_code == 200
        assert c.delete(f"/v1/agents/{agent['id']}").status_code == 204
    db_path = str((data_dir / "chronary.db").resolve())
    touched = [call for call in calls if "chronary.db" in repr(call) or db_path in repr(call)]
    assert touched == [], touched


def test_server_package_never_imports_stdlib_sqlite3():
    """Only store/maintenance.py (run by `chronary db` in its own process) may use sqlite-utils / sqlite3."""
    root = Path(__file__).resolve().parents[2] / "chronary"
    offenders = []
    for path in root.rglob("*.py"):
        if path.relative_to(root).as_posix() == "store/maintenance.py":
            continue
        text = path.read_text(encoding="utf-8")
        if "import sqlite3" in text or "import sqlite_utils" in text or "from sqlite3" in text:
            offenders.append(str(path.relative_to(root)))
    assert offenders == []
