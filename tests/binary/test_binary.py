"""The one-file PyInstaller binary: build it from chronary.spec, then run it like a user would.

Slow (about a minute to build on two cores), so it carries the `binary` marker: CI runs it,
locally `pytest -m "not binary"` leaves it out. It checks what freezing tends to break:
bundled migrations (the database is created), modules found by discovery (API routes and the
hold-expiry worker), lazily imported libraries, and the sqlite-utils `db` commands.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.cli.serveproc import ServerProcess, db_file, free_port, on_a_terminal, run_cli

pytestmark = pytest.mark.binary
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", str(ROOT / "packaging" / "build-binary.sh"), str(dist)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"build failed:\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
    exe = dist / "chronary"
    assert exe.is_file() and os.access(exe, os.X_OK)
    return exe


def test_binary_serves_with_bundled_migrations_and_discovered_modules(binary: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    # no subcommand (the default command is serve), configured through the environment; an empty
    # PYTHONTZPATH hides the machine's zone files, so time zones come from the binary's tzdata.zip
    env = {"CHRONARY_PORT": str(port), "CHRONARY_DATA_DIR": str(data), "PYTHONTZPATH": ""}
    server = ServerProcess([], port, command=[str(binary)], env=env)
    server.start(timeout=60)  # one-file binaries unpack themselves first: allow a slow start
    try:
        health = httpx.get(f"{server.base_url}/health")
        assert health.status_code == 200
        assert health.json()["schema_version"] == len(list((ROOT / "chronary/store/migrations").glob("*.sql")))
        assert db_file(data).is_file()
        key = server.first_key()
        assert key, server.output

        with server.client(key) as c:
            assert c.get("/v1/agents").status_code == 200
            agent = c.post("/v1/agents", json={"name": "Ada", "timezone": "America/New_York"})
            assert agent.status_code == 201, agent.text  # zoneinfo data present in the binary
            cal = c.post(f"/v1/agents/{agent.json()['id']}/calendars", json={"name": "Work", "timezone": "Asia/Tokyo"})
            assert cal.status_code == 201, cal.text
            events_url = f"/v1/calendars/{cal.json()['id']}/events"
            soon = datetime.now(UTC) + timedelta(seconds=4)
            hold = c.post(
                events_url,
                json={
                    "title": "Tentative",
                    "status": "hold",
                    "hold_expires_at": soon.isoformat(),
                    "start_time": "2030-03-01T10:00:00Z",
                    "end_time": "2030-03-01T11:00:00Z",
                },
            )
            assert hold.status_code == 201, hold.text

            schema = c.get("/schema/openapi.json")
            assert schema.status_code == 200
            paths = schema.json()["paths"]
            assert "/v1/agents" in paths and "/v1/keys" in paths and "/health" in paths
            assert any(p.endswith("/events") for p in paths)

            # the bundled web UI and its vendored assets come out of the binary too
            shell = httpx.get(f"{server.base_url}/")
            assert shell.status_code == 200 and '<script type="importmap">' in shell.text
            asset = re.search(r'src="(/assets/app\.js\?v=[0-9a-f]+)"', shell.text)
            assert asset, shell.text[:500]
            app_js = httpx.get(server.base_url + asset.group(1))
            assert app_js.status_code == 200 and "immutable" in app_js.headers["cache-control"]
            calendar_lib = httpx.get(f"{server.base_url}/vendor/event-calendar/event-calendar.min.js")
            assert calendar_lib.status_code == 200 and len(calendar_lib.content) > 50_000
            assert httpx.get(f"{server.base_url}/login").status_code == 200

            # the hold-expiry worker was discovered and runs inside the frozen serve
            deadline = time.monotonic() + 20
            status = 200
            while time.monotonic() < deadline:
                status = c.get(f"{events_url}/{hold.json()['id']}").status_code
                if status == 404:
                    break
                time.sleep(0.2)
            assert status == 404, "hold was not expired: workers not discovered in the binary?"

        # the maintenance commands work from the binary too, against the live database
        listed = run_cli("keys", "list", "--data-dir", str(data), command=[str(binary)])
        assert listed.returncode == 0, listed.stderr
        assert key[-4:] in listed.stdout and key not in listed.stdout
        info = run_cli("db", "info", "--json", "--data-dir", str(data), command=[str(binary)])
        assert info.returncode == 0, info.stderr
        assert json.loads(info.stdout)["tables"]["agents"] == 1
    finally:
        server.stop()


def test_binary_cli_version_and_unknown_command(binary: Path) -> None:
    version = run_cli("--version", command=[str(binary)])
    assert version.returncode == 0 and "chronary" in version.stdout
    wrong = run_cli("nonsense", command=[str(binary)])
    assert wrong.returncode == 2 and "No such command" in wrong.stderr


def test_binary_imports_with_progress_bars_and_exports(binary: Path, tmp_path: Path) -> None:
    """The portability commands run frozen, rich's progress bars included (the spec keeps rich)."""
    data = ["--data-dir", str(tmp_path / "data")]
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "portability" / "google.ics"
    code, out, shown = on_a_terminal("import", "ics", str(fixture), "--new-calendar", "G", *data, command=[str(binary)])
    assert code == 0, shown
    assert "Importing google.ics" in shown and "4/4" in shown
    calendar_id = out.split()[0].rstrip(":")
    assert calendar_id.startswith("cal_"), out
    exported = run_cli("export", "ics", "--calendar", calendar_id, *data, command=[str(binary)])
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.count("BEGIN:VEVENT") >= 4 and "END:VCALENDAR" in exported.stdout
