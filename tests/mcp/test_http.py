"""MCP over Streamable HTTP at /mcp, driven by the SDK's own client against a live server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx

from tests.mcp.conftest import mcp_session, rest, setup_org

MON = "2030-01-07"  # a Monday, well after the live server's clock (the real one)


def soon(hours: int) -> str:
    """An instant `hours` from now, on the hour (for what is upcoming on the real clock)."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return (now + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _call(server: Any, key: str, name: str, args: dict[str, Any]) -> Any:
    async def go() -> Any:
        async with mcp_session(server.base_url, key) as s:
            return await s.call_tool(name, args)

    return anyio.run(go)


def test_tools_are_listed_with_schemas_and_annotations(live_server: Any) -> None:
    server = live_server()

    async def go() -> Any:
        async with mcp_session(server.base_url, server.key) as s:
            return (await s.list_tools()).tools

    tools = {t.name: t for t in anyio.run(go)}
    assert set(tools) == {
        "list_calendars", "get_calendar", "list_events", "create_event", "update_event", "cancel_event",
        "place_hold", "confirm_hold", "release_hold", "get_availability", "find_meeting_time", "create_proposal",
        "respond_to_proposal", "get_proposal", "list_proposals", "get_agent_context", "list_connections",
        "refresh_connection", "list_actions", "run_action",
    }  # fmt: skip
    create = tools["create_event"]
    assert create.input_schema["required"] == ["calendar_id", "title", "start_time", "end_time"]
    assert "request_id" in create.input_schema["properties"]
    assert create.input_schema["examples"][0]["title"] == "Design review"
    assert create.output_schema is not None and "ical_uid" in create.output_schema["properties"]
    assert create.annotations is not None and create.annotations.read_only_hint is False
    assert tools["list_events"].annotations.read_only_hint is True  # type: ignore[union-attr]
    assert tools["release_hold"].annotations.destructive_hint is True  # type: ignore[union-attr]
    assert tools["cancel_event"].annotations.idempotent_hint is True  # type: ignore[union-attr]
    assert tools["create_event"].annotations.idempotent_hint is False  # type: ignore[union-attr]
    assert all(t.description and len(t.description) > 30 for t in tools.values())


def test_no_key_is_401_with_the_envelope(live_server: Any) -> None:
    server = live_server()
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    r = httpx.post(f"{server.base_url}/mcp", json=body, headers=headers)
    assert r.status_code == 401
    error = r.json()["error"]
    assert error["type"] == "unauthorized" and "API key" in error["message"]
    assert error["request_id"].startswith("req_")
    bad = httpx.post(f"{server.base_url}/mcp", json=body, headers={**headers, "x-api-key": "chr_sk_nope"})
    assert bad.status_code == 401 and bad.json()["error"]["type"] == "unauthorized"


def test_events_holds_and_cancel_show_up_over_rest(live_server: Any) -> None:
    server = live_server()
    org = setup_org(server)
    cal = org["cal_a"]["id"]
    key = org["ada_key"]

    async def go() -> dict[str, Any]:
        async with mcp_session(server.base_url, key) as s:
            out: dict[str, Any] = {}
            r = await s.call_tool("list_calendars", {})
            out["calendars"] = r.structured_content
            r = await s.call_tool("get_calendar", {"calendar_id": cal})
            out["calendar"] = r.structured_content
            r = await s.call_tool(
                "create_event",
                {"calendar_id": cal, "title": "Standup", "start_time": f"{MON}T09:00:00Z",
                 "end_time": f"{MON}T09:15:00Z", "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"]},
            )  # fmt: skip
            assert not r.is_error, r.content
            out["series"] = r.structured_content
            r = await s.call_tool(
                "list_events", {"calendar_id": cal, "start": f"{MON}T00:00:00Z", "end": "2030-01-14T00:00:00Z"}
            )
            out["window"] = r.structured_content
            r = await s.call_tool(
                "create_event",
                {"calendar_id": cal, "title": "Review", "start_time": f"{MON}T13:00:00Z", "end_time": f"{MON}T14:00:00Z"},
            )
            out["review"] = r.structured_content
            r = await s.call_tool(
                "update_event", {"calendar_id": cal, "event_id": out["review"]["id"], "title": "Design review"}
            )
            out["updated"] = r.structured_content
            r = await s.call_tool(
                "place_hold",
                {"calendar_id": cal, "title": "Maybe", "start_time": f"{MON}T15:00:00Z", "end_time": f"{MON}T16:00:00Z"},
            )
            out["hold"] = r.structured_content
            r = await s.call_tool("confirm_hold", {"calendar_id": cal, "event_id": out["hold"]["id"]})
            out["confirmed"] = r.structured_content
            r = await s.call_tool(
                "place_hold",
                {"calendar_id": cal, "title": "Drop", "start_time": f"{MON}T17:00:00Z", "end_time": f"{MON}T18:00:00Z"},
            )
            out["hold2"] = r.structured_content
            r = await s.call_tool("release_hold", {"calendar_id": cal, "event_id": out["hold2"]["id"]})
            out["released"] = r.structured_content
            r = await s.call_tool("cancel_event", {"calendar_id": cal, "event_id": out["review"]["id"]})
            out["cancelled"] = r.structured_content
            return out

    out = anyio.run(go)
    assert [c["id"] for c in out["calendars"]["data"]] == [cal]
    assert out["calendar"]["name"] == "Ada work"
    standups = [e for e in out["window"]["data"] if e["title"] == "Standup"]
    assert len(standups) == 3 and {e["recurring_event_id"] for e in standups} == {out["series"]["id"]}
    assert out["updated"]["title"] == "Design review"
    assert out["hold"]["status"] == "hold" and out["confirmed"]["status"] == "confirmed"
    assert out["released"] == {"event_id": out["hold2"]["id"], "released": True}
    assert out["cancelled"]["status"] == "cancelled"
    with rest(server.base_url, key) as c:
        assert c.get(f"/v1/calendars/{cal}/events/{out['hold']['id']}").json()["status"] == "confirmed"
        assert c.get(f"/v1/calendars/{cal}/events/{out['hold2']['id']}").status_code == 404
        review = c.get(f"/v1/calendars/{cal}/events/{out['review']['id']}").json()
        assert (review["title"], review["status"]) == ("Design review", "cancelled")


def test_an_agent_key_is_confined_to_its_agent(live_server: Any) -> None:
    server = live_server()
    org = setup_org(server)
    other = org["cal_b"]["id"]

    async def go() -> list[Any]:
        async with mcp_session(server.base_url, org["ada_key"]) as s:
            return [
                await s.call_tool("get_calendar", {"calendar_id": other}),
                await s.call_tool(
                    "create_event",
                    {"calendar_id": other, "title": "x", "start_time": f"{MON}T09:00:00Z", "end_time": f"{MON}T10:00:00Z"},
                ),
                await s.call_tool("get_agent_context", {"agent_id": org["bob"]["id"]}),
                await s.call_tool("list_calendars", {"agent_id": org["bob"]["id"]}),
                await s.call_tool("list_connections", {}),
            ]

    got, create, context, calendars, connections = anyio.run(go)
    for result in (got, create):
        assert result.is_error
        assert result.structured_content["error"]["type"] == "not_found"
        assert result.structured_content["error"]["param"] == "calendar_id"
        assert other in result.content[0].text
    assert context.is_error and context.structured_content["error"]["type"] == "not_found"
    assert calendars.is_error and calendars.structured_content["error"]["type"] == "not_found"
    assert connections.is_error and connections.structured_content["error"]["type"] == "forbidden"
    with rest(server.base_url, server.key) as c:
        assert c.get(f"/v1/calendars/{other}/events").json()["total"] == 0


def test_bad_arguments_are_tool_errors_naming_the_field(live_server: Any) -> None:
    server = live_server()
    org = setup_org(server)
    cal = org["cal_a"]["id"]

    async def go() -> list[Any]:
        async with mcp_session(server.base_url, org["ada_key"]) as s:
            return [
                await s.call_tool("create_event", {"calendar_id": cal, "title": "x", "start_time": f"{MON}T09:00:00Z"}),
                await s.call_tool(
                    "create_event",
                    {"calendar_id": cal, "title": "x", "start_time": "soon", "end_time": f"{MON}T10:00:00Z"},
                ),
                await s.call_tool("list_events", {"calendar_id": cal, "start": f"{MON}T00:00:00Z", "end": 5}),
                await s.call_tool("get_calendar", {"calendar_id": cal, "colour": "red"}),
                await s.call_tool(
                    "find_meeting_time",
                    {
                        "agent_ids": [org["ada"]["id"]],
                        "start": f"{MON}T00:00:00Z",
                        "end": "2030-01-08T00:00:00Z",
                        "duration_minutes": 30,
                    },
                ),  # fmt: skip
                await s.call_tool("no_such_tool", {}),
            ]

    missing, bad_time, wrong_type, unknown, too_few, no_tool = anyio.run(go)
    assert missing.is_error and missing.structured_content["error"] == {
        "type": "validation_error", "message": "end_time is required", "param": "end_time", "request_id": None,
    }  # fmt: skip
    assert bad_time.is_error and bad_time.structured_content["error"]["param"] == "start_time"
    assert wrong_type.is_error and wrong_type.structured_content["error"]["param"] == "end"
    assert unknown.is_error and unknown.structured_content["error"]["param"] == "colour"
    assert too_few.is_error and too_few.structured_content["error"]["param"] == "agent_ids"
    assert no_tool.is_error and no_tool.structured_content["error"]["type"] == "not_found"
    assert "Traceback" not in "".join(r.content[0].text for r in (missing, bad_time, wrong_type, unknown, too_few))


def test_a_retried_create_with_the_same_request_id_books_once(live_server: Any) -> None:
    server = live_server()
    org = setup_org(server)
    cal = org["cal_a"]["id"]
    args = {"calendar_id": cal, "title": "Once", "start_time": f"{MON}T09:00:00Z", "end_time": f"{MON}T10:00:00Z"}

    async def go() -> list[Any]:
        results = []
        for _ in range(2):  # a new session each time, as a client retrying after a lost answer would
            async with mcp_session(server.base_url, org["ada_key"]) as s:
                results.append(await s.call_tool("create_event", {**args, "request_id": "book-1"}))
        async with mcp_session(server.base_url, org["ada_key"]) as s:
            results.append(await s.call_tool("create_event", {**args, "title": "Twice", "request_id": "book-2",
                                                              "allow_overlap": True}))  # fmt: skip
        return results

    first, retry, other = anyio.run(go)
    assert not first.is_error and not retry.is_error and not other.is_error
    assert retry.structured_content == first.structured_content
    assert other.structured_content["id"] != first.structured_content["id"]
    with rest(server.base_url, org["ada_key"]) as c:
        titles = sorted(e["title"] for e in c.get(f"/v1/calendars/{cal}/events").json()["data"])
    assert titles == ["Once", "Twice"]


def test_find_a_time_with_two_agents_hold_and_confirm_it(live_server: Any) -> None:
    """The issue's "done when": an agent key sees its calendar, finds a time with two other agents,
    holds it and confirms it, and REST shows the same."""
    server = live_server()
    org = setup_org(server)
    with rest(server.base_url, server.key) as c:
        cy = c.post("/v1/agents", json={"name": "Cy"}).json()
        cal_c = c.post(f"/v1/agents/{cy['id']}/calendars", json={"name": "Cy", "timezone": "UTC"}).json()
        for cal_id, start, end in ((org["cal_b"]["id"], "00:00", "10:00"), (cal_c["id"], "10:00", "11:00")):
            busy = {"title": "busy", "start_time": f"{MON}T{start}:00Z", "end_time": f"{MON}T{end}:00Z"}
            r = c.post(f"/v1/calendars/{cal_id}/events", json=busy)
            assert r.status_code == 201, r.text
    cal = org["cal_a"]["id"]
    agents = [org["ada"]["id"], org["bob"]["id"], cy["id"]]

    async def go() -> dict[str, Any]:
        async with mcp_session(server.base_url, org["ada_key"]) as s:
            seen = (await s.call_tool("list_calendars", {})).structured_content
            found = await s.call_tool(
                "find_meeting_time",
                {"agent_ids": agents, "start": f"{MON}T00:00:00Z", "end": "2030-01-08T00:00:00Z",
                 "duration_minutes": 60, "hold_title": "Kickoff", "request_id": "kickoff"},
            )  # fmt: skip
            assert not found.is_error, found.content
            hold = found.structured_content["hold"]
            again = await s.call_tool(
                "find_meeting_time",
                {"agent_ids": agents, "start": f"{MON}T00:00:00Z", "end": "2030-01-08T00:00:00Z",
                 "duration_minutes": 60, "hold_title": "Kickoff", "request_id": "kickoff"},
            )  # fmt: skip
            confirmed = await s.call_tool("confirm_hold", {"calendar_id": hold["calendar_id"], "event_id": hold["id"]})
            return {"seen": seen, "found": found.structured_content, "again": again.structured_content,
                    "confirmed": confirmed.structured_content}  # fmt: skip

    out = anyio.run(go)
    assert out["seen"]["data"][0]["id"] == cal
    assert out["found"]["slots"][0] == {"start": f"{MON}T11:00:00Z", "end": f"{MON}T12:00:00Z"}
    hold = out["found"]["hold"]
    assert (hold["calendar_id"], hold["status"], hold["title"]) == (cal, "hold", "Kickoff")
    assert (hold["start_time"], hold["end_time"]) == (f"{MON}T11:00:00Z", f"{MON}T12:00:00Z")
    assert out["again"] == out["found"]  # the retry placed no second hold
    assert out["confirmed"]["status"] == "confirmed"
    with rest(server.base_url, org["ada_key"]) as c:
        events = c.get(f"/v1/calendars/{cal}/events").json()["data"]
    assert [(e["id"], e["status"], e["start_time"]) for e in events] == [(hold["id"], "confirmed", f"{MON}T11:00:00Z")]


def test_availability_context_and_proposals(live_server: Any) -> None:
    server = live_server()
    org = setup_org(server)
    with rest(server.base_url, server.key) as c:
        bob_key = c.post("/v1/keys", json={"name": "bob", "agent_id": org["bob"]["id"]}).json()["secret"]
        c.post(f"/v1/calendars/{org['cal_a']['id']}/events",
               json={"title": "Busy", "start_time": f"{MON}T09:00:00Z", "end_time": f"{MON}T10:00:00Z"})  # fmt: skip
        c.post(f"/v1/calendars/{org['cal_a']['id']}/events",
               json={"title": "Soon", "start_time": soon(2), "end_time": soon(3)})  # fmt: skip
    slot = {"start": f"{MON}T14:00:00Z", "end": f"{MON}T14:30:00Z"}

    async def go() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with mcp_session(server.base_url, org["ada_key"]) as s:
            out["availability"] = (
                await s.call_tool("get_availability", {"start": f"{MON}T00:00:00Z", "end": "2030-01-08T00:00:00Z"})
            ).structured_content
            out["context"] = (await s.call_tool("get_agent_context", {"upcoming": 3})).structured_content
            out["proposal"] = (
                await s.call_tool(
                    "create_proposal",
                    {
                        "title": "Plan",
                        "participant_agent_ids": [org["bob"]["id"]],
                        "candidate_slots": [slot],
                        "duration_minutes": 30,
                    },
                )  # fmt: skip
            ).structured_content
        async with mcp_session(server.base_url, bob_key) as s:
            open_ = (await s.call_tool("list_proposals", {"status": "open"})).structured_content
            out["open"] = [p["id"] for p in open_["data"]]
            answer = await s.call_tool(
                "respond_to_proposal", {"proposal_id": out["proposal"]["id"], "response": "accept", "slot_index": 0}
            )
            out["answer"] = answer.structured_content
        async with mcp_session(server.base_url, org["ada_key"]) as s:
            out["status"] = (await s.call_tool("get_proposal", {"proposal_id": out["proposal"]["id"]})).structured_content
        return out

    out = anyio.run(go)
    assert out["availability"]["agent_id"] == org["ada"]["id"]
    assert out["availability"]["busy"][0]["start"] == f"{MON}T09:00:00Z"
    assert out["context"]["agent"]["id"] == org["ada"]["id"]
    assert [e["title"] for e in out["context"]["upcoming"]] == ["Soon"]  # Busy is years away
    assert out["proposal"]["status"] == "open"
    assert out["open"] == [out["proposal"]["id"]]
    assert out["answer"]["status"] == "resolved" and out["status"]["status"] == "resolved"
    with rest(server.base_url, server.key) as c:
        assert c.get(f"/v1/proposals/{out['proposal']['id']}").json()["status"] == "resolved"
        bob_events = c.get(f"/v1/calendars/{org['cal_b']['id']}/events", params={"status": "confirmed"}).json()
    assert [(e["title"], e["start_time"]) for e in bob_events["data"]] == [("Plan", slot["start"])]


def test_connections_and_actions(live_server: Any) -> None:
    server = live_server()
    org = setup_org(server)
    cal = org["cal_a"]["id"]

    async def go() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with mcp_session(server.base_url, server.key) as s:
            out["connections"] = (await s.call_tool("list_connections", {})).structured_content
            out["refresh_missing"] = await s.call_tool("refresh_connection", {"connection_id": "con_missing"})
            out["actions"] = (await s.call_tool("list_actions", {"provider_type": "chronary"})).structured_content
            out["run"] = await s.call_tool(
                "run_action",
                {"provider_type": "chronary", "action_name": "create_event", "request_id": "act-1",
                 "inputs": {"calendar_id": cal, "title": "Via action", "start_time": f"{MON}T09:00:00Z",
                            "end_time": f"{MON}T10:00:00Z"}},
            )  # fmt: skip
            out["rerun"] = await s.call_tool(
                "run_action",
                {"provider_type": "chronary", "action_name": "create_event", "request_id": "act-1",
                 "inputs": {"calendar_id": cal, "title": "Via action", "start_time": f"{MON}T09:00:00Z",
                            "end_time": f"{MON}T10:00:00Z"}},
            )  # fmt: skip
        return out

    out = anyio.run(go)
    assert out["connections"] == {"data": [], "total": 0}
    missing = out["refresh_missing"]
    assert missing.is_error and missing.structured_content["error"]["type"] == "not_found"
    assert missing.structured_content["error"]["param"] == "connection_id"
    names = {a["action"] for a in out["actions"]["data"]}
    assert {"create_event", "create_hold", "find_meeting_time"} <= names
    run = out["run"]
    assert not run.is_error, run.content
    assert run.structured_content["output"]["title"] == "Via action"
    assert out["rerun"].structured_content == run.structured_content
    with rest(server.base_url, server.key) as c:
        assert [e["title"] for e in c.get(f"/v1/calendars/{cal}/events").json()["data"]] == ["Via action"]


def test_resources_and_the_prompt(live_server: Any) -> None:
    server = live_server()
    org = setup_org(server)
    with rest(server.base_url, server.key) as c:
        c.post(f"/v1/calendars/{org['cal_a']['id']}/events",
               json={"title": "Soon", "start_time": soon(24), "end_time": soon(25)})  # fmt: skip
        c.post(f"/v1/calendars/{org['cal_a']['id']}/events",
               json={"title": "Later", "start_time": soon(24 * 30), "end_time": soon(24 * 30 + 1)})  # fmt: skip

    async def go() -> dict[str, Any]:
        async with mcp_session(server.base_url, org["ada_key"]) as s:
            listed = (await s.list_resources()).resources
            templates = (await s.list_resource_templates()).resource_templates
            read = await s.read_resource(listed[0].uri)
            prompts = (await s.list_prompts()).prompts
            prompt = await s.get_prompt("schedule_meeting", {"participants": "Bob and Cy", "duration_minutes": "45"})
            try:
                await s.read_resource(f"chronary://calendars/{org['cal_b']['id']}")
                refused = None
            except Exception as exc:  # an MCP error: someone else's calendar is not there
                refused = str(exc)
            return {"listed": listed, "templates": templates, "read": read, "prompts": prompts, "prompt": prompt,
                    "refused": refused}  # fmt: skip

    out = anyio.run(go)
    assert [str(r.uri) for r in out["listed"]] == [f"chronary://calendars/{org['cal_a']['id']}"]
    assert out["templates"][0].uri_template == "chronary://calendars/{calendar_id}"
    body = json.loads(out["read"].contents[0].text)
    assert body["calendar"]["id"] == org["cal_a"]["id"]
    assert [e["title"] for e in body["upcoming_events"]] == ["Soon"]  # the next 14 days only
    assert out["refused"] is not None and "not_found" in out["refused"]
    assert [p.name for p in out["prompts"]] == ["schedule_meeting"]
    text = out["prompt"].messages[0].content.text
    assert "45-minute meeting with Bob and Cy" in text and "find_meeting_time" in text and "confirm_hold" in text


def test_concurrent_sessions_act_as_their_own_keys(live_server: Any) -> None:
    server = live_server()
    org = setup_org(server)
    with rest(server.base_url, server.key) as c:
        bob_key = c.post("/v1/keys", json={"name": "bob", "agent_id": org["bob"]["id"]}).json()["secret"]
    results: dict[str, list[Any]] = {}

    async def book(who: str, key: str, cal: str, minute: int) -> None:
        async with mcp_session(server.base_url, key) as s:
            for hour in range(9, 13):
                start = f"{MON}T{hour:02d}:{minute:02d}:00Z"
                end = f"{MON}T{hour:02d}:{minute + 30:02d}:00Z" if minute == 0 else f"{MON}T{hour + 1:02d}:00:00Z"
                r = await s.call_tool(
                    "create_event", {"calendar_id": cal, "title": who, "start_time": start, "end_time": end}
                )
                results.setdefault(who, []).append(r)
            results.setdefault(who, []).append(await s.call_tool("list_calendars", {}))

    async def go() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(book, "ada-1", org["ada_key"], org["cal_a"]["id"], 0)
            tg.start_soon(book, "ada-2", org["ada_key"], org["cal_a"]["id"], 30)
            tg.start_soon(book, "bob", bob_key, org["cal_b"]["id"], 0)
            tg.start_soon(book, "bob-on-ada", bob_key, org["cal_a"]["id"], 0)

    anyio.run(go)
    for who in ("ada-1", "ada-2", "bob"):
        assert not any(r.is_error for r in results[who]), who
    assert all(r.structured_content["error"]["type"] == "not_found" for r in results["bob-on-ada"][:-1])
    assert [c["id"] for c in results["bob"][-1].structured_content["data"]] == [org["cal_b"]["id"]]
    assert [c["id"] for c in results["ada-1"][-1].structured_content["data"]] == [org["cal_a"]["id"]]
    with rest(server.base_url, server.key) as c:
        ada_events = c.get(f"/v1/calendars/{org['cal_a']['id']}/events").json()["data"]
        bob_events = c.get(f"/v1/calendars/{org['cal_b']['id']}/events").json()["data"]
    assert sorted(e["title"] for e in ada_events) == ["ada-1"] * 4 + ["ada-2"] * 4
    assert [e["title"] for e in bob_events] == ["bob"] * 4


def test_hosts_localhost_and_lan(live_server: Any, tmp_path: Any) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    loopback = live_server(data_dir=tmp_path / "a", public_url="http://chronary.lan:8765")
    headers = {"Accept": "application/json, text/event-stream", "Authorization": f"Bearer {loopback.key}"}
    url = f"{loopback.base_url}/mcp"
    port = loopback.base_url.rsplit(":", 1)[1]
    assert httpx.post(url, json=body, headers={**headers, "Host": f"localhost:{port}"}).status_code != 421
    assert httpx.post(url, json=body, headers={**headers, "Host": "chronary.lan:8765"}).status_code != 421
    refused = httpx.post(url, json=body, headers={**headers, "Host": "192.168.1.20:8765"})
    assert refused.status_code == 421  # bound to loopback: an unknown name is a rebinding attempt

    lan = live_server(data_dir=tmp_path / "b", host="0.0.0.0")  # serve listens on every interface

    async def go() -> Any:
        async with mcp_session(lan.base_url, lan.key, headers={"Host": "192.168.1.20:8765"}) as s:
            return await s.call_tool("list_calendars", {})

    result = anyio.run(go)
    assert not result.is_error and result.structured_content["total"] == 0


def test_book_if_free_over_mcp_lists_the_conflicts(live_server: Any) -> None:
    """create_event and place_hold take if_free: a clash anywhere in the agent's busy time is a conflict
    error carrying the REST answer's `conflicts`, and nothing is booked."""
    server = live_server()
    org = setup_org(server)
    cal = org["cal_a"]["id"]
    with rest(server.base_url, org["ada_key"]) as c:
        second = c.post(f"/v1/agents/{org['ada']['id']}/calendars", json={"name": "Ada home", "timezone": "UTC"}).json()
        busy = c.post(
            f"/v1/calendars/{second['id']}/events",
            json={"title": "Dentist", "start_time": f"{MON}T09:30:00Z", "end_time": f"{MON}T10:30:00Z"},
        ).json()
    slot = {"calendar_id": cal, "start_time": f"{MON}T09:00:00Z", "end_time": f"{MON}T10:00:00Z", "if_free": True}

    async def go() -> list[Any]:
        async with mcp_session(server.base_url, org["ada_key"]) as s:
            return [
                await s.call_tool("create_event", {**slot, "title": "Review"}),
                await s.call_tool("place_hold", {**slot, "title": "Maybe"}),
                await s.call_tool(
                    "create_event",
                    {**slot, "title": "Later", "start_time": f"{MON}T11:00:00Z", "end_time": f"{MON}T12:00:00Z"},
                ),  # fmt: skip
            ]

    booked, held, later = anyio.run(go)
    for refused in (booked, held):
        assert refused.is_error
        error = refused.structured_content["error"]
        assert error["type"] == "conflict"
        assert [c["event_id"] for c in error["conflicts"]] == [busy["id"]]
        assert error["conflicts"][0]["calendar_id"] == second["id"]
    assert not later.is_error and later.structured_content["title"] == "Later"
    with rest(server.base_url, org["ada_key"]) as c:
        titles = sorted(e["title"] for e in c.get(f"/v1/calendars/{cal}/events").json()["data"])
    assert titles == ["Later"]
