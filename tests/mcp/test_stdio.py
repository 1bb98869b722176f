"""`chronary mcp`: the stdio command as a subprocess, driven by the SDK's stdio client."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client

from tests.mcp.conftest import rest, setup_org

ROOT = Path(__file__).resolve().parents[2]
EVENT = {"title": "From the desktop", "start_time": "2030-01-07T09:00:00Z", "end_time": "2030-01-07T10:00:00Z"}


def _run(args: list[str], env: dict[str, str], steps: Any) -> Any:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "chronary", "mcp", *args], env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT
    )

    async def go() -> Any:
        with open(os.devnull, "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
                await session.initialize()
                return await steps(session)

    return anyio.run(go)


def _steps(calendar_id: str, other_calendar: str) -> Any:
    async def steps(s: ClientSession) -> dict[str, Any]:
        tools = {t.name for t in (await s.list_tools()).tools}
        calendars = (await s.call_tool("list_calendars", {})).structured_content
        created = await s.call_tool("create_event", {"calendar_id": calendar_id, **EVENT, "request_id": "desk-1"})
        retried = await s.call_tool("create_event", {"calendar_id": calendar_id, **EVENT, "request_id": "desk-1"})
        foreign = await s.call_tool("get_calendar", {"calendar_id": other_calendar})
        return {"tools": tools, "calendars": calendars, "created": created, "retried": retried, "foreign": foreign}

    return steps


def _check(server: Any, org: dict[str, Any], out: dict[str, Any]) -> None:
    assert {"list_calendars", "find_meeting_time", "confirm_hold"} <= out["tools"]
    assert [c["id"] for c in out["calendars"]["data"]] == [org["cal_a"]["id"]]
    assert not out["created"].is_error, out["created"].content
    assert out["retried"].structured_content == out["created"].structured_content
    assert out["foreign"].is_error and out["foreign"].structured_content["error"]["type"] == "not_found"
    with rest(server.base_url, server.key) as c:
        events = c.get(f"/v1/calendars/{org['cal_a']['id']}/events").json()["data"]
    assert [(e["id"], e["title"]) for e in events] == [(out["created"].structured_content["id"], EVENT["title"])]


def test_stdio_on_the_data_dir(live_server: Any, data_dir: Path) -> None:
    server = live_server()
    org = setup_org(server)
    env = {"CHRONARY_DATA_DIR": str(data_dir)}
    out = _run(["--data-dir", str(data_dir), "--key", org["ada_key"]], env, _steps(org["cal_a"]["id"], org["cal_b"]["id"]))
    _check(server, org, out)


def test_stdio_bridged_to_a_running_server_with_the_key_from_the_environment(live_server: Any) -> None:
    server = live_server()
    org = setup_org(server)
    env = {"CHRONARY_API_KEY": org["ada_key"]}
    out = _run(["--url", server.base_url], env, _steps(org["cal_a"]["id"], org["cal_b"]["id"]))
    _check(server, org, out)


def test_stdio_refuses_a_bad_key(tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "chronary", "mcp", "--data-dir", str(tmp_path), "--key", "chr_ak_wrong"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        input="",
    )
    assert done.returncode != 0
    assert "Invalid API key" in done.stderr or "API key" in done.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "chronary", "mcp", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "CHRONARY_API_KEY"},
    )
    assert missing.returncode == 2 and "CHRONARY_API_KEY" in missing.stderr
