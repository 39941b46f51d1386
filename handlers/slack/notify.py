"""After a change commits: hand its outbox rows to delivery.

The rows themselves (plan alerts, sign-off requests, reminders, notices) are written by the services in
the change's own transaction; the unit of work (`context.unit_of_work`) collects their ids and calls `send_many` after
the commit. A lost enqueue leaves the rows pending for the sweep. In embedded mode without a worker
nothing would ever consume the in-process queue, so the rows are delivered here and now instead (same
claim / post / record path as the job). A "Try again" click that puts failed rows back uses it too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from slack_sdk.web.async_client import AsyncWebClient

from handlers.deps import Deps
from handlers.jobs.delivery import Delivery
from handlers.jobs.notifications import delivery_client, hand_out

log = logging.getLogger(__name__)


async def send_many(deps: Deps, client: AsyncWebClient, notification_ids: Sequence[int]) -> None:
    """Hand written notifications to the delivery jobs in batches, or deliver them inline when no worker
    would consume the queue (embedded mode without a worker)."""
    if not notification_ids:
        return
    queue = deps.queue
    if queue is not None and not queue.has_consumer:
        queue = None
    try:
        if queue is not None:
            await hand_out(queue, notification_ids)
        else:
            await Delivery(sessions=deps.sessions, slack=delivery_client(client), clock=lambda: datetime.now(UTC),
                           enqueue=None).run(list(notification_ids))
    except Exception:  # the rows stay pending (or claimed until their lease runs out) for the sweep
        log.warning("could not hand notifications %s over for delivery", list(notification_ids), exc_info=True)
