"""`chronary db info|export|backup`, run in their own process against a live server's database."""

from __future__ import annotations

import csv
import json
import sqlite3
import threading
from pathlib import Path

import httpx

from tests.cli.serveproc import run_cli


def _seed(server, key: str) -> dict:
    with server.client(key) as c:
        agent = c.post("/v1/agents", json={"name": "Ada", "metadata": {"team": "ops"}}).json()
        cal = c.post(f"/v1/agents/{agent['id']}/calendars", json={"name": "Work", "timezone": "UTC"}).json()
        for day in range(1, 4):
            r = c.post(
                f"/v1/calendars/{cal['id']}/events",
                json={
                    "title": f"Standup {day}",
                    "start_time": f"2030-01-0{day}T09:00:00Z",
                    "end_time": f"2030-01-0{day}T09:15:00Z",
                },
            )
            assert r.status_code == 201, r.text
    return {"agent": agent, "calendar": cal}


def _migration_count() -> int:
    return len(list((Path(__file__).parents[2] / "chronary" / "store" / "migrations").glob("*.sql")))


def test_db_info_lists_tables_counts_and_schema_version(serve, data_dir: Path) -> None:
    server = serve()
    _seed(server, server.first_key())
    d = ["--data-dir", str(data_dir)]

    as_json = run_cli("db", "info", "--json", *d)
    assert as_json.returncode == 0, as_json.stderr
    info = json.loads(as_json.stdout)
    assert info["schema_version"] == _migration_count()
    assert info["tables"]["agents"] == 1
    assert info["tables"]["calendars"] == 1
    assert info["tables"]["events"] == 3
    assert info["tables"]["api_keys"] == 1

    text = run_cli("db", "info", *d)
    assert text.returncode == 0, text.stderr
    assert f"schema version {_migration_count()}" in text.stdout
    assert any(line.split() == ["events", "3"] for line in text.stdout.splitlines())


def test_db_export_json_and_csv_without_key_hashes(serve, data_dir: Path, tmp_path: Path) -> None:
    server = serve()
    key = server.first_key()
    seeded = _seed(server, key)
    d = ["--data-dir", str(data_dir)]

    out = tmp_path / "json"
    result = run_cli("db", "export", "--format", "json", "--out", str(out), *d)
    assert result.returncode == 0, result.stderr
    events = json.loads((out / "events.json").read_text())
    assert sorted(e["title"] for e in events) == ["Standup 1", "Standup 2", "Standup 3"]
    agents = json.loads((out / "agents.json").read_text())
    assert agents[0]["id"] == seeded["agent"]["id"]
    keys = json.loads((out / "api_keys.json").read_text())
    assert len(keys) == 1 and "hash" not in keys[0] and keys[0]["last4"] == key[-4:]
    everything = "".join(p.read_text() for p in out.iterdir())
    assert key not in everything

    out_csv = tmp_path / "csv"
    result = run_cli(
        "db", "export", "--format", "csv", "--out", str(out_csv), "--table", "events", "--table", "api_keys", *d
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out_csv.iterdir()) == ["api_keys.csv", "events.csv"]
    with (out_csv / "events.csv").open(newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 3
    with (out_csv / "api_keys.csv").open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert "hash" not in (reader.fieldnames or [])
        assert len(list(reader)) == 1

    bad = run_cli("db", "export", "--out", str(tmp_path / "x"), "--table", "nope", *d)
    assert bad.returncode != 0 and "nope" in bad.stderr and "Traceback" not in bad.stderr


def test_db_commands_without_a_database_fail_clearly(tmp_path: Path) -> None:
    missing = tmp_path / "empty"
    for args in (["db", "info"], ["db", "export", "--out", str(tmp_path / "o")], ["db", "backup", str(tmp_path / "b.db")]):
        result = run_cli(*args, "--data-dir", str(missing))
        assert result.returncode != 0
        assert "no database" in result.stderr and "Traceback" not in result.stderr


def test_backup_of_a_live_database_while_it_is_being_written(serve, data_dir: Path, tmp_path: Path) -> None:
    server = serve()
    key = server.first_key()
    cal = _seed(server, key)["calendar"]
    committed: list[str] = []  # ids whose 201 came back: committed before we looked
    stop = threading.Event()
    errors: list[str] = []

    def writer() -> None:
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as c:
            for i in range(5000):  # bounded; normally stopped far earlier
                if stop.is_set():
                    return
                r = c.post(
                    f"/v1/calendars/{cal['id']}/events",
                    json={"title": f"load {i}", "start_time": "2030-02-01T10:00:00Z", "end_time": "2030-02-01T11:00:00Z"},
                )
                if r.status_code != 201:
                    errors.append(r.text)
                    return
                committed.append(r.json()["id"])

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        deadline = threading.Event()
        for _ in range(400):  # wait until the writer is well under way (≤ 20 s)
            if len(committed) >= 50 or errors or not thread.is_alive():
                break
            deadline.wait(0.05)
        assert len(committed) >= 50, errors
        before = list(committed)
        target = tmp_path / "backup.db"
        result = run_cli("db", "backup", str(target), "--data-dir", str(data_dir))
        assert result.returncode == 0, result.stderr
        during = len(committed) - len(before)
    finally:
        stop.set()
        thread.join(timeout=20)
    assert not errors, errors
    assert during > 0, "the server was not writing while the backup ran"

    conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)  # a plain file now, not the live DB
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        ids = {row[0] for row in conn.execute("SELECT id FROM events")}
    finally:
        conn.close()
    assert set(before) <= ids
    assert len(ids) <= 3 + len(committed)

    again = run_cli("db", "backup", str(target), "--data-dir", str(data_dir))
    assert again.returncode != 0 and "already exists" in again.stderr
    nowhere = run_cli("db", "backup", str(tmp_path / "missing" / "b.db"), "--data-dir", str(data_dir))
    assert nowhere.returncode != 0 and "no such directory" in nowhere.stderr and "Traceback" not in nowhere.stderr


def test_db_consumers_lists_cursors_and_drops_a_retired_one(serve, data_dir: Path) -> None:
    server = serve()
    _seed(server, server.first_key())
    d = ["--data-dir", str(data_dir)]
    with sqlite3.connect(data_dir / "chronary.db") as conn:  # a consumer of an older release, long gone
        conn.execute("INSERT INTO change_cursors (consumer, seq) VALUES ('retired-consumer', 0)")
    listed = run_cli("db", "consumers", *d)
    assert listed.returncode == 0, listed.stderr
    retired = next(line.split() for line in listed.stdout.splitlines() if "retired-consumer" in line)
    assert retired[:3] == ["retired-consumer", "at", "0"] and int(retired[-1]) >= 3  # behind every change
    dropped = run_cli("db", "consumers", "--drop", "retired-consumer", *d)
    assert dropped.returncode == 0 and "dropped" in dropped.stdout, dropped.stderr
    assert "retired-consumer" not in run_cli("db", "consumers", *d).stdout
    missing = run_cli("db", "consumers", "--drop", "nope", *d)
    assert missing.returncode != 0 and "no consumer named 'nope'" in missing.stderr
