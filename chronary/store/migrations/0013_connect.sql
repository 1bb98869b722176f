-- chronary: foreign-keys-off
-- The Connect API (issue 16). The line above makes store/migrate.py run this file with foreign
-- keys off (SQLite's documented table-rebuild procedure) and check them before it commits.
--
-- 1. connections serve both APIs: calendar accounts (an agent's, synced) and Connect's API-key
--    providers (the org's: ntfy, slack, …; agent_id NULL, sync_mode 'none', never scheduled).
--    New: name (the user's label), settings (JSON of the non-secret credential fields, e.g.
--    base_url), inbound_hash (sha256 of the inbound URL's token, for the lookup) and
--    inbound_token (that token, encrypted, so the URL can be shown again).
CREATE TABLE connections_new (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    agent_id TEXT REFERENCES agents(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    status TEXT NOT NULL,
    status_reason TEXT,
    username TEXT,
    email TEXT,
    server_url TEXT,
    secret TEXT,
    sync_mode TEXT NOT NULL,            -- realtime | polling | none (Connect API-key providers)
    sync_interval_minutes INTEGER NOT NULL DEFAULT 5,
    last_synced_at TEXT,
    last_sync TEXT,
    token_last_at TEXT,
    token_failures INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    next_sync_at INTEGER NOT NULL DEFAULT 0,
    full_resync INTEGER NOT NULL DEFAULT 0,
    refresh_requested_at INTEGER,
    lease_owner TEXT,
    lease_until INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    name TEXT,
    settings TEXT,
    inbound_hash TEXT,
    inbound_token TEXT,
    last_checked_at TEXT,
    last_used_at TEXT
);
INSERT INTO connections_new (
    id, org_id, agent_id, provider, status, status_reason, username, email, server_url, secret, sync_mode,
    sync_interval_minutes, last_synced_at, last_sync, token_last_at, token_failures, failures, next_sync_at,
    full_resync, refresh_requested_at, lease_owner, lease_until, created_at, updated_at)
SELECT id, org_id, agent_id, provider, status, status_reason, username, email, server_url, secret, sync_mode,
    sync_interval_minutes, last_synced_at, last_sync, token_last_at, token_failures, failures, next_sync_at,
    full_resync, refresh_requested_at, lease_owner, lease_until, created_at, updated_at
FROM connections;
DROP TABLE connections;
ALTER TABLE connections_new RENAME TO connections;
CREATE INDEX connections_org ON connections(org_id, id);
CREATE INDEX connections_due ON connections(next_sync_at) WHERE secret IS NOT NULL AND sync_mode != 'none';
CREATE INDEX connections_provider ON connections(org_id, provider);
CREATE UNIQUE INDEX connections_inbound ON connections(inbound_hash) WHERE inbound_hash IS NOT NULL;
CREATE TRIGGER connections_forget_links AFTER DELETE ON connections BEGIN
    DELETE FROM sync_links WHERE owner_id = old.id;
END;

-- 2. Custom providers: any HTTP API made a provider (POST /connect/v1/providers).
CREATE TABLE custom_providers (
    org_id TEXT NOT NULL REFERENCES orgs(id),
    type TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    base_url TEXT NOT NULL,
    auth TEXT NOT NULL,                 -- JSON {style: bearer|header|query|basic|none, header_name?, query_param?}
    docs_url TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (org_id, type)
);

-- 3. Provider webhook subscriptions are webhook endpoints (one delivery machinery) for one
--    provider's events, optionally of one connection; /v1/webhooks does not list them.
ALTER TABLE webhook_endpoints ADD COLUMN provider_type TEXT;
ALTER TABLE webhook_endpoints ADD COLUMN connection_id TEXT;

-- 4. The proxy's and actions' audit log: who, when, what; never secrets or bodies.
CREATE TABLE connect_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id TEXT NOT NULL,
    key_id TEXT,                        -- the API key (or web session's key) that made the call
    kind TEXT NOT NULL,                 -- proxy | action
    provider_type TEXT NOT NULL,
    connection_id TEXT,
    method TEXT,                        -- proxy: the HTTP method; action: NULL
    path TEXT,                          -- proxy: the path without its query; action: the action name
    status INTEGER,                     -- the provider's status, or Chronary's refusal
    error TEXT,
    duration_ms INTEGER,
    created_at TEXT NOT NULL
);
CREATE INDEX connect_calls_org ON connect_calls(org_id, id);

-- 5. Records: every payload that entered Chronary from outside (kept for the records issue).
CREATE TABLE records (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    provider_type TEXT NOT NULL,
    resource_type TEXT NOT NULL,        -- the provider's event name (message, state_changed, request, …)
    source TEXT NOT NULL,               -- inbound | poll | import
    connection_id TEXT,
    dedup_key TEXT,
    payload TEXT NOT NULL,              -- JSON
    size INTEGER NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX records_org ON records(org_id, received_at);
CREATE UNIQUE INDEX records_dedup ON records(org_id, provider_type, dedup_key) WHERE dedup_key IS NOT NULL;
