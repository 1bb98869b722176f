-- Idempotency-Key on POST and PATCH (issue 21): the first answer for a key is kept for 24 hours,
-- per key holder (the API key's id), so a retry gets it again instead of doing the work twice.
-- `fields` holds a hash per top-level body field (never the values: bodies can carry secrets),
-- enough to name which fields a reused key's new body changed.
CREATE TABLE idempotency_keys (
    holder TEXT NOT NULL,               -- api_keys.id of the caller
    key TEXT NOT NULL,                  -- the Idempotency-Key header, at most 255 visible ASCII characters
    method TEXT NOT NULL,
    target TEXT NOT NULL,               -- path and query string
    body_hash TEXT NOT NULL,
    fields TEXT,                        -- JSON {field: sha256} when the body is a JSON object
    state TEXT NOT NULL CHECK (state IN ('running', 'done')),
    owner TEXT NOT NULL,                -- the server process that runs it: a crash leaves it to a retry
    status INTEGER,
    headers TEXT,                       -- JSON [[name, value], …] of the answer (no cookies)
    body BLOB,
    created_at INTEGER NOT NULL,        -- unix seconds
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (holder, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys(expires_at);
