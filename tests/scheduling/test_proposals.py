"""Proposals: holds while open, answers, resolution into events, decline, cancel, access."""

from __future__ import annotations

from typing import Any

import pytest

from tests.scheduling.conftest import err, outbox_types

MON = "2026-03-23"
SLOT0 = {"start": f"{MON}T10:00:00Z", "end": f"{MON}T11:00:00Z"}
SLOT1 = {"start": f"{MON}T14:00:00Z", "end": f"{MON}T16:00:00Z"}


def team(api: Any, n: int = 3) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    agents = [api.agent(f"P{i}") for i in range(n)]
    return agents, [api.calendar(a["id"]) for a in agents]


def propose(api: Any, organizer: str, participants: list[str], **fields: Any) -> dict[str, Any]:
    body = {
        "title": "Sync",
        "organizer_agent_id": organizer,
        "participant_agent_ids": participants,
        "candidate_slots": [SLOT0, SLOT1],
        "duration_minutes": 30,
        **fields,
    }
    r = api.post("/v1/proposals", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def respond(api: Any, pid: str, agent_id: str, response: str, **fields: Any) -> Any:
    return api.post(f"/v1/proposals/{pid}/respond", json={"agent_id": agent_id, "response": response, **fields})


def events_of(api: Any, cal_id: str, status: str | None = None) -> list[dict[str, Any]]:
    params = {"status": status} if status else {}
    return api.get(f"/v1/calendars/{cal_id}/events", params=params).json()["data"]


def test_holds_placed_then_resolution_creates_events_and_releases_holds(sapi: Any) -> None:
    sapi.receive_webhooks()  # proposals' changes logged with their payloads
    (o, p1, p2), cals = team(sapi)
    prp = propose(sapi, o["id"], [p1["id"], p2["id"]], expires_at="2026-03-22T00:00:00Z")
    assert prp["id"].startswith("prp_") and prp["status"] == "open"
    assert len(prp["holds"]) == 4  # 2 slots × 2 participants; the organizer is not a participant here
    holds = events_of(sapi, cals[1]["id"], "hold")
    assert [(h["start_time"], h["end_time"]) for h in holds] == [
        (f"{MON}T10:00:00Z", f"{MON}T10:30:00Z"),
        (f"{MON}T14:00:00Z", f"{MON}T14:30:00Z"),
    ]
    assert holds[0]["hold_expires_at"] == "2026-03-22T00:00:00Z"
    assert events_of(sapi, cals[0]["id"]) == []

    r = respond(sapi, prp["id"], p1["id"], "accept", slot_index=1)
    assert r.status_code == 200 and r.json()["status"] == "open"
    assert r.json()["participants"][0]["accepted_slots"] == [1]
    r = respond(sapi, prp["id"], p2["id"], "accept")  # every slot: slot 1 is the common one
    body = r.json()
    assert body["status"] == "resolved" and body["resolved_slot_index"] == 1
    assert body["resolved_slot"]["start"] == f"{MON}T14:00:00Z" and body["holds"] == []
    for cal, part in zip(cals[1:], body["participants"], strict=True):
        evs = events_of(sapi, cal["id"])
        assert [(e["status"], e["start_time"], e["end_time"]) for e in evs] == [
            ("confirmed", f"{MON}T14:00:00Z", f"{MON}T14:30:00Z")
        ]
        assert evs[0]["id"] == part["event_id"] and evs[0]["metadata"]["proposal_id"] == prp["id"]
    types = outbox_types(sapi)
    assert types.count("event.hold_created") == 4 and types.count("event.hold_released") == 4
    assert types.count("proposal.created") == 1 and types.count("proposal.responded") == 2
    assert types.count("proposal.resolved") == 1
    assert types.index("proposal.resolved") > max(i for i, t in enumerate(types) if t == "proposal.responded")

    assert err(respond(sapi, prp["id"], p1["id"], "decline"), 409)["type"] == "conflict"
    assert err(sapi.post(f"/v1/proposals/{prp['id']}/resolve", json={"slot_index": 0}), 409)
    assert err(sapi.post(f"/v1/proposals/{prp['id']}/cancel"), 409)


def test_organizer_as_participant_accepts_its_own_slots(sapi: Any) -> None:
    (o, p1), cals = team(sapi, 2)
    prp = propose(sapi, o["id"], [o["id"], p1["id"]], hold_slots=False)
    assert prp["holds"] == [] and prp["participants"][0]["response"] == "accept"
    assert prp["participants"][0]["accepted_slots"] == [0, 1]
    assert events_of(sapi, cals[0]["id"]) == []
    body = respond(sapi, prp["id"], p1["id"], "accept", slot_index=0).json()
    assert body["status"] == "resolved" and body["resolved_slot_index"] == 0
    assert len(events_of(sapi, cals[0]["id"], "confirmed")) == 1


def test_busy_participant_gets_no_hold_for_that_slot(sapi: Any) -> None:
    (o, p1, p2), cals = team(sapi)
    sapi.event(cals[1]["id"], f"{MON}T10:00:00Z", f"{MON}T10:15:00Z")
    prp = propose(sapi, o["id"], [p1["id"], p2["id"]])
    assert {(h["agent_id"], h["slot_index"]) for h in prp["holds"]} == {(p1["id"], 1), (p2["id"], 0), (p2["id"], 1)}


def test_decline_counter_and_declined(sapi: Any) -> None:
    (o, p1, p2), cals = team(sapi)
    prp = propose(sapi, o["id"], [p1["id"], p2["id"]])
    counter = {"start": f"{MON}T17:00:00Z", "end": f"{MON}T17:30:00Z"}
    body = respond(sapi, prp["id"], p1["id"], "counter", counter_slot=counter).json()
    assert len(body["candidate_slots"]) == 3 and body["candidate_slots"][2]["proposed_by"] == p1["id"]
    assert body["participants"][0]["accepted_slots"] == [2] and len(body["holds"]) == 6
    body = respond(sapi, prp["id"], p2["id"], "decline", slot_index=2).json()
    assert body["status"] == "open" and body["participants"][1]["declined_slots"] == [2]
    assert sorted({h["slot_index"] for h in body["holds"]}) == [0, 1]  # slot 2 cannot happen: its holds went
    assert len(events_of(sapi, cals[1]["id"], "hold")) == 2
    body = respond(sapi, prp["id"], p1["id"], "decline", slot_index=0).json()
    assert body["status"] == "open"
    body = respond(sapi, prp["id"], p2["id"], "decline", slot_index=1).json()
    assert body["status"] == "declined" and body["holds"] == []  # every slot rejected by someone
    assert all(e["status"] != "hold" for c in cals for e in events_of(sapi, c["id"]))
    assert err(respond(sapi, prp["id"], p1["id"], "accept"), 409)


def test_whole_decline_and_accept_after_counter_resolves_on_counter(sapi: Any) -> None:
    (o, p1, p2), cals = team(sapi)
    prp = propose(sapi, o["id"], [p1["id"], p2["id"]])
    assert respond(sapi, prp["id"], p1["id"], "decline").json()["status"] == "declined"

    prp = propose(sapi, o["id"], [p1["id"], p2["id"]])
    respond(
        sapi, prp["id"], p1["id"], "counter", counter_slot={"start": "2026-03-24T09:00:00Z", "end": "2026-03-24T09:30:00Z"}
    )
    body = respond(sapi, prp["id"], p2["id"], "accept", slot_index=2).json()
    assert body["status"] == "resolved" and body["resolved_slot"]["start"] == "2026-03-24T09:00:00Z"


def test_force_resolve_and_cancel(sapi: Any) -> None:
    sapi.receive_webhooks()  # proposals' changes logged with their payloads
    (o, p1, p2), cals = team(sapi)
    prp = propose(sapi, o["id"], [p1["id"], p2["id"]])
    r = sapi.post(f"/v1/proposals/{prp['id']}/resolve", json={"slot_index": 0})
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    assert [e["start_time"] for e in events_of(sapi, cals[2]["id"])] == [f"{MON}T10:00:00Z"]

    prp = propose(sapi, o["id"], [p1["id"], p2["id"]])
    r = sapi.post(f"/v1/proposals/{prp['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["holds"] == []
    assert len(events_of(sapi, cals[1]["id"])) == 1  # only the event of the first proposal
    assert err(respond(sapi, prp["id"], p1["id"], "accept"), 409)
    assert err(sapi.post(f"/v1/proposals/{prp['id']}/resolve", json={"slot_index": 0}), 409)
    assert "proposal.cancelled" in outbox_types(sapi)


def test_calendar_map_and_expiry(sapi: Any, sclock: Any) -> None:
    (o, p1), cals = team(sapi, 2)
    second = sapi.calendar(p1["id"], name="Meetings")
    prp = propose(sapi, o["id"], [p1["id"]], calendar_map={p1["id"]: second["id"]}, expires_at="2026-03-20T08:00:00Z")
    assert prp["participants"][0]["calendar_id"] == second["id"]
    assert len(events_of(sapi, second["id"], "hold")) == 2 and events_of(sapi, cals[1]["id"]) == []
    sclock.advance(hours=2)
    assert sapi.get(f"/v1/proposals/{prp['id']}").json()["status"] == "expired"
    assert err(respond(sapi, prp["id"], p1["id"], "accept"), 409)
    assert [p["id"] for p in sapi.get("/v1/proposals", params={"status": "expired"}).json()["data"]] == [prp["id"]]
    assert sapi.get("/v1/proposals", params={"status": "open"}).json()["total"] == 0
    assert sapi.post(f"/v1/proposals/{prp['id']}/cancel").json()["status"] == "cancelled"


def test_list_filters_and_paging(sapi: Any) -> None:
    (o, p1, p2), _ = team(sapi)
    first = propose(sapi, o["id"], [p1["id"]], hold_slots=False)
    second = propose(sapi, o["id"], [p2["id"]], hold_slots=False)
    sapi.post(f"/v1/proposals/{first['id']}/cancel")
    page = sapi.get("/v1/proposals", params={"limit": 1}).json()
    assert page["total"] == 2 and [p["id"] for p in page["data"]] == [second["id"]]
    assert [p["id"] for p in sapi.get("/v1/proposals", params={"limit": 1, "offset": 1}).json()["data"]] == [first["id"]]
    assert [p["id"] for p in sapi.get("/v1/proposals", params={"status": "cancelled"}).json()["data"]] == [first["id"]]
    assert [p["id"] for p in sapi.get("/v1/proposals", params={"agent_id": p2["id"]}).json()["data"]] == [second["id"]]
    assert sapi.get("/v1/proposals", params={"agent_id": o["id"]}).json()["total"] == 2
    assert err(sapi.get("/v1/proposals", params={"status": "bogus"}))["param"] == "status"


def test_agent_keys_see_and_answer_only_for_themselves(sapi: Any) -> None:
    (o, p1, p2, outsider), _ = team(sapi, 4)
    prp = propose(sapi, o["id"], [p1["id"], p2["id"]], hold_slots=False)
    as_p1 = sapi.as_key(sapi.agent_key(p1["id"]))
    as_out = sapi.as_key(sapi.agent_key(outsider["id"]))
    as_o = sapi.as_key(sapi.agent_key(o["id"]))
    assert as_p1.get(f"/v1/proposals/{prp['id']}").status_code == 200
    assert as_p1.get("/v1/proposals").json()["total"] == 1
    err(as_out.get(f"/v1/proposals/{prp['id']}"), 404)
    assert as_out.get("/v1/proposals").json()["total"] == 0
    err(as_out.get("/v1/proposals", params={"agent_id": p1["id"]}), 404)
    err(respond(as_out, prp["id"], outsider["id"], "accept"), 404)
    assert err(respond(as_p1, prp["id"], p2["id"], "accept"), 403)["type"] == "forbidden"
    assert respond(as_p1, prp["id"], p1["id"], "accept").status_code == 200
    err(as_p1.post(f"/v1/proposals/{prp['id']}/cancel"), 403)
    err(as_p1.post(f"/v1/proposals/{prp['id']}/resolve", json={"slot_index": 0}), 403)
    err(
        as_p1.post(
            "/v1/proposals",
            json={
                "title": "x",
                "organizer_agent_id": o["id"],
                "participant_agent_ids": [p1["id"]],
                "candidate_slots": [SLOT0],
                "duration_minutes": 30,
            },
        ),
        403,
    )
    assert as_o.post(f"/v1/proposals/{prp['id']}/resolve", json={"slot_index": 1}).status_code == 200


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"candidate_slots": []}, "candidate_slots"),
        ({"candidate_slots": [SLOT1] * 21}, "candidate_slots"),
        ({"candidate_slots": [{"start": f"{MON}T11:00:00Z", "end": f"{MON}T10:00:00Z"}]}, "candidate_slots[0].end"),
        ({"candidate_slots": [SLOT0, {"start": f"{MON}T11:00:00Z", "end": f"{MON}T11:20:00Z"}]}, "candidate_slots[1].end"),
        (
            {"candidate_slots": [{"start": "2026-03-19T10:00:00Z", "end": "2026-03-19T11:00:00Z"}]},
            "candidate_slots[0].start",
        ),
        ({"candidate_slots": [{"start": "soon", "end": f"{MON}T11:00:00Z"}]}, "candidate_slots[0].start"),
        ({"candidate_slots": [{"start": f"{MON}T10:00:00Z"}]}, "candidate_slots[0].end"),
        ({"duration_minutes": 0}, "duration_minutes"),
        ({"participant_agent_ids": []}, "participant_agent_ids"),
        ({"participant_agent_ids": ["P1", "agt_unknown"]}, "participant_agent_ids[1]"),
        ({"participant_agent_ids": ["P1", "P1"]}, "participant_agent_ids[1]"),
        ({"participant_agent_ids": ["P1", "NOCAL"]}, "participant_agent_ids[1]"),
        ({"organizer_agent_id": "agt_unknown"}, "organizer_agent_id"),
        ({"calendar_map": {"P1": "OTHERCAL"}}, "calendar_map.P1"),
        ({"calendar_map": {"P2": "P2CAL"}}, "calendar_map.P2"),
        ({"expires_at": "2026-03-20T05:00:00Z"}, "expires_at"),
        ({"title": ""}, "title"),
        ({"hold_slot": True}, "hold_slot"),
    ],
)
def test_create_validation(vapi: Any, change: dict[str, Any], param: str) -> None:
    (o, p1, p2), cals = team(vapi)
    nocal = vapi.agent("NoCal")
    names = {"P1": p1["id"], "P2": p2["id"], "NOCAL": nocal["id"], "OTHERCAL": cals[2]["id"], "P2CAL": cals[2]["id"]}
    body = {
        "title": "Sync",
        "organizer_agent_id": o["id"],
        "participant_agent_ids": [p1["id"]],
        "candidate_slots": [SLOT0],
        "duration_minutes": 30,
        **change,
    }
    body["participant_agent_ids"] = [names.get(x, x) for x in body["participant_agent_ids"]]
    if "calendar_map" in body:
        body["calendar_map"] = {names[k]: names[v] for k, v in body["calendar_map"].items()}
        param = "calendar_map." + names[param.removeprefix("calendar_map.")]
    e = err(vapi.post("/v1/proposals", json=body))
    assert e["param"] == param, e


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"response": "accept", "slot_index": 2}, "slot_index"),
        ({"response": "accept", "slot_index": -1}, "slot_index"),
        ({"response": "maybe"}, "response"),
        ({"response": "counter"}, "counter_slot"),
        ({"response": "counter", "slot_index": 0, "counter_slot": SLOT0}, "slot_index"),
        ({"response": "accept", "counter_slot": SLOT0}, "counter_slot"),
        (
            {"response": "counter", "counter_slot": {"start": f"{MON}T10:00:00Z", "end": f"{MON}T10:10:00Z"}},
            "counter_slot.end",
        ),
        ({"response": "accept", "agent_id": "STRANGER"}, "agent_id"),
    ],
)
def test_respond_validation(vapi: Any, body: dict[str, Any], param: str) -> None:
    (o, p1, stranger), _ = team(vapi)
    prp = propose(vapi, o["id"], [p1["id"]], hold_slots=False)
    payload = {"agent_id": p1["id"], **body}
    if payload["agent_id"] == "STRANGER":
        payload["agent_id"] = stranger["id"]
    e = err(vapi.post(f"/v1/proposals/{prp['id']}/respond", json=payload))
    assert e["param"] == param, e


def test_counter_beyond_20_slots_and_bad_resolve_index(sapi: Any) -> None:
    (o, p1), _ = team(sapi, 2)
    slots = [
        {
            "start": f"2026-03-{24 + i // 10}T{10 + i % 10:02d}:00:00Z",
            "end": f"2026-03-{24 + i // 10}T{10 + i % 10:02d}:30:00Z",
        }
        for i in range(20)
    ]
    prp = propose(sapi, o["id"], [p1["id"]], candidate_slots=slots, hold_slots=False)
    e = err(respond(sapi, prp["id"], p1["id"], "counter", counter_slot=SLOT0))
    assert e["param"] == "counter_slot"
    assert err(sapi.post(f"/v1/proposals/{prp['id']}/resolve", json={"slot_index": 20}))["param"] == "slot_index"
    err(sapi.get("/v1/proposals/prp_nope"), 404)
    err(respond(sapi, "prp_nope", p1["id"], "accept"), 404)


def test_holds_that_lapse_leave_the_proposal_and_resolution_still_works(sapi: Any, sclock: Any) -> None:
    from chronary.workers.holds import HoldExpiryWorker
    from tests.scheduling.conftest import run

    (o, p1), cals = team(sapi, 2)
    prp = propose(sapi, o["id"], [p1["id"]], expires_at="2026-03-20T07:00:00Z")
    assert len(prp["holds"]) == 2
    sclock.advance(minutes=59)
    respond(sapi, prp["id"], p1["id"], "decline", slot_index=0)
    sclock.advance(seconds=61)  # holds lapse with the proposal; the worker deletes them
    assert len(run(HoldExpiryWorker(sapi.runtime).sweep())) == 1
    body = sapi.get(f"/v1/proposals/{prp['id']}").json()
    assert body["status"] == "expired" and body["holds"] == []
    assert sapi.post(f"/v1/proposals/{prp['id']}/cancel").status_code == 200


def test_openapi_documents_the_scheduling_endpoints(sapi: Any) -> None:
    r = sapi.get("/schema/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in (
        "/v1/agents/{agent_id}/availability-rules",
        "/v1/agents/{agent_id}/availability",
        "/v1/availability/find-meeting-time",
        "/v1/agents/{agent_id}/context",
        "/v1/proposals",
        "/v1/proposals/{proposal_id}/respond",
        "/v1/proposals/{proposal_id}/resolve",
        "/v1/proposals/{proposal_id}/cancel",
    ):
        assert path in paths, path
    assert paths["/v1/availability/find-meeting-time"]["post"]["summary"]


def test_proposal_webhooks_are_addressed_to_every_participant(sapi: Any) -> None:
    import json

    from chronary.store import outbox as outbox_store

    (o, p1, p2), _ = team(sapi)
    prp = propose(sapi, o["id"], [p1["id"], p2["id"]], hold_slots=False)
    rows = sapi.runtime.db.read_sync(lambda tx: outbox_store.recent(tx.conn, 100))
    created = [r for r in rows if r["type"] == "proposal.created" and r["resource_id"] == prp["id"]]
    assert len(created) == 1 and created[0]["agent_id"] == o["id"]
    assert sorted(json.loads(created[0]["audience"])) == sorted([p1["id"], p2["id"]])
