"""Field limits of an event, defined once: the API schemas, the VEVENT codec and imports use them.

An API request over a limit is refused (422 naming the field); an imported or synced value over
it is cut to fit (remote data is not ours to refuse), so both paths store the same shapes.
"""

from __future__ import annotations

TITLE_MAX = 500
DESCRIPTION_MAX = 8192
LOCATION_MAX = 1000
RECURRENCE_LINE_MAX = 1000
RECURRENCE_LINES_MAX = 50
REMINDERS_MAX = 5
REMINDER_MINUTES_MIN, REMINDER_MINUTES_MAX = 1, 40320  # one minute to four weeks before the start
YEAR_MIN, YEAR_MAX = 1900, 2200  # instants outside are refused: nothing real lives there
FEED_EVENTS_MAX = 50_000  # VEVENTs in one subscribed feed
UNTITLED = "(no title)"
