-- Changes that concern several agents (a proposal and its participants) list the others here,
-- so each participant's agent-scoped webhook endpoints receive them too. JSON string[] or NULL.
ALTER TABLE outbox ADD COLUMN audience TEXT;
