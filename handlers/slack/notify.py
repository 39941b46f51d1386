"""Tell a campaign owner what a re-plan found: through the outbox, as a notification row.

The row is written in a short transaction of its own, right after the change's transaction committed,
and then handed to the `notifications.deliver` job. A lost enqueue leaves the row pending for the sweep.
In embedded mode without a worker nothing would ever consume the in-process queue, so the row is
delivered here and now instead (same claim / post / record path as the job). `send_many` does the same
for rows written elsewhere (a "Try again" click puts failed rows back).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from slack_sdk.web.async_client import AsyncWebClient

from blocks.notifications import PLAN_ALERT, plan_alert_payload
from handlers.deps import Deps
from handlers.jobs.delivery import Delivery
from handlers.jobs.notifications import (
    delivery_client,
    hand_out,
    plan_alert_key,
)
from handlers.slack.approval_messages import announce
from models import Urgency
from services import notifications
from services.plans import PlanSummary

log = logging.getLogger(__name__)


async def after_replan(client: AsyncWebClient, plan: PlanSummary | None, *, because: str, deps: Deps) -> None:
    """After a change that re-planned has committed: send the requests of the sign-off stages it opened,
    and tell the owner what the re-plan found. `because` is already escaped."""
    if plan is None:
        return
    for stage in plan.opened_stages:
        await announce(client, deps, plan.campaign.id, stage)
    await tell_owner(client, plan, because=because, deps=deps)


async def tell_owner(client: AsyncWebClient, plan: PlanSummary, *, because: str, deps: Deps) -> None:
    """The owner's plan alerts, if any. A failure is logged; the change itself is already saved."""
    if not plan.alerts:
        return
    campaign = plan.campaign
    try:
        async with deps.sessions.begin() as db:
            notification_id = await notifications.notify(
                db=db, dedupe_key=plan_alert_key(campaign.id, plan.alerts, plan.timeline.computed_at),
                kind=PLAN_ALERT,
                payload=plan_alert_payload(campaign_id=campaign.id, campaign_name=campaign.name, alerts=plan.alerts,
                                           because_mrkdwn=because),
                recipient_id=campaign.owner_id, campaign_id=campaign.id, urgency=Urgency.HIGH, now=datetime.now(UTC),
            )
    except Exception:
        log.warning("could not record a plan alert for campaign %s", campaign.id, exc_info=True)
        return
    if notification_id is not None:
        await send(deps, client, notification_id)


async def send(deps: Deps, client: AsyncWebClient, notification_id: int) -> None:
    """Hand a written notification to the delivery job (or deliver it now when no worker would)."""
    await send_many(deps, client, [notification_id])


async def send_many(deps: Deps, client: AsyncWebClient, notification_ids: Sequence[int]) -> None:
    """Hand written notifications to the delivery jobs in batches, or deliver them inline when no worker
    would consume the queue (embedded mode without a worker)."""
    if not notification_ids:
        return
    queue = deps.queue
    if queue is not None and queue.kind == "embedded" and queue.worker is None:
        queue = None
    try:
        if queue is not None:
            await hand_out(queue, notification_ids)
        else:
            await Delivery(sessions=deps.sessions, slack=delivery_client(client), clock=lambda: datetime.now(UTC),
                           enqueue=None).run(list(notification_ids))
    except Exception:  # the rows stay pending (or claimed until their lease runs out) for the sweep
        log.warning("could not hand notifications %s over for delivery", list(notification_ids), exc_info=True)
