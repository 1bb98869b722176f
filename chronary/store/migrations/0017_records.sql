-- Records (issue 18): every payload that entered from outside, searchable and replayable.
-- The table from 0013 is rebuilt with an INTEGER PRIMARY KEY so the full-text index can point at
-- stable rowids (a plain rowid may change on VACUUM), and gains the executions each record started.

CREATE TABLE records_new (
    rid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,            -- rec_
    org_id TEXT NOT NULL,
    provider_type TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    source TEXT NOT NULL,               -- inbound | poll | import
    connection_id TEXT,
    dedup_key TEXT,
    payload TEXT NOT NULL,
    size INTEGER NOT NULL,
    received_at TEXT NOT NULL
);
INSERT INTO records_new (id, org_id, provider_type, resource_type, source, connection_id, dedup_key, payload, size,
                         received_at)
SELECT id, org_id, provider_type, resource_type, source, connection_id, dedup_key, payload, size, received_at
FROM records ORDER BY received_at, id;
DROP TABLE records;
ALTER TABLE records_new RENAME TO records;
CREATE INDEX records_org ON records(org_id, received_at);
CREATE INDEX records_kind ON records(org_id, provider_type, resource_type, received_at);
CREATE UNIQUE INDEX records_dedup ON records(org_id, provider_type, dedup_key) WHERE dedup_key IS NOT NULL;

-- full-text search over the payload (external content: the text is stored once, in records)
CREATE VIRTUAL TABLE records_fts USING fts5(payload, content='records', content_rowid='rid',
                                            tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER records_fts_insert AFTER INSERT ON records BEGIN
    INSERT INTO records_fts(rowid, payload) VALUES (new.rid, new.payload);
END;
CREATE TRIGGER records_fts_delete AFTER DELETE ON records BEGIN
    INSERT INTO records_fts(records_fts, rowid, payload) VALUES ('delete', old.rid, old.payload);
END;
INSERT INTO records_fts(records_fts) VALUES ('rebuild');

-- which runs a record started (kept when the run is pruned: the id then shows it was pruned)
CREATE TABLE record_executions (
    record_id TEXT NOT NULL REFERENCES records(id) ON DELETE CASCADE,
    execution_id TEXT NOT NULL,
    replay INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (record_id, execution_id)
);
CREATE INDEX record_executions_execution ON record_executions(execution_id);
