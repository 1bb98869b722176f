-- Time-based moments of events (services/moments.py): event.started at an occurrence's start,
-- event.ended at its end, event.reminder at each of its reminder minutes before the start.
--
-- moments_fired: one row per moment that has been recorded as a change, so a scan that covers
-- the same instant again (after a crash, or a restart with an older cursor) never fires it twice
-- (INSERT OR IGNORE). Keyed by the instant as well, so an event moved to a later time fires again
-- at its new time. Rows are pruned once they are older than any scan can reach.
CREATE TABLE moments_fired (
    kind TEXT NOT NULL,                 -- event.started | event.ended | event.reminder
    event_id TEXT NOT NULL,             -- the event, or the occurrence id <series>_<original start>
    minutes INTEGER NOT NULL,           -- event.reminder: minutes before the start; else 0
    at_ts INTEGER NOT NULL,             -- the moment, unix seconds UTC
    fired_at TEXT NOT NULL,
    PRIMARY KEY (kind, event_id, minutes, at_ts)
) WITHOUT ROWID;
CREATE INDEX moments_fired_at ON moments_fired(at_ts);

-- Small named values of the moments scanner; `cursor` = the last instant scanned (unix seconds).
CREATE TABLE moments_state (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
