"""One iCal subscription round on the provider interface and the one merge (as connections do).

The `ics` provider fetches and strictly decodes the whole feed with no transaction open; only a
fully decoded feed reaches `apply`, which merges it (read-only mirror, no webhooks: imports are
logged, never announced) and records the result in one transaction, so a feed that fails to
fetch or decode changes nothing already imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chronary.providers.base import Account, Changes, RemoteCalendar
from chronary.providers.ics import FEED_CALENDAR
from chronary.providers.ics import Provider as IcsProvider
from chronary.services import subscriptions as svc
from chronary.services.changes import subscription_origin
from chronary.services.sync.merge import Merger, Mirror, Stats
from chronary.store import subscriptions as store
from chronary.store import sync as sync_store
from chronary.store.db import Tx

if TYPE_CHECKING:
    from chronary.runtime import Runtime

SOURCE = "external_ical"


def provider_for(runtime: Runtime, job: svc.SyncJob) -> IcsProvider:
    username, password = job.auth or (None, "")
    account = Account("ics", username, job.url, {"password": password} if username else {})
    return IcsProvider(account, runtime.settings, runtime.clock)


async def fetch(runtime: Runtime, job: svc.SyncJob) -> Changes:
    """What the feed holds now; raises ProviderError (its reason is the subscription's last_error)."""
    provider = provider_for(runtime, job)
    calendar = RemoteCalendar(FEED_CALENDAR, "", read_only=True, local_timezone=job.timezone)
    try:
        return await provider.fetch_changes(calendar, job.cursor, job.known)
    finally:
        await provider.close()


def apply(tx: Tx, sub_id: str, changes: Changes) -> dict[str, Any] | None:
    """Merge a decoded feed and record the success; None when the subscription is gone."""
    row = store.get(tx.conn, sub_id)
    if row is None:
        return None  # deleted while we were fetching
    mirror = Mirror(
        owner_id=sub_id,
        remote_id=FEED_CALENDAR,
        calendar_id=row["calendar_id"],
        read_only=True,
        source=SOURCE,
        origin=subscription_origin(sub_id),
        kind="ical_subscription",
    )
    merger = Merger(tx, mirror, Stats(), quiet=True)
    merger.apply_events(changes.events)
    merger.finish(changes)
    count = sync_store.count_mirrored(tx.conn, sub_id, FEED_CALENDAR)
    return svc.apply_success(tx, sub_id, changes.cursor, count)
