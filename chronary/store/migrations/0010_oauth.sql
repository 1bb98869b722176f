-- OAuth connections (Google, Microsoft): the flow's pending states and the push channels.
--
-- oauth_states: one row per POST /v1/connections/start, used once by the callback and gone
-- after 10 minutes. Only the SHA-256 of `state` is kept (the state is the callback's only
-- credential); `pending` is the encrypted provider-side half of the flow (the PKCE verifier,
-- msal's flow), never sent to the browser.
CREATE TABLE oauth_states (
    state_hash TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    return_url TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    connection_id TEXT,                 -- re-authorizing this connection (its id and mapping stay)
    scopes TEXT,                        -- JSON list
    pending TEXT NOT NULL,              -- Fernet-encrypted JSON
    expires_ts INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX oauth_states_expiry ON oauth_states(expires_ts);

-- Push channels (Google watch channels, Graph subscriptions), one per synced remote calendar.
CREATE TABLE push_channels (
    id TEXT PRIMARY KEY,                -- the channel / subscription id at the provider
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    remote_id TEXT NOT NULL,            -- the remote calendar it watches
    provider TEXT NOT NULL,
    token TEXT NOT NULL,                -- Fernet-encrypted: echoed by the provider on every notification
    resource_id TEXT,                   -- the provider's handle, needed to stop it
    expires_ts INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX push_channels_connection ON push_channels(connection_id, remote_id);
