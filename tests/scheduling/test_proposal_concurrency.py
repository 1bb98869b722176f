"""Concurrent answers over real sockets: a proposal resolves once, with one set of events."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import httpx

from chronary.clock import ManualClock
from tests.scheduling.conftest import T0

SLOTS = [
    {"start": "2026-03-23T10:00:00Z", "end": "2026-03-23T11:00:00Z"},
    {"start": "2026-03-23T14:00:00Z", "end": "2026-03-23T15:00:00Z"},
]


def together(calls: list[Any]) -> list[httpx.Response]:
    """Run the calls on threads released by one barrier; return their responses in order."""
    barrier = threading.Barrier(len(calls))
    out: list[Any] = [None] * len(calls)

    def go(i: int) -> None:
        barrier.wait(timeout=10)
        out[i] = calls[i]()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    return out


def test_two_participants_accepting_at_once_resolve_exactly_once(live_server: Any) -> None:
    server = live_server(clock=ManualClock(T0), workers=False)
    with server.client() as org:
        agents = [org.post("/v1/agents", json={"name": f"P{i}"}).json() for i in range(2)]
        cals = [org.post(f"/v1/agents/{a['id']}/calendars", json={"name": "W", "timezone": "UTC"}).json() for a in agents]
        keys = [org.post("/v1/keys", json={"name": "k", "agent_id": a["id"]}).json()["secret"] for a in agents]
        clients = [server.client(k) for k in keys]
        try:
            for _ in range(6):
                prp = org.post(
                    "/v1/proposals",
                    json={
                        "title": "Race",
                        "organizer_agent_id": agents[0]["id"],
                        "participant_agent_ids": [a["id"] for a in agents],
                        "candidate_slots": SLOTS,
                        "duration_minutes": 30,
                    },
                ).json()
                # the organizer is a participant and already accepts: make it a real race of two answers
                url = f"/v1/proposals/{prp['id']}/respond"
                clients[0].post(url, json={"agent_id": agents[0]["id"], "response": "decline", "slot_index": 0})
                replies = together(
                    [
                        lambda c=c, a=a, u=url: c.post(u, json={"agent_id": a["id"], "response": "accept", "slot_index": 0})
                        for c, a in zip(clients, agents, strict=True)
                    ]
                )
                assert sorted(r.status_code for r in replies) in ([200, 200], [200, 409]), [r.text for r in replies]
                final = org.get(f"/v1/proposals/{prp['id']}").json()
                assert final["status"] == "resolved" and final["resolved_slot_index"] == 0
                assert len({p["event_id"] for p in final["participants"]}) == 2
            for cal in cals:
                events = org.get(f"/v1/calendars/{cal['id']}/events", params={"limit": 200}).json()["data"]
                assert Counter(e["status"] for e in events) == {"confirmed": 6}  # no duplicates, no holds left
        finally:
            for c in clients:
                c.close()


def test_two_force_resolutions_at_once_make_one_set_of_events(live_server: Any) -> None:
    server = live_server(clock=ManualClock(T0), workers=False)
    with server.client() as org, server.client() as org2:
        agents = [org.post("/v1/agents", json={"name": f"P{i}"}).json() for i in range(3)]
        cals = [org.post(f"/v1/agents/{a['id']}/calendars", json={"name": "W", "timezone": "UTC"}).json() for a in agents]
        prp = org.post(
            "/v1/proposals",
            json={
                "title": "Race",
                "organizer_agent_id": agents[0]["id"],
                "participant_agent_ids": [a["id"] for a in agents[1:]],
                "candidate_slots": SLOTS,
                "duration_minutes": 30,
            },
        ).json()
        url = f"/v1/proposals/{prp['id']}/resolve"
        replies = together([lambda: org.post(url, json={"slot_index": 0}), lambda: org2.post(url, json={"slot_index": 1})])
        assert sorted(r.status_code for r in replies) == [200, 409], [r.text for r in replies]
        winner = next(r.json() for r in replies if r.status_code == 200)
        for cal in cals[1:]:
            events = org.get(f"/v1/calendars/{cal['id']}/events").json()["data"]
            assert [(e["status"], e["start_time"]) for e in events] == [
                ("confirmed", SLOTS[winner["resolved_slot_index"]]["start"])
            ]
