"""Import and export errors: one clear line, exit status 2, and nothing half-written."""

from __future__ import annotations

from pathlib import Path

from tests.portability.conftest import FIXTURES, count_rows


def _one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.output


def test_missing_file(api, chronary, tmp_path: Path) -> None:
    cal = api.calendar()
    _one_line_error(chronary("import", "ics", str(tmp_path / "nope.ics"), "--calendar", cal["id"]), "no such file")


def test_not_an_ics_file(api, chronary, data_dir: Path, tmp_path: Path) -> None:
    cal = api.calendar()
    (tmp_path / "page.ics").write_text("<html><body>Sign in</body></html>")
    _one_line_error(chronary("import", "ics", str(tmp_path / "page.ics"), "--calendar", cal["id"]), "HTML page")
    assert count_rows(data_dir, "events") == 0


def test_a_bad_event_in_the_middle_writes_nothing(api, chronary, data_dir: Path, tmp_path: Path) -> None:
    """The third of four VEVENTs is broken: neither the events before it nor a new calendar are written."""
    text = (FIXTURES / "google.ics").read_text()
    broken = text.replace("DTEND:20260120T160000Z", "DTEND:20260120T140000Z")  # ends before it starts
    assert broken != text
    (tmp_path / "broken.ics").write_text(broken)
    cal = api.calendar()
    calendars = count_rows(data_dir, "calendars")
    _one_line_error(
        chronary("import", "ics", str(tmp_path / "broken.ics"), "--calendar", cal["id"]),
        "broken.ics",
        "7kq3r9t2v5x8z1b4d6f0h2j4l6@google.com",
        "DTEND is before DTSTART",
    )
    _one_line_error(chronary("import", "ics", str(tmp_path / "broken.ics"), "--new-calendar", "X"), "DTEND")
    assert count_rows(data_dir, "events") == 0
    assert count_rows(data_dir, "calendars") == calendars


def test_unknown_calendar_and_agent(api, chronary, data_dir: Path) -> None:
    _one_line_error(chronary("import", "ics", str(FIXTURES / "google.ics"), "--calendar", "cal_nope"), "cal_nope")
    _one_line_error(
        chronary("import", "ics", str(FIXTURES / "google.ics"), "--new-calendar", "X", "--agent", "agt_nope"), "agt_nope"
    )
    _one_line_error(chronary("export", "ics", "--calendar", "cal_nope"), "cal_nope")
    assert count_rows(data_dir, "events") == 0
    assert count_rows(data_dir, "calendars") == 0


def test_usage_mistakes(api, chronary) -> None:
    both = chronary("import", "ics", str(FIXTURES / "google.ics"), "--calendar", "cal_x", "--new-calendar", "X")
    assert both.exit_code == 2 and "either --calendar" in both.stderr
    neither = chronary("import", "ics", str(FIXTURES / "google.ics"))
    assert neither.exit_code == 2


def test_an_org_export_given_to_import_ics(api, chronary, tmp_path: Path) -> None:
    out = tmp_path / "org"
    assert chronary("export", "org", "--out", str(out)).exit_code == 0
    _one_line_error(chronary("import", "ics", str(out), "--new-calendar", "X"), "chronary import org")


def test_bad_radicale_folder_and_org_export(api, chronary, data_dir: Path, tmp_path: Path) -> None:
    _one_line_error(chronary("import", "radicale", str(tmp_path / "nope")), "no such folder")
    (tmp_path / "empty").mkdir()
    _one_line_error(chronary("import", "radicale", str(tmp_path / "empty")), "no Radicale calendars")
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    _one_line_error(chronary("import", "org", str(tmp_path / "junk.zip")), "not a readable .zip")
    _one_line_error(chronary("import", "org", str(tmp_path / "empty")), "manifest.json")
    assert count_rows(data_dir, "calendars") == 0
