-- The change log (services/changes.py): every change a writer records, with its origin, written in
-- the transaction of the change itself. Consumers that run later (webhook fan-out first) read it in
-- `seq` order after their own cursor and move the cursor in the transaction that does their work,
-- so each change is handled once and none is lost across restarts. It replaces the webhook
-- outbox: the outbox rows move here, and `outbox` stays as a read-only view of the changes that
-- are sent as webhooks.

CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- the order of the changes; never reused
    id TEXT NOT NULL UNIQUE,                -- whe_…: the webhook payload id receivers deduplicate on
    type TEXT NOT NULL,                     -- the webhook type: event.updated, agent.created, …
    resource_id TEXT NOT NULL,              -- the object's id; deliveries keep order per resource
    agent_id TEXT,                          -- the agent that owns the change (agent-scoped endpoints)
    audience TEXT,                          -- JSON string[]: other agents it concerns, or NULL
    calendar_id TEXT,                       -- the calendar of an event or calendar change
    origin TEXT NOT NULL,                   -- api | system | sync:<con_…> | subscription:<isub_…>
    webhook INTEGER NOT NULL DEFAULT 1,     -- 0: for consumers only, never sent (imported events)
    payload TEXT NOT NULL,                  -- {id, type, created_at, data: {object, previous?}}
    created_at TEXT NOT NULL
);
CREATE INDEX changes_created ON changes(created_at);

-- One row per consumer: the seq of the last change it has handled.
CREATE TABLE change_cursors (
    consumer TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);

-- Origins of rows written before the log are a best guess from their type.
INSERT INTO changes (seq, id, type, resource_id, agent_id, audience, calendar_id, origin, webhook, payload, created_at)
SELECT seq, id, type, resource_id, agent_id, audience,
       CASE
           WHEN type LIKE 'calendar.%' THEN resource_id
           WHEN type LIKE 'event.%' THEN json_extract(payload, '$.data.object.calendar_id')
       END,
       CASE
           WHEN type IN ('connection.synced', 'connection.error') THEN 'sync:' || resource_id
           WHEN type LIKE 'ical_subscription.%' THEN 'subscription:' || resource_id
           WHEN type = 'event.hold_expired' THEN 'system'
           ELSE 'api'
       END,
       1, payload, created_at
FROM outbox ORDER BY seq;

-- seq carries on where the outbox's left off (endpoints' since_seq and deliveries' seq refer to
-- it), even when the newest outbox rows were already pruned.
DELETE FROM sqlite_sequence WHERE name = 'changes';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'changes', coalesce(max(seq), 0)
FROM (SELECT seq FROM sqlite_sequence WHERE name = 'outbox' UNION ALL SELECT max(seq) AS seq FROM changes);

-- Webhook fan-out resumes after the last row it had dispatched (it dispatched in seq order), so
-- rows still waiting are delivered and none is delivered twice.
INSERT INTO change_cursors (consumer, seq)
VALUES ('webhooks', coalesce(
    (SELECT min(seq) - 1 FROM outbox WHERE dispatched_at IS NULL),
    (SELECT seq FROM sqlite_sequence WHERE name = 'changes'),
    0
));

DROP TABLE outbox;
CREATE VIEW outbox AS
SELECT seq, id, type, agent_id, resource_id, payload, created_at, audience FROM changes WHERE webhook = 1;
