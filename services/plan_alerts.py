"""The owner's plan alerts (launch slipping, buffer crossing 50% or 100%): the one way to write them.

Every re-plan that found something writes its alert here, in the transaction of the change that caused
it (a person's change to a task or a sign-off, or the sweep's daily re-plan), so the alert goes out
exactly when that change commits and never when it rolls back. One key scheme: one alert per re-plan,
named by the campaign and the moment of the re-plan (`Timeline.computed_at`). One payload: the campaign,
the alerts, and `because` as plain text (the renderers escape it).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from models import Urgency
from services import notifications
from services.plans import PlanSummary

PLAN_ALERT = "plan_alert"


def dedupe_key(campaign_id: int, replanned_at: datetime) -> str:
    """One alert per re-plan. In UTC, so the same moment is the same key whatever zone the caller used."""
    return f"plan-alert:{campaign_id}:{replanned_at.astimezone(UTC).isoformat()}"


async def write(*, db: AsyncSession, plan: PlanSummary | None, because: str, now: datetime) -> None:
    """The alert row for a re-plan made at `now`, if it found anything. `because` is plain text."""
    alert = draft(plan, because=because, now=now)
    if alert is not None:
        await notifications.notify_many(db=db, drafts=[alert], now=now)


def draft(plan: PlanSummary | None, *, because: str, now: datetime) -> notifications.Draft | None:
    """The row `write` writes, for a caller that writes many in one insert (the daily re-plan)."""
    if plan is None or not plan.alerts:
        return None
    campaign = plan.campaign
    return notifications.Draft(
        dedupe_key=dedupe_key(campaign.id, now), kind=PLAN_ALERT,
        payload={"campaign_id": campaign.id, "campaign_name": campaign.name, "alerts": list(plan.alerts),
                 "because": because},
        recipient_id=campaign.owner_id, campaign_id=campaign.id, urgency=Urgency.HIGH,
    )
