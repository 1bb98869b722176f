-- Foundation: orgs, API keys, agents, calendars, events, and the webhook outbox.
-- Plain SQL readable by SQLite 3.40 (the system library `chronary db` tooling uses).

CREATE TABLE orgs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    agent_id TEXT,                      -- no FK: a deleted agent's keys stay, revoked, for the audit trail
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    last4 TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,          -- SHA-256 of the secret; the secret itself is never stored
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    email TEXT,
    timezone TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX agents_org ON agents(org_id, id);

CREATE TABLE calendars (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    agent_id TEXT REFERENCES agents(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    timezone TEXT NOT NULL,
    agent_status TEXT NOT NULL,
    default_reminders TEXT,             -- JSON int[] or NULL
    metadata TEXT NOT NULL DEFAULT '{}',
    feed_token TEXT NOT NULL UNIQUE,
    revision INTEGER NOT NULL DEFAULT 0, -- bumped on every change to the calendar or its events
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX calendars_agent ON calendars(agent_id, id);

CREATE TABLE events (
    id TEXT PRIMARY KEY,
    calendar_id TEXT NOT NULL REFERENCES calendars(id) ON DELETE CASCADE,
    ical_uid TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT,
    location TEXT,
    start_ts INTEGER NOT NULL,          -- unix seconds, UTC
    end_ts INTEGER NOT NULL,
    all_day INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    hold_expires_at INTEGER,
    priority INTEGER,
    reminders TEXT,                     -- JSON int[]; NULL = the calendar's default_reminders
    recurrence TEXT,                    -- JSON string[] of RRULE/EXDATE/RDATE lines
    recurring_event_id TEXT,            -- set on a stored exception: the series it overrides
    recurrence_id_ts INTEGER,           -- the original start of the occurrence it overrides
    attendees TEXT NOT NULL DEFAULT '[]',
    metadata TEXT NOT NULL DEFAULT '{}',
    source TEXT NOT NULL DEFAULT 'internal',
    read_only INTEGER NOT NULL DEFAULT 0,
    remote TEXT,                        -- JSON link to a provider copy, NULL for local events
    sequence INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX events_calendar_start ON events(calendar_id, start_ts);
CREATE INDEX events_calendar_end ON events(calendar_id, end_ts);
CREATE INDEX events_hold_expiry ON events(hold_expires_at) WHERE status = 'hold';
CREATE INDEX events_series ON events(recurring_event_id) WHERE recurring_event_id IS NOT NULL;
CREATE INDEX events_uid ON events(calendar_id, ical_uid);

-- Transactional outbox: written in the same transaction as the change it describes, so a
-- crash can neither lose nor invent a webhook. The webhook worker fans rows out to endpoints.
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,            -- whe_…, the payload id receivers deduplicate on
    type TEXT NOT NULL,
    agent_id TEXT,                      -- for agent-scoped endpoints
    resource_id TEXT NOT NULL,          -- keeps per-resource order
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    dispatched_at TEXT
);
CREATE INDEX outbox_pending ON outbox(seq) WHERE dispatched_at IS NULL;
