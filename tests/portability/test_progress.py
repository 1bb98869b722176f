"""Progress bars: drawn on stderr when it is a terminal, never with --quiet or into a pipe; stdout
keeps only the summary lines either way."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.cli.serveproc import CHRONARY, clean_env, on_a_terminal
from tests.portability.conftest import FIXTURES


def test_bars_on_a_terminal_and_none_when_quiet(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    code, out, shown = on_a_terminal("import", "ics", str(FIXTURES / "google.ics"), "--new-calendar", "G", *data)
    assert code == 0, shown
    assert "Importing google.ics" in shown and "4/4" in shown  # the bar, with its count of UIDs
    assert out.startswith("cal_") and "6 created" in out and "Importing" not in out

    code, out, shown = on_a_terminal("import", "ics", str(FIXTURES / "google.ics"), "--new-calendar", "G", "--quiet", *data)
    assert code == 0, shown
    assert "Importing" not in shown and "6 created" in out

    piped = subprocess.run(
        [*CHRONARY, "import", "ics", str(FIXTURES / "apple.ics"), "--new-calendar", "A", *data],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    assert "Importing" not in piped.stderr  # not a terminal: no bar
