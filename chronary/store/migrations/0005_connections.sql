-- Provider connections (iCloud/CalDAV now; Google/Microsoft later) and two-way sync state.
-- Plain SQL readable by SQLite 3.40.

CREATE TABLE connections (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs(id),
    agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,             -- icloud | caldav | google | microsoft
    status TEXT NOT NULL,               -- active | disconnected | error
    status_reason TEXT,
    username TEXT,
    email TEXT,
    server_url TEXT,
    secret TEXT,                        -- Fernet-encrypted JSON credentials; NULL once forgotten
    sync_mode TEXT NOT NULL,            -- realtime | polling
    sync_interval_minutes INTEGER NOT NULL DEFAULT 5,
    last_synced_at TEXT,
    last_sync TEXT,                     -- JSON {started_at, finished_at, pulled, pushed, conflicts, error}
    token_last_at TEXT,
    token_failures INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,   -- consecutive failed rounds: drives the back-off
    next_sync_at INTEGER NOT NULL DEFAULT 0, -- unix seconds; the scheduler runs what is due
    full_resync INTEGER NOT NULL DEFAULT 0,  -- next round re-lists everything (refresh endpoint)
    refresh_requested_at INTEGER,
    lease_owner TEXT,                   -- DB lease: one sync per connection, across restarts
    lease_until INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX connections_org ON connections(org_id, id);
CREATE INDEX connections_due ON connections(next_sync_at) WHERE secret IS NOT NULL;

-- The account's calendars and which Chronary calendar each mirrors.
CREATE TABLE connection_calendars (
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    remote_id TEXT NOT NULL,            -- provider id (CalDAV: the collection path)
    name TEXT,
    color TEXT,
    timezone TEXT,
    read_only INTEGER NOT NULL DEFAULT 0,
    calendar_id TEXT REFERENCES calendars(id) ON DELETE SET NULL,
    sync INTEGER NOT NULL DEFAULT 0,
    cursor TEXT,                        -- provider cursor (sync token / ctag); NULL = full listing next
    position INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (connection_id, remote_id)
);
CREATE INDEX connection_calendars_calendar ON connection_calendars(calendar_id);

-- One provider resource (all VEVENTs of one UID) ↔ its Chronary series/single event.
CREATE TABLE sync_links (
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    remote_id TEXT NOT NULL,
    uid TEXT NOT NULL,
    href TEXT,
    etag TEXT,
    event_id TEXT NOT NULL,             -- the master (or single) event; exceptions hang off it
    ical TEXT,                          -- last body both sides agreed on: unknown properties survive edits
    PRIMARY KEY (connection_id, remote_id, uid)
);
CREATE INDEX sync_links_href ON sync_links(connection_id, href);
CREATE INDEX sync_links_event ON sync_links(event_id);

-- Local changes waiting to be pushed; written by the event-change hook in the change's transaction.
CREATE TABLE sync_pending (
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    remote_id TEXT NOT NULL,
    event_id TEXT NOT NULL,             -- master or single event id
    op TEXT NOT NULL,                   -- upsert | delete
    uid TEXT NOT NULL,
    href TEXT,
    etag TEXT,
    version INTEGER NOT NULL DEFAULT 1, -- bumped on every re-queue: a push clears only what it sent
    changed_at TEXT NOT NULL,
    PRIMARY KEY (connection_id, remote_id, event_id)
);

-- The losing side of every conflict, so no edit is ever silently lost.
CREATE TABLE sync_conflicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    remote_id TEXT NOT NULL,
    uid TEXT NOT NULL,
    event_id TEXT,
    winner TEXT NOT NULL,               -- remote | local
    reason TEXT NOT NULL,
    losing_version TEXT NOT NULL,       -- JSON of the local rows, or the remote iCalendar text
    created_at TEXT NOT NULL
);
CREATE INDEX sync_conflicts_connection ON sync_conflicts(connection_id, id);
