"""Moving data in and out of Chronary (issue 21, item 6): .ics files, Radicale folders, whole orgs.

- `ics_import`: read a .ics file (the one VEVENT codec, `ical/decode.py`, as subscriptions do)
  and write its events into one calendar, idempotently by UID (`write.Writer`).
- `radicale`: every calendar of a Radicale storage folder becomes a Chronary calendar.
- `export`: one calendar as one VCALENDAR (the feed renderer, `ical/render.py`), and a whole org
  as a folder or .zip (manifest.json + one .ics per calendar) that `org_import` reads back.

Reading happens before any transaction, so a file that cannot be read writes nothing; each
calendar is then written in one transaction through the one change path (services/changes).
Imports are quiet by default (logged, feeds and provider pushes see them, no webhooks or flow
runs), as subscription imports and a connection's first import are; `announce` sends them.
"""
