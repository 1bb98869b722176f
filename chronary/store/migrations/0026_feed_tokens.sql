-- Feeds per device (issue 21): a calendar's extra feed URLs, one per device or person, each with
-- its own scope and revocable alone. The calendar's own `feed_token` stays as it was (a full
-- feed). Only the token's SHA-256 is kept (like API keys): its URL is shown once, at creation.
-- last_fetched_at / last_user_agent are written at most once a minute per token, after the
-- answer, never on the feed's hot path.
CREATE TABLE feed_tokens (
    id TEXT PRIMARY KEY,                -- ftk_…
    calendar_id TEXT NOT NULL REFERENCES calendars(id) ON DELETE CASCADE,
    hash TEXT NOT NULL UNIQUE,          -- sha256 hex of the token in the URL
    label TEXT NOT NULL,
    scope TEXT NOT NULL,                -- JSON {"kind": "full"|"busy"|"window", "past_days", "future_days", "busy"}
    created_at TEXT NOT NULL,
    last_fetched_at TEXT,
    last_user_agent TEXT,               -- at most 256 characters
    revoked_at TEXT
);
CREATE INDEX feed_tokens_calendar ON feed_tokens(calendar_id, id) WHERE revoked_at IS NULL;
