-- Scheduling: availability rule sets (one per agent) and meeting proposals.
-- Plain SQL readable by SQLite 3.40.

CREATE TABLE availability_rules (
    id TEXT PRIMARY KEY,                -- rul_…
    agent_id TEXT NOT NULL UNIQUE REFERENCES agents(id) ON DELETE CASCADE,
    timezone TEXT,                      -- NULL: follow the agent's timezone
    working_hours TEXT NOT NULL,        -- JSON {mon: [{start, end}], …, sun: […]}
    buffer_before_minutes INTEGER NOT NULL DEFAULT 0,
    buffer_after_minutes INTEGER NOT NULL DEFAULT 0,
    minimum_notice_minutes INTEGER NOT NULL DEFAULT 0,
    overrides TEXT NOT NULL DEFAULT '[]', -- JSON [{date, hours: [{start, end}]}]
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE proposals (
    id TEXT PRIMARY KEY,                -- prp_…
    org_id TEXT NOT NULL REFERENCES orgs(id),
    organizer_agent_id TEXT NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL,               -- open | resolved | declined | cancelled
    duration_minutes INTEGER NOT NULL,
    candidate_slots TEXT NOT NULL,      -- JSON [{start_ts, end_ts, proposed_by}]
    hold_slots INTEGER NOT NULL,
    expires_at INTEGER,                 -- unix seconds; open past this answers as expired
    resolved_slot INTEGER,              -- index into candidate_slots
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    resolved_at TEXT
);
CREATE INDEX proposals_org_status ON proposals(org_id, status, id);

CREATE TABLE proposal_participants (
    proposal_id TEXT NOT NULL REFERENCES proposals(id) ON DELETE CASCADE,
    agent_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    calendar_id TEXT NOT NULL,          -- where holds and the final event go
    response TEXT NOT NULL DEFAULT 'pending', -- pending | accept | decline | counter
    accepted TEXT NOT NULL DEFAULT '[]', -- JSON slot indexes this agent accepts
    declined TEXT NOT NULL DEFAULT '[]', -- JSON slot indexes this agent rejects
    responded_at TEXT,
    event_id TEXT,                      -- the confirmed event created on resolution
    PRIMARY KEY (proposal_id, agent_id)
);
CREATE INDEX proposal_participants_agent ON proposal_participants(agent_id, proposal_id);

CREATE TABLE proposal_holds (
    proposal_id TEXT NOT NULL REFERENCES proposals(id) ON DELETE CASCADE,
    agent_id TEXT NOT NULL,
    slot_index INTEGER NOT NULL,
    calendar_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (proposal_id, agent_id, slot_index)
);
