"""Tell a campaign owner what a re-plan found. Direct messages for now; the outbox takes this over later."""

from __future__ import annotations

import logging

from slack_sdk.web.async_client import AsyncWebClient

from blocks.tasks import plan_alert
from services.plans import PlanSummary

log = logging.getLogger(__name__)


async def tell_owner(client: AsyncWebClient, plan: PlanSummary | None, *, because: str) -> None:
    """`because` is already escaped. A failed DM is logged; the change itself is already saved."""
    if plan is None or not plan.alerts:
        return
    try:
        await client.chat_postMessage(channel=plan.campaign.owner.slack_user_id, **plan_alert(plan, because=because))
    except Exception:
        log.warning("could not tell the owner of campaign %s about a plan alert", plan.campaign.id, exc_info=True)
