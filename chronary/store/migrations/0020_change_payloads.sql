-- A change's payload is kept only while some consumer has not read it (issue 20, item 5). The
-- payloads move to their own table, `change_payloads`, whose row goes as soon as every consumer's
-- cursor has passed the change (services/changes.consume_batch): deleting rows hands their pages
-- back, where nulling a column in place would leave every page as large as before. The rest of a
-- change (`change_log`) stays until the retention prune. `changes` becomes a view of both, the
-- shape the table had (payload NULL once dropped), so readers of the log read it as before.

CREATE TABLE change_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- the order of the changes; never reused
    id TEXT NOT NULL UNIQUE,                -- whe_…: the webhook payload id receivers deduplicate on
    type TEXT NOT NULL,                     -- the webhook type: event.updated, agent.created, …
    resource_id TEXT NOT NULL,              -- the object's id; deliveries keep order per resource
    agent_id TEXT,                          -- the agent that owns the change (agent-scoped endpoints)
    audience TEXT,                          -- JSON string[]: other agents it concerns, or NULL
    calendar_id TEXT,                       -- the calendar of an event or calendar change
    origin TEXT NOT NULL,                   -- api | system | sync:<con_…> | subscription:<isub_…>
    webhook INTEGER NOT NULL DEFAULT 1,     -- 0: for consumers only, never sent (imported events)
    created_at TEXT NOT NULL
);

-- {id, type, created_at, data: {object, previous?}}, byte for byte what a webhook sends
CREATE TABLE change_payloads (
    seq INTEGER PRIMARY KEY,                -- the change's seq in change_log
    payload TEXT NOT NULL
);

INSERT INTO change_log (seq, id, type, resource_id, agent_id, audience, calendar_id, origin, webhook, created_at)
SELECT seq, id, type, resource_id, agent_id, audience, calendar_id, origin, webhook, created_at FROM changes ORDER BY seq;
INSERT INTO change_payloads (seq, payload) SELECT seq, payload FROM changes ORDER BY seq;

-- the high water (pruned changes included) carries over: endpoints' since_seq refer to it
DELETE FROM sqlite_sequence WHERE name = 'change_log';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'change_log', max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0),
                         coalesce((SELECT max(seq) FROM change_log), 0));

DROP VIEW outbox;
DROP TABLE changes;
CREATE INDEX change_log_created ON change_log(created_at);

CREATE VIEW changes AS
SELECT l.seq, l.id, l.type, l.resource_id, l.agent_id, l.audience, l.calendar_id, l.origin, l.webhook,
       p.payload, l.created_at
FROM change_log l LEFT JOIN change_payloads p ON p.seq = l.seq;

CREATE VIEW outbox AS
SELECT seq, id, type, agent_id, resource_id, payload, created_at, audience FROM changes WHERE webhook = 1;
