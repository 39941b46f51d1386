"""The owner's plan alerts (launch slipping, buffer crossing 50% or 100%): the one way to write them.

Every re-plan that found something writes its alert here, in the transaction of the change that caused
it (a person's change to a task or a sign-off, or the sweep's daily re-plan), so the alert goes out
exactly when that change commits and never when it rolls back. One key scheme: one alert per re-plan,
named by the campaign and the moment of the re-plan (`Timeline.computed_at`). One payload: the campaign,
the alerts, and `because` as plain text (the renderers escape it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models import Urgency
from services import notifications
from services.kinds import Kind
from services.plans import PlanSummary
from services.refs import RefKind, format_ref


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
    alert = PlanAlert(campaign_id=campaign.id, campaign_name=campaign.name, alerts=tuple(plan.alerts),
                      because=because)
    return notifications.Draft(
        dedupe_key=dedupe_key(campaign.id, now), kind=Kind.PLAN_ALERT, payload=alert.to_payload(),
        recipient_id=campaign.owner_id, campaign_id=campaign.id, urgency=Urgency.HIGH,
    )


@dataclass(frozen=True)
class PlanAlert:
    """The payload of a plan-alert row. `because` is plain text; rows written before this type by the Slack
    handlers carry `because_mrkdwn` instead (text our code had escaped), read back as it was."""

    campaign_id: int
    campaign_name: str
    alerts: tuple[str, ...]
    because: str = ""
    because_mrkdwn: str | None = None

    @property
    def summary(self) -> str:
        """One plain line, for the in-app inbox."""
        first = self.alerts[0] if self.alerts else "the plan changed"
        more = f" (+{len(self.alerts) - 1} more)" if len(self.alerts) > 1 else ""
        return f"{format_ref(RefKind.CAMPAIGN, self.campaign_id)} {self.campaign_name}: {first}{more}"

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"campaign_id": self.campaign_id, "campaign_name": self.campaign_name,
                                   "alerts": list(self.alerts), "because": self.because, "summary": self.summary}
        if self.because_mrkdwn is not None:
            payload["because_mrkdwn"] = self.because_mrkdwn
        return payload

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> PlanAlert:
        mrkdwn = payload.get("because_mrkdwn")
        return cls(campaign_id=int(payload["campaign_id"]), campaign_name=str(payload.get("campaign_name") or ""),
                   alerts=tuple(str(alert) for alert in payload.get("alerts") or ()),
                   because=str(payload.get("because") or ""),
                   because_mrkdwn=str(mrkdwn) if mrkdwn else None)
