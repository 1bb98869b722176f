"""Drive the subscription worker from a test that runs the app without background workers.

Requests only mark a subscription due and wake the worker; with `workers=False` (the `api`
fixture) nothing syncs until the test does what the worker would: one sweep, on the app's own
event loop (the TestClient's portal), so the sync is finished when this returns.
"""

from __future__ import annotations

from typing import Any

from chronary.workers.subscriptions import SubscriptionWorker


def run_subscription_worker(api: Any) -> int:
    """Sync every due subscription now, as the worker would when woken; returns how many."""
    worker = SubscriptionWorker(api.runtime)
    return api.client.blocking_portal.call(worker.sweep)
