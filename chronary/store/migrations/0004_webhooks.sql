-- Webhooks: endpoints (whk_), deliveries (dlv_) fanned out from the outbox, and the attempt log.
-- Plain SQL readable by SQLite 3.40. Times are `iso_ms` text (fixed width, so they compare and
-- sort as strings).

CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    url TEXT NOT NULL,
    events TEXT NOT NULL,               -- JSON string[]: event types, or ["*"]
    description TEXT,
    agent_id TEXT,                      -- scope; no FK so agent.deleted still reaches the endpoint
    status TEXT NOT NULL,               -- active | paused | disabled
    disabled_reason TEXT,
    secret_enc TEXT NOT NULL,           -- whsec_… encrypted with the server's SecretBox
    failing_since TEXT,                 -- first failed attempt since the last success
    since_seq INTEGER NOT NULL,         -- outbox seq at creation: older changes are not sent
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints(org_id, id);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event_id TEXT NOT NULL,             -- whe_…: the payload id, the same on every attempt
    event_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,          -- deliveries of one resource to one endpoint keep order
    seq INTEGER NOT NULL,               -- outbox seq: the order of the changes
    payload TEXT NOT NULL,              -- the exact body sent, byte for byte on every attempt
    status TEXT NOT NULL,               -- pending | retrying | succeeded | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,               -- NULL once succeeded or failed
    last_attempt_at TEXT,
    last_status_code INTEGER,
    last_response_body TEXT,            -- at most 1 KB
    last_error TEXT,
    last_duration_ms INTEGER,
    completed_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, id);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(endpoint_id, next_attempt_at)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX webhook_deliveries_order ON webhook_deliveries(endpoint_id, resource_id, seq)
    WHERE status IN ('pending', 'retrying');

CREATE TABLE webhook_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    outcome TEXT NOT NULL,              -- in_flight | succeeded | retry | failed | interrupted
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status_code INTEGER,
    response_body TEXT,
    error TEXT,
    duration_ms INTEGER
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts(delivery_id, number);
CREATE INDEX webhook_attempts_in_flight ON webhook_attempts(outcome) WHERE outcome = 'in_flight';
