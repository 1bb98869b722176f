"""Config as data: one definition per setting drives `serve` flags, the environment and `chronary config`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chronary.config import OPTIONS, Settings, load_settings, resolve
from chronary.runtime import open_runtime
from tests.cli.serveproc import run_cli


def test_every_setting_has_a_serve_flag() -> None:
    """Except provider credentials and endpoints (environment only: a secret in argv shows in ps)."""
    result = run_cli("serve", "--help")
    assert result.returncode == 0, result.stderr
    flagged = [opt for opt in OPTIONS if opt.flag]
    assert len(flagged) >= 11
    for opt in flagged:
        assert opt.flag_name in result.stdout, opt.name
        assert opt.env in result.stdout, opt.name
    for opt in OPTIONS:
        if not opt.flag:
            assert opt.name.startswith(("google_", "microsoft_", "slack_", "discord_", "telegram_", "connect_")), opt.name
            assert opt.flag_name not in result.stdout, opt.name


def test_config_never_prints_a_client_secret(tmp_path: Path) -> None:
    env = {"CHRONARY_GOOGLE_CLIENT_SECRET": "GOCSPX-very-secret", "CHRONARY_GOOGLE_CLIENT_ID": "123.apps"}
    result = run_cli("config", "--json", "--data-dir", str(tmp_path), env=env)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["google_client_secret"]["value"] == "(set)" and rows["google_client_id"]["value"] == "123.apps"
    assert rows["microsoft_client_secret"]["value"] == "(not set)"
    assert "very-secret" not in result.stdout


def test_config_prints_each_value_with_its_source(tmp_path: Path) -> None:
    env = {"CHRONARY_FEED_PAST_DAYS": "30", "CHRONARY_PORT": "9999"}
    result = run_cli("config", "--json", "--port", "7777", "--data-dir", str(tmp_path), env=env)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {o.name for o in OPTIONS}
    assert rows["port"] == {"name": "port", "env": "CHRONARY_PORT", "value": "7777", "source": "flag"}
    assert rows["feed_past_days"]["value"] == "30" and rows["feed_past_days"]["source"] == "environment"
    assert rows["sqlite_synchronous"]["value"] == "full" and rows["sqlite_synchronous"]["source"] == "default"
    assert rows["data_dir"]["value"] == str(tmp_path)

    plain = run_cli("config", "--data-dir", str(tmp_path), env=env)
    assert plain.returncode == 0, plain.stderr
    assert "feed_past_days" in plain.stdout and "(environment CHRONARY_FEED_PAST_DAYS)" in plain.stdout


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("CHRONARY_PORT", "70000", "port must be 1–65535"),
        ("CHRONARY_WORKERS", "maybe", "not a boolean"),
        ("CHRONARY_SQLITE_SYNCHRONOUS", "off", "must be one of full, normal"),
        ("CHRONARY_PUBLIC_URL", "cal.example.com", "must start with http"),
        ("CHRONARY_FEED_RATE_LIMIT_PER_MINUTE", "0", "must be at least 1"),
    ],
)
def test_bad_values_name_the_setting(env: str, value: str, message: str) -> None:
    with pytest.raises(SystemExit) as raised:
        load_settings(environ={env: value})
    assert env in str(raised.value) and message in str(raised.value)


def test_bad_flag_value_names_the_flag() -> None:
    with pytest.raises(SystemExit) as raised:
        load_settings({"log_level": "loud"}, environ={})
    assert "--log-level" in str(raised.value)


def test_flag_beats_environment_beats_default() -> None:
    settings, sources = resolve({"host": "0.0.0.0"}, environ={"CHRONARY_HOST": "10.0.0.2", "CHRONARY_PORT": "8000"})
    assert (settings.host, settings.port, settings.feed_past_days) == ("0.0.0.0", 8000, 90)
    assert (sources["host"], sources["port"], sources["feed_past_days"]) == ("flag", "environment", "default")


@pytest.mark.parametrize(("mode", "pragma"), [(None, 2), ("normal", 1), ("full", 2)])
def test_sqlite_synchronous_is_full_unless_configured(tmp_path: Path, mode: str | None, pragma: int) -> None:
    """WAL + synchronous=NORMAL can lose acknowledged commits on power loss: FULL is the default."""
    overrides = {"sqlite_synchronous": mode} if mode else {}
    runtime = open_runtime(Settings(data_dir=tmp_path, workers=False, **overrides))
    try:
        seen_write = runtime.db.write_sync(lambda tx: tx.conn.execute("PRAGMA synchronous").fetchall())
        seen_read = runtime.db.read_sync(lambda tx: tx.conn.execute("PRAGMA synchronous").fetchall())
    finally:
        runtime.db.close()
    assert seen_write == [{"synchronous": pragma}]
    assert seen_read == [{"synchronous": pragma}]
