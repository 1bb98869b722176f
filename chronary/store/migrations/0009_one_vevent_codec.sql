-- One VEVENT codec for every import path (chronary/ical/decode.py), one merge for every mirror.
--
-- 1. Links of every mirror live in sync_links, owned by a connection (con_…) or an iCal
--    subscription (isub_…): the column is owner_id and the cleanup on delete is a trigger per
--    owner table (a foreign key can point at one table only).
-- 2. A subscription's links move there: one per UID (its master or single event; exceptions
--    hang off it). With etag NULL the next changed feed re-applies each UID once, a no-op for
--    rows that already match. A UID the feed had only as RECURRENCE-ID overrides (no master) was
--    stored as one plain event per override; the codec now makes the first the event and the
--    others its overrides, so the lowest one keeps the link and the others are removed here
--    (the next sync recreates them as that event's exceptions).
-- 3. `remote.transparent` goes: the transparency column (0007) is the one place it lives.
-- 4. Recurrence lines of imported events are normalized by the Python step of this migration
--    (chronary/store/migrate.py → chronary.ical.decode.canonical_lines).
CREATE TABLE sync_links_new (
    owner_id TEXT NOT NULL,             -- con_… (a connection) or isub_… (an iCal subscription)
    remote_id TEXT NOT NULL,            -- the remote calendar (CalDAV: its path; a feed: 'feed')
    uid TEXT NOT NULL,
    href TEXT,                          -- the remote event's id (CalDAV href, provider id, feed UID)
    etag TEXT,
    event_id TEXT NOT NULL,             -- the master (or single) event; exceptions hang off it
    ical TEXT,                          -- last raw body both sides agreed on: unknown properties survive edits
    PRIMARY KEY (owner_id, remote_id, uid)
);
INSERT INTO sync_links_new (owner_id, remote_id, uid, href, etag, event_id, ical)
    SELECT connection_id, remote_id, uid, href, etag, event_id, ical FROM sync_links;
DROP TABLE sync_links;
ALTER TABLE sync_links_new RENAME TO sync_links;
CREATE INDEX sync_links_href ON sync_links(owner_id, href);
CREATE INDEX sync_links_event ON sync_links(event_id);

CREATE TRIGGER connections_forget_links AFTER DELETE ON connections BEGIN
    DELETE FROM sync_links WHERE owner_id = old.id;
END;
CREATE TRIGGER ical_subscriptions_forget_links AFTER DELETE ON ical_subscriptions BEGIN
    DELETE FROM sync_links WHERE owner_id = old.id;
END;

-- the event that keeps each UID's link: its master, else its lowest override
CREATE TEMP TABLE keep AS
    SELECT subscription_id, uid, event_id FROM ical_subscription_events s
     WHERE recurrence_id_ts = (SELECT min(recurrence_id_ts) FROM ical_subscription_events t
                                WHERE t.subscription_id = s.subscription_id AND t.uid = s.uid);
INSERT OR IGNORE INTO sync_links (owner_id, remote_id, uid, href, etag, event_id, ical)
    SELECT subscription_id, 'feed', uid, uid, NULL, event_id, NULL FROM keep;
DELETE FROM events WHERE id IN (
    SELECT s.event_id FROM ical_subscription_events s
     WHERE s.recurrence_id_ts != 0
       AND NOT EXISTS (SELECT 1 FROM ical_subscription_events m
                        WHERE m.subscription_id = s.subscription_id AND m.uid = s.uid AND m.recurrence_id_ts = 0)
       AND s.event_id NOT IN (SELECT event_id FROM keep));
DROP TABLE keep;
DROP TABLE ical_subscription_events;

UPDATE events SET remote = json_remove(remote, '$.transparent')
 WHERE remote IS NOT NULL AND json_valid(remote) AND json_extract(remote, '$.type') = 'ical_subscription';
