-- Sign-in for the bundled web UI.
--
-- login_tokens: one-time sign-in links (`/login?token=…`), 15 minutes, used once. Only the
-- SHA-256 of the token is kept. They sign in as the org (through the org's "web sign-in" key).
-- web_sessions: an HttpOnly cookie's session, bound to the API key it signed in with (revoking
-- that key ends its sessions), with the CSRF token the UI sends on every write.
CREATE TABLE login_tokens (
    token_hash TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    expires_ts INTEGER NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,           -- SHA-256 of the cookie value
    key_id TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_ts INTEGER NOT NULL,        -- absolute end
    idle_until_ts INTEGER NOT NULL      -- moves on with use
);
CREATE INDEX web_sessions_key ON web_sessions(key_id);
