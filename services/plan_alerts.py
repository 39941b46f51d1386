"""The owner's plan alerts (launch slipping, buffer crossing 50% or 100%), written to the outbox in the
transaction of the change that caused them, so they go out exactly when that change commits."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from models import Urgency
from services import notifications
from services.plans import PlanSummary

PLAN_ALERT = "plan_alert"


async def write(*, db: AsyncSession, plan: PlanSummary | None, key: str, because: str, now: datetime) -> None:
    """One alert row for the re-plan's findings, if any. `key` names the cause (once per key); `because`
    is plain text (the renderer escapes it)."""
    alert = draft(plan, key=key, because=because)
    if alert is not None:
        await notifications.notify_many(db=db, drafts=[alert], now=now)


def draft(plan: PlanSummary | None, *, key: str, because: str) -> notifications.Draft | None:
    """The alert row `write` writes, for callers that write many in one insert (the daily re-plan)."""
    if plan is None or not plan.alerts:
        return None
    campaign = plan.campaign
    return notifications.Draft(
        dedupe_key=f"plan-alert:{campaign.id}:{key}", kind=PLAN_ALERT,
        payload={"campaign_id": campaign.id, "campaign_name": campaign.name, "alerts": list(plan.alerts),
                 "because": because},
        recipient_id=campaign.owner_id, campaign_id=campaign.id, urgency=Urgency.HIGH,
    )
