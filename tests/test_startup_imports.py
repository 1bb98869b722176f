"""`serve` imports only what answering requests needs: libraries used by one kind of connection,
by MCP or by automation steps are imported when first used (issue 20, item 7: start-up time).

Checked in a fresh interpreter: build the app, run its lifespan with the workers started (they
have nothing to do on an empty database), answer /health, then look at `sys.modules`. A module
that starts importing one of these at the top is what this catches; bench/startup_bench.py has
the figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# each is imported by the code that uses it, never at start
LAZY = (
    "mcp",  # chronary/mcp/mount.py: on the first /mcp request
    "pydantic",  # the MCP SDK's models (and Litestar's pydantic plugin, left out: app.ChronaryApp)
    "opentelemetry",  # Litestar's look for OpenTelemetry middleware (skipped: app.ChronaryApp)
    "caldav",  # providers: when a connection of that kind syncs
    "niquests",
    "lxml",
    "msal",
    "google.auth",
    "google_auth_oauthlib",
    "requests",
    "jsonschema",  # services/connect/calls.py: when an action's inputs are checked
    "croniter",  # services/automation/cron.py: when a schedule is read
    "jinja2",  # services/automation/templating.py, imported where a template is checked or rendered
    "sqlite_utils",  # the `db` commands
)

SCRIPT = """
import json, sys, time
from pathlib import Path
from litestar.testing import TestClient
from chronary.app import create_app
from chronary.config import Settings

app = create_app(Settings(data_dir=Path(sys.argv[1]), workers=True))
with TestClient(app) as client:
    assert client.get("/health").status_code == 200
    time.sleep(0.3)  # the workers' first pass over an empty database
    assert client.get("/health").status_code == 200
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after_start(data_dir: Path) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(data_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_serving_imports_no_feature_library_until_it_is_used(tmp_path: Path) -> None:
    loaded = _modules_after_start(tmp_path / "data")
    assert "chronary.app" in loaded and "litestar" in loaded
    early = sorted(name for name in LAZY if name in loaded)
    assert early == [], f"imported at start, before anything used them: {early}"
