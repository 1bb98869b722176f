"""`chronary serve` as a real subprocess: first start, restart, flags vs env, default data dir,
and refusing a database written by a newer Chronary."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import httpx

from tests.cli.serveproc import KEY_RE, ServerProcess, db_file, free_port, run_cli


def test_first_start_creates_db_and_prints_key_once(serve, data_dir: Path) -> None:
    assert not data_dir.exists()
    first = serve()
    assert db_file(data_dir).is_file()
    keys = KEY_RE.findall(first.output)
    assert len(keys) == 1, first.output
    key = keys[0]
    assert f"http://127.0.0.1:{first.port}" in first.output

    health = httpx.get(f"{first.base_url}/health")  # no key
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["schema_version"] >= 1

    with first.client(key) as c:
        assert c.get("/v1/agents").status_code == 200
        created = c.post("/v1/agents", json={"name": "Ada"})
        assert created.status_code == 201, created.text
    assert httpx.get(f"{first.base_url}/v1/agents").status_code == 401
    assert first.stop() in (0, -15)  # uvicorn re-raises SIGTERM after a clean shutdown
    assert "Application shutdown complete" in first.output

    second = serve()
    assert not KEY_RE.search(second.output), second.output
    with second.client(key) as c:  # same database, same key, data kept
        agents = c.get("/v1/agents")
        assert agents.status_code == 200
        assert [a["name"] for a in agents.json()["data"]] == ["Ada"]


def test_console_script_and_env_settings(tmp_path: Path) -> None:
    """CHRONARY_HOST/PORT/DATA_DIR/PUBLIC_URL configure serve with no flags (installed `chronary`)."""
    script = Path(sys.executable).parent / "chronary"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "chronary"]
    port = free_port()
    data = tmp_path / "env-data"
    env = {
        "CHRONARY_HOST": "127.0.0.1",
        "CHRONARY_PORT": str(port),
        "CHRONARY_DATA_DIR": str(data),
        "CHRONARY_PUBLIC_URL": "https://cal.example.test",
    }
    with ServerProcess([], port, env=env, command=command) as server:  # no subcommand: serve
        assert db_file(data).is_file()
        key = server.first_key()
        assert key
        with server.client(key) as c:
            cal = c.post("/v1/calendars", json={"name": "Team", "timezone": "Europe/Paris"})
            assert cal.status_code == 201, cal.text
            assert cal.json()["ical_url"].startswith("https://cal.example.test/ical/")


def test_flags_override_env(serve, data_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "from-env"
    server = serve(env={"CHRONARY_DATA_DIR": str(other), "CHRONARY_PORT": "1"})
    assert db_file(data_dir).is_file()
    assert not other.exists()
    assert server.first_key()


def test_default_data_dir_is_the_user_data_dir(serve, tmp_path: Path) -> None:
    home = tmp_path / "home"
    xdg = tmp_path / "xdg-data"
    home.mkdir()
    server = serve(data_dir=None, env={"HOME": str(home), "XDG_DATA_HOME": str(xdg)})
    if sys.platform.startswith("linux"):
        expected = xdg / "chronary" / "chronary.db"
    else:  # macOS: ~/Library/Application Support/chronary
        expected = home / "Library" / "Application Support" / "chronary" / "chronary.db"
    assert expected.is_file()
    assert str(expected) in server.output
    assert server.first_key()


def test_newer_database_is_refused_with_a_clear_message(data_dir: Path) -> None:
    made = run_cli("keys", "list", "--data-dir", str(data_dir))  # creates and migrates the database
    assert made.returncode == 0, made.stderr
    # this test process never opens the file with apsw, so stdlib sqlite3 is safe here
    conn = sqlite3.connect(db_file(data_dir))
    with conn:
        conn.execute("INSERT INTO schema_migrations (name, applied_at) VALUES ('9999_from_the_future', 'x')")
    conn.close()

    port = free_port()
    result = run_cli("serve", "--port", str(port), "--data-dir", str(data_dir), timeout=30)
    assert result.returncode != 0
    assert "newer Chronary" in result.stderr
    assert "9999_from_the_future" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for command in (["keys", "list"], ["keys", "create"]):
        other = run_cli(*command, "--data-dir", str(data_dir))
        assert other.returncode != 0
        assert "newer Chronary" in other.stderr


def test_port_in_use_fails_with_non_zero_exit(serve, tmp_path: Path) -> None:
    first = serve()
    result = run_cli("serve", "--port", str(first.port), "--data-dir", str(tmp_path / "other"), timeout=30)
    assert result.returncode != 0
    assert "address already in use" in (result.stdout + result.stderr)
    assert httpx.get(f"{first.base_url}/health").status_code == 200  # the first one is untouched
