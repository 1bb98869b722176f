-- RFC 5545 TRANSP per event: 'transparent' events (holidays, "working from home" markers) are
-- shown but never block availability, find-meeting-time or hold-overlap checks. Holds are always
-- opaque (enforced by the events service). Imported events used to keep TRANSP only in
-- remote.transparent; copy it into the column. Plain SQL readable by SQLite 3.40.
ALTER TABLE events ADD COLUMN transparency TEXT NOT NULL DEFAULT 'opaque'
    CHECK (transparency IN ('opaque', 'transparent'));

UPDATE events SET transparency = 'transparent'
 WHERE remote IS NOT NULL
   AND CASE WHEN json_valid(remote) THEN json_extract(remote, '$.transparent') ELSE 0 END = 1;
