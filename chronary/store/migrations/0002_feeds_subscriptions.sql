-- iCal feeds and iCal subscriptions.
-- Plain SQL readable by SQLite 3.40.

-- When a calendar's feed content last changed (any event change), for Last-Modified.
CREATE TABLE feed_state (
    calendar_id TEXT PRIMARY KEY REFERENCES calendars(id) ON DELETE CASCADE,
    changed_at TEXT NOT NULL
);

CREATE TABLE ical_subscriptions (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    calendar_id TEXT NOT NULL REFERENCES calendars(id) ON DELETE CASCADE,
    url TEXT NOT NULL,                  -- normalised to http(s); webcal:// is accepted on input
    label TEXT,
    refresh_interval_minutes INTEGER NOT NULL,
    credentials TEXT,                   -- SecretBox-encrypted JSON {username, password}, or NULL
    status TEXT NOT NULL,               -- active | error | paused
    last_synced_at TEXT,
    last_attempt_at TEXT,
    last_error TEXT,
    event_count INTEGER NOT NULL DEFAULT 0,
    next_sync_ts INTEGER NOT NULL DEFAULT 0,  -- unix seconds; the worker syncs when due
    etag TEXT,                          -- validators of the last imported response
    last_modified TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX ical_subscriptions_agent ON ical_subscriptions(agent_id, id);
CREATE INDEX ical_subscriptions_due ON ical_subscriptions(next_sync_ts) WHERE status != 'paused';

-- Which stored event came from which (UID, RECURRENCE-ID) of which subscription, and a digest of
-- what was imported so an unchanged event is not rewritten (its SEQUENCE stays put).
CREATE TABLE ical_subscription_events (
    event_id TEXT PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE,
    subscription_id TEXT NOT NULL REFERENCES ical_subscriptions(id) ON DELETE CASCADE,
    uid TEXT NOT NULL,
    recurrence_id_ts INTEGER NOT NULL,  -- 0 for a single event or a series master
    digest TEXT NOT NULL
);
CREATE UNIQUE INDEX ical_subscription_events_key ON ical_subscription_events(subscription_id, uid, recurrence_id_ts);
