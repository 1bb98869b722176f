"""The sync engine: pulls remote calendars into Chronary and pushes local changes back.

`engine` runs a connection's round, `feeds` an iCal subscription's; both merge through `merge`
(one merge for every mirror). `policy` decides status, backoff and the next round; `queue` is
the change-log listener that queues pushes; `outgoing` turns stored rows into what providers
take. Providers (`chronary.providers`) are called from here, never the other way round.
"""
