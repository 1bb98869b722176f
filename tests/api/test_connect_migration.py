"""Migration 0013 rebuilds `connections` (agent_id optional for Connect's API-key providers) with
foreign keys off, as SQLite's table-rebuild procedure says: nothing that hangs off a connection is
cascaded away, the triggers come back, and foreign keys are on again afterwards."""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

from chronary.store import migrate

NOW = "2026-12-01T00:00:00.000Z"


def _open(path: Path) -> apsw.Connection:
    conn = apsw.Connection(str(path))
    conn.setrowtrace(lambda cur, row: {d[0]: v for d, v in zip(cur.getdescription(), row, strict=True)})
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _before_0013(conn: apsw.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = migrate.available()
    cut = next(i for i, (name, _) in enumerate(shipped) if name.startswith("0013"))
    monkeypatch.setattr(migrate, "available", lambda: shipped[:cut])
    migrate.migrate(conn)
    monkeypatch.undo()
    conn.execute("INSERT INTO orgs (id, name, created_at) VALUES ('org_1', 'o', ?)", (NOW,))
    conn.execute(
        "INSERT INTO agents (id, org_id, name, type, status, timezone, created_at, updated_at) "
        "VALUES ('agt_1', 'org_1', 'Ada', 'ai', 'active', 'UTC', ?, ?)",
        (NOW, NOW),
    )
    conn.execute(
        "INSERT INTO connections (id, org_id, agent_id, provider, status, secret, sync_mode, created_at, updated_at) "
        "VALUES ('con_1', 'org_1', 'agt_1', 'google', 'active', 'sealed', 'realtime', ?, ?)",
        (NOW, NOW),
    )
    conn.execute("INSERT INTO connection_calendars (connection_id, remote_id, sync) VALUES ('con_1', 'primary', 1)")
    conn.execute(
        "INSERT INTO push_channels (id, connection_id, remote_id, provider, token, expires_ts, created_at) "
        "VALUES ('ch_1', 'con_1', 'primary', 'google', 't', 0, ?)",
        (NOW,),
    )


def test_the_rebuild_keeps_everything_hanging_off_a_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = _open(tmp_path / "chronary.db")
    _before_0013(conn, monkeypatch)
    assert "0013_connect" in migrate.migrate(conn)
    assert [r["n"] for r in conn.execute("SELECT count(*) AS n FROM connection_calendars")] == [1]
    assert [r["n"] for r in conn.execute("SELECT count(*) AS n FROM push_channels")] == [1]
    row = next(iter(conn.execute("SELECT agent_id, secret, sync_mode, settings FROM connections")))
    assert row == {"agent_id": "agt_1", "secret": "sealed", "sync_mode": "realtime", "settings": None}
    assert next(iter(conn.execute("PRAGMA foreign_keys")))["foreign_keys"] == 1
    assert list(conn.execute("PRAGMA foreign_key_check")) == []
    # an org-level (Connect) connection needs no agent; deleting a connection still cascades and
    # still forgets its sync links (the trigger was recreated)
    conn.execute(
        "INSERT INTO connections (id, org_id, provider, status, secret, sync_mode, created_at, updated_at) "
        "VALUES ('con_2', 'org_1', 'ntfy', 'active', 'sealed', 'none', ?, ?)",
        (NOW, NOW),
    )
    triggers = {r["name"] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert "connections_forget_links" in triggers
    conn.execute("DELETE FROM connections WHERE id = 'con_1'")
    assert [r["n"] for r in conn.execute("SELECT count(*) AS n FROM connection_calendars")] == [0]


def test_a_failed_rebuild_rolls_back_and_turns_foreign_keys_back_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = _open(tmp_path / "chronary.db")
    _before_0013(conn, monkeypatch)
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("INSERT INTO connection_calendars (connection_id, remote_id) VALUES ('con_gone', 'x')")  # dangling
    conn.execute("PRAGMA foreign_keys=ON")
    with pytest.raises(RuntimeError, match="foreign key"):
        migrate.migrate(conn)
    assert "0013_connect" not in migrate.applied(conn)
    assert "name" not in {r["name"] for r in conn.execute("PRAGMA table_info(connections)")}
    assert next(iter(conn.execute("PRAGMA foreign_keys")))["foreign_keys"] == 1
