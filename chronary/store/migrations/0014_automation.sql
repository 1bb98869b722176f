-- Automation (issue 17): flows, their trigger subscriptions, executions and their step logs.
-- Plain SQL readable by SQLite 3.40. Times are iso_ms text; *_ts columns are unix seconds.

CREATE TABLE flows (
    id TEXT PRIMARY KEY,                -- flw_
    org_id TEXT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    description TEXT,
    status TEXT NOT NULL,               -- enabled | disabled
    steps TEXT NOT NULL,                -- JSON: the ordered steps (branches nest theirs)
    concurrency INTEGER,                -- executions at once; NULL: the flow_concurrency setting
    template TEXT,                      -- the template slug it was cloned from
    created_by TEXT,                    -- the key that made it: its runs act with that key's rights
    agent_id TEXT,                      -- that key's agent (agent keys see only their agent's flows)
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX flows_org ON flows(org_id, id);

-- A flow's trigger (one per flow): what starts it.
CREATE TABLE flow_triggers (
    id TEXT PRIMARY KEY,                -- trg_
    flow_id TEXT NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
    org_id TEXT NOT NULL,
    provider_type TEXT NOT NULL,
    trigger_name TEXT NOT NULL,
    kind TEXT NOT NULL,                 -- event | webhook | schedule | poll
    connection_id TEXT REFERENCES connections(id) ON DELETE CASCADE,
    config TEXT NOT NULL,               -- JSON, per kind (filters, cron + timezone, poll inputs, minutes)
    state TEXT,                         -- JSON: schedule / poll / starting cursors
    next_run_ts INTEGER,                -- schedule, poll and event.starting: when the worker looks next
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX flow_triggers_flow ON flow_triggers(flow_id);

-- The change types an event or webhook trigger listens to (its triggerName and config.also).
CREATE TABLE flow_trigger_types (
    match_type TEXT NOT NULL,
    trigger_id TEXT NOT NULL REFERENCES flow_triggers(id) ON DELETE CASCADE,
    PRIMARY KEY (match_type, trigger_id)
);
CREATE INDEX flow_trigger_types_trigger ON flow_trigger_types(trigger_id);
CREATE INDEX flow_triggers_due ON flow_triggers(next_run_ts) WHERE next_run_ts IS NOT NULL;

CREATE TABLE executions (
    id TEXT PRIMARY KEY,                -- exe_
    org_id TEXT NOT NULL,
    flow_id TEXT NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
    trigger_id TEXT,
    status TEXT NOT NULL,               -- queued | running | waiting | succeeded | failed | cancelled
    mode TEXT NOT NULL,                 -- trigger | test | replay
    replay_of TEXT,
    dedup_key TEXT,                     -- what started it (a change id, a tick, an occurrence): never twice
    trigger_data TEXT NOT NULL,         -- JSON (capped)
    error TEXT,
    error_step TEXT,
    run_after_ts INTEGER NOT NULL,      -- not before (delays, retry backoff)
    lease_owner TEXT,
    lease_until_ts INTEGER,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    duration_ms INTEGER
);
CREATE UNIQUE INDEX executions_dedup ON executions(flow_id, dedup_key) WHERE dedup_key IS NOT NULL;
CREATE INDEX executions_flow ON executions(flow_id, id);
CREATE INDEX executions_org ON executions(org_id, id);
CREATE INDEX executions_due ON executions(run_after_ts) WHERE status IN ('queued', 'waiting');
CREATE INDEX executions_running ON executions(flow_id) WHERE status = 'running';

CREATE TABLE execution_steps (
    execution_id TEXT NOT NULL REFERENCES executions(id) ON DELETE CASCADE,
    path TEXT NOT NULL,                 -- "0", "2.then.1": where in the (nested) steps
    step_id TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,               -- running | succeeded | failed | skipped | waiting | stopped
    input TEXT,                         -- JSON (capped), the rendered inputs
    output TEXT,                        -- JSON (capped)
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at TEXT,
    finished_at TEXT,
    duration_ms INTEGER,
    seq INTEGER NOT NULL,               -- the order steps ran in
    PRIMARY KEY (execution_id, path)
);
