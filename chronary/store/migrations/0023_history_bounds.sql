-- History must not slow the present (issue 20, item 2, the rest).
--
-- 1. Series that ended long ago. A window reads every series master that starts before it and
--    expands it, so years of finished series (a weekly meeting of 8, long over) cost every window
--    near the present. `series_bounds` keeps, per master, an upper bound of the end of its last
--    occurrence (NULL: open-ended, or a rule this cheap reading does not bound), and
--    `series_spans` the calendar's longest bounded series: a window then reads the open-ended
--    masters (partial index) plus the bounded ones starting after its start minus that longest
--    series and ending after its start. The bound is deliberately loose (2 days of slack for
--    time zones, DST and all-day dates; a COUNT with BYDAY as one week more) and only given for
--    one RRULE without RDATE/EXRULE, with UNTIL, or with COUNT on a fixed period (WEEKLY,
--    optionally BYDAY, DAILY, HOURLY, MINUTELY, SECONDLY) without other BY parts; anything
--    else is NULL, read in every window as before. `series_bound_view` is the one place the
--    expression is written.
CREATE VIEW series_bound_view AS
SELECT event_id, calendar_id, start_ts,
    CASE
        WHEN rrules != 1 OR instr(r, 'RRULE:') = 0 OR instr(r, 'RDATE') > 0 OR instr(r, 'EXRULE') > 0 THEN NULL
        WHEN u > 0 AND c = 0 THEN  -- the last start is at most UNTIL's date (+ a day of zone offset)
            max(start_ts, unixepoch(substr(r, u + 6, 4) || '-' || substr(r, u + 10, 2) || '-' || substr(r, u + 12, 2)))
            + len + 172800
        WHEN c > 0 AND u = 0 AND n >= 0 AND k >= 1 AND (bys = 0 OR (bys = 1 AND period = 604800 AND instr(r, ';BYDAY=') > 0))
            THEN start_ts + (n + 1) * k * period + len + 172800  -- NULL for MONTHLY/YEARLY: months skip dates
    END AS until_ts
FROM (
    SELECT event_id, calendar_id, start_ts, len, r, u, c,
        (length(r) - length(replace(r, 'RRULE', ''))) / 5 AS rrules,
        (length(r) - length(replace(r, 'BY', ''))) / 2 AS bys,
        CAST(substr(r, c + 6, 12) AS INTEGER) AS n,
        CASE WHEN instr(r, 'INTERVAL=') = 0 THEN 1 ELSE CAST(substr(r, instr(r, 'INTERVAL=') + 9, 12) AS INTEGER) END AS k,
        CASE WHEN instr(r, 'FREQ=WEEKLY') > 0 THEN 604800 WHEN instr(r, 'FREQ=DAILY') > 0 THEN 86400
             WHEN instr(r, 'FREQ=HOURLY') > 0 THEN 3600 WHEN instr(r, 'FREQ=MINUTELY') > 0 THEN 60
             WHEN instr(r, 'FREQ=SECONDLY') > 0 THEN 1 END AS period
    FROM (
        SELECT id AS event_id, calendar_id, start_ts, max(end_ts - start_ts, 0) AS len, upper(recurrence) AS r,
            instr(upper(recurrence), 'UNTIL=') AS u, instr(upper(recurrence), 'COUNT=') AS c
        FROM events WHERE recurrence IS NOT NULL
    )
);

CREATE TABLE series_bounds (
    event_id TEXT PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE,
    calendar_id TEXT NOT NULL,
    start_ts INTEGER NOT NULL,
    until_ts INTEGER                    -- NULL: open-ended (or not bounded here)
);
CREATE INDEX series_bounds_start ON series_bounds(calendar_id, start_ts, until_ts);
CREATE INDEX series_bounds_open ON series_bounds(calendar_id, start_ts) WHERE until_ts IS NULL;
CREATE TABLE series_spans (
    calendar_id TEXT PRIMARY KEY REFERENCES calendars(id) ON DELETE CASCADE,
    max_span INTEGER NOT NULL           -- only grows: an upper bound stays correct as series shrink or go
);
INSERT INTO series_bounds SELECT * FROM series_bound_view;
INSERT INTO series_spans (calendar_id, max_span)
    SELECT calendar_id, max(until_ts - start_ts) FROM series_bounds WHERE until_ts IS NOT NULL GROUP BY calendar_id;

CREATE TRIGGER series_bounds_span AFTER INSERT ON series_bounds WHEN new.until_ts IS NOT NULL BEGIN
    INSERT INTO series_spans (calendar_id, max_span) VALUES (new.calendar_id, max(new.until_ts - new.start_ts, 0))
    ON CONFLICT (calendar_id) DO UPDATE SET max_span = max(max_span, excluded.max_span);
END;
CREATE TRIGGER events_series_insert AFTER INSERT ON events WHEN new.recurrence IS NOT NULL BEGIN
    INSERT OR REPLACE INTO series_bounds SELECT * FROM series_bound_view WHERE event_id = new.id;
END;
CREATE TRIGGER events_series_update AFTER UPDATE OF id, recurrence, start_ts, end_ts, calendar_id ON events
WHEN old.recurrence IS NOT NULL OR new.recurrence IS NOT NULL BEGIN
    DELETE FROM series_bounds WHERE event_id = old.id;
    INSERT OR REPLACE INTO series_bounds SELECT * FROM series_bound_view WHERE event_id = new.id;
END;

-- 2. Page totals. Every list answers `total`; a count(*) of a calendar's 100,000 events on every
--    page walked them all. `event_counts` keeps the number of events per calendar, status and
--    source, so the total of an unwindowed list is a sum of a few rows.
CREATE TABLE event_counts (
    calendar_id TEXT NOT NULL REFERENCES calendars(id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    source TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (calendar_id, status, source)
) WITHOUT ROWID;
INSERT INTO event_counts (calendar_id, status, source, n)
    SELECT calendar_id, status, source, count(*) FROM events GROUP BY calendar_id, status, source;
CREATE TRIGGER events_count_insert AFTER INSERT ON events BEGIN
    INSERT INTO event_counts (calendar_id, status, source, n) VALUES (new.calendar_id, new.status, new.source, 1)
    ON CONFLICT (calendar_id, status, source) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER events_count_delete AFTER DELETE ON events BEGIN
    UPDATE event_counts SET n = n - 1
    WHERE calendar_id = old.calendar_id AND status = old.status AND source = old.source;
END;
CREATE TRIGGER events_count_update AFTER UPDATE OF calendar_id, status, source ON events BEGIN
    UPDATE event_counts SET n = n - 1
    WHERE calendar_id = old.calendar_id AND status = old.status AND source = old.source;
    INSERT INTO event_counts (calendar_id, status, source, n) VALUES (new.calendar_id, new.status, new.source, 1)
    ON CONFLICT (calendar_id, status, source) DO UPDATE SET n = n + 1;
END;
