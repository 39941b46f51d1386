"""The "campaign created" message: its payload type, and the outbox row that carries it.

A campaign made in the form is announced through the outbox, in the creating transaction: to the
campaign's channel when one was chosen, else to the person who asked. A Slack outage at that moment
delays it (the row is retried), and a channel the bot is not in fails the row, which tells the owner
with the "invite me" hint (the delivery job's failure path). The typed `/campaign new` answers in the
channel it was typed in with the same message, rendered from the same payload, and writes no row.

The payload holds plain data (names as typed, numbers, ids): the renderers escape and format it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from models import TeamMember
from services import notifications
from services.kinds import Kind
from services.plans import HOURS_PER_DAY, PlanSummary
from services.refs import RefKind, format_ref


@dataclass(frozen=True)
class Culprit:
    """A long critical task of a compressed plan: where to look to make it fit."""

    task_id: int
    title: str
    days: float


@dataclass(frozen=True)
class CampaignCreated:
    """What the "created" message says, as of the moment the campaign was made."""

    campaign_id: int
    campaign_name: str
    template_title: str
    owner: str  # the owner's Slack user id
    launch_date: date
    created_on: date  # the requester's calendar day at creation: "launches in N days" counts from it
    tasks: int  # work, milestones left out
    milestones: int
    critical_days: float  # working days the critical path spans
    buffer_days: float
    compressed_days: int = 0  # working days short of a comfortable fit (0: it fits)
    culprits: tuple[Culprit, ...] = ()
    planned: bool = False  # the first plan's line follows (projected launch, buffer left, critical tasks)
    projected_launch: date | None = None
    buffer_left_pct: float = 100.0
    critical: tuple[int, ...] = ()  # task ids on the critical path

    @property
    def ref(self) -> str:
        return format_ref(RefKind.CAMPAIGN, self.campaign_id)

    @property
    def summary(self) -> str:
        """One plain line: the in-app inbox shows it, and it is the message's fallback text."""
        flag = " (compressed)" if self.compressed_days > 0 else ""
        return f"{self.ref} created: {self.campaign_name}: {self.tasks} tasks{flag}"

    @classmethod
    def of(cls, plan: PlanSummary, *, template_title: str, created_on: date) -> CampaignCreated:
        campaign, change = plan.campaign, plan.change
        return cls(
            campaign_id=campaign.id, campaign_name=campaign.name, template_title=template_title,
            owner=campaign.owner.slack_user_id, launch_date=campaign.launch_date, created_on=created_on,
            tasks=sum(not task.is_milestone for task in plan.tasks), milestones=len(plan.milestones),
            critical_days=plan.critical_days, buffer_days=plan.timeline.buffer_hours / HOURS_PER_DAY,
            compressed_days=plan.timeline.compressed_days,
            culprits=tuple(Culprit(task.id, task.title, task.duration_hours / HOURS_PER_DAY)
                           for task in plan.culprits) if plan.compressed else (),
            planned=change is not None,
            projected_launch=change.launch_after if change is not None else None,
            buffer_left_pct=change.buffer_left_after if change is not None else 100.0,
            critical=tuple(task.id for task in change.newly_critical) if change is not None else (),
        )

    def to_payload(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id, "campaign_name": self.campaign_name,
            "template_title": self.template_title, "owner": self.owner,
            "launch_date": self.launch_date.isoformat(), "created_on": self.created_on.isoformat(),
            "tasks": self.tasks, "milestones": self.milestones, "critical_days": self.critical_days,
            "buffer_days": self.buffer_days, "compressed_days": self.compressed_days,
            "culprits": [{"task_id": c.task_id, "title": c.title, "days": c.days} for c in self.culprits],
            "planned": self.planned,
            "projected_launch": self.projected_launch.isoformat() if self.projected_launch else None,
            "buffer_left_pct": self.buffer_left_pct, "critical": list(self.critical),
            "summary": self.summary,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> CampaignCreated:
        """Read back what `to_payload` stored; raises (KeyError, ValueError) on anything else."""
        projected = payload.get("projected_launch")
        return cls(
            campaign_id=int(payload["campaign_id"]), campaign_name=str(payload["campaign_name"]),
            template_title=str(payload["template_title"]), owner=str(payload["owner"]),
            launch_date=date.fromisoformat(payload["launch_date"]),
            created_on=date.fromisoformat(payload["created_on"]),
            tasks=int(payload["tasks"]), milestones=int(payload["milestones"]),
            critical_days=float(payload["critical_days"]), buffer_days=float(payload["buffer_days"]),
            compressed_days=int(payload.get("compressed_days") or 0),
            culprits=tuple(Culprit(int(c["task_id"]), str(c["title"]), float(c["days"]))
                           for c in payload.get("culprits") or []),
            planned=bool(payload.get("planned")),
            projected_launch=date.fromisoformat(projected) if projected else None,
            buffer_left_pct=float(payload.get("buffer_left_pct", 100.0)),
            critical=tuple(int(task_id) for task_id in payload.get("critical") or []),
        )


def notice(plan: PlanSummary, *, template_title: str, requester: TeamMember, now: datetime) -> CampaignCreated:
    """The message for a campaign just made, its days counted on the requester's calendar."""
    return CampaignCreated.of(plan, template_title=template_title,
                              created_on=now.astimezone(ZoneInfo(requester.timezone)).date())


async def announce(*, db: AsyncSession, plan: PlanSummary, template_title: str, requester: TeamMember,
                   now: datetime) -> None:
    """Write the "created" row: to the campaign's channel if it has one, else to the requester. Once per
    campaign (its key), in the caller's transaction."""
    campaign = plan.campaign
    created = notice(plan, template_title=template_title, requester=requester, now=now)
    await notifications.notify(
        db=db, dedupe_key=f"campaign-created:{campaign.id}", kind=Kind.CAMPAIGN_CREATED, payload=created.to_payload(),
        recipient_channel=campaign.channel_id, recipient_id=None if campaign.channel_id else requester.id,
        campaign_id=campaign.id, now=now,
    )
