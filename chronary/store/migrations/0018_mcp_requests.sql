-- MCP tool calls with a request_id (issue 19): a retried write answers what the first call did.
-- One row per (API key, tool, request_id), written in the same transaction as the write itself.
CREATE TABLE mcp_requests (
    key_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    request_id TEXT NOT NULL,
    result TEXT NOT NULL,               -- the tool's structured result, JSON
    created_at TEXT NOT NULL,
    PRIMARY KEY (key_id, tool, request_id)
);
CREATE INDEX mcp_requests_created ON mcp_requests(created_at);
