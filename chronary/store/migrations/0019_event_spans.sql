-- History must not slow the present (issue 20, item 2). A window query on (calendar_id, start_ts)
-- can bound its range from below once it knows the longest event of the calendar: an event that
-- overlaps [start, end) and lasts at most max_span seconds starts after start - max_span. The
-- triggers keep max_span (it only grows; an upper bound stays correct when events shrink or go).
CREATE TABLE event_spans (
    calendar_id TEXT PRIMARY KEY REFERENCES calendars(id) ON DELETE CASCADE,
    max_span INTEGER NOT NULL
);
INSERT INTO event_spans (calendar_id, max_span)
    SELECT calendar_id, max(max(end_ts - start_ts, 0)) FROM events GROUP BY calendar_id;
CREATE TRIGGER events_span_insert AFTER INSERT ON events BEGIN
    INSERT INTO event_spans (calendar_id, max_span) VALUES (new.calendar_id, max(new.end_ts - new.start_ts, 0))
    ON CONFLICT (calendar_id) DO UPDATE SET max_span = max(max_span, excluded.max_span);
END;
CREATE TRIGGER events_span_update AFTER UPDATE OF start_ts, end_ts, calendar_id ON events BEGIN
    INSERT INTO event_spans (calendar_id, max_span) VALUES (new.calendar_id, max(new.end_ts - new.start_ts, 0))
    ON CONFLICT (calendar_id) DO UPDATE SET max_span = max(max_span, excluded.max_span);
END;
-- series masters on their own: a window's expansion reads only them, not every single event
CREATE INDEX events_masters ON events(calendar_id, start_ts) WHERE recurrence IS NOT NULL;
