"""The dashboard's first page: open campaigns by health, launches coming up, overdue work, sign-offs waiting.

Four reads however many campaigns there are: the open campaigns with their plan's numbers, the overdue
tasks (the first few and how many), the pending approvals, and the stages those approvals belong to
(`stages_of`, which decides whether a stage is open now or still queued behind an earlier one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from models import Approval, ApprovalStatus, Campaign, Task
from services.approval_stages import stages_of
from services.campaigns import OPEN_STATUSES
from services.dashboard import (
    HEALTH_ORDER,
    TASK_OPTIONS,
    CampaignCard,
    Health,
    Person,
    TaskCard,
    by_health,
    campaign_card,
    campaign_ref,
    cards,
    local,
    person,
    task_card,
    within,
)
from services.team import ACTIVE_TASK_STATUSES

CARDS_PER_HEALTH = 12
LAUNCH_WINDOW_DAYS = 30
LAUNCHES_SHOWN = 20
OVERDUE_SHOWN = 15
APPROVALS_SHOWN = 15


@dataclass(frozen=True)
class HealthGroup:
    health: Health
    campaigns: list[CampaignCard]  # the first CARDS_PER_HEALTH, soonest launch first
    total: int


@dataclass(frozen=True)
class WaitingStage:
    """A sign-off stage open now, with the approvers who have not answered yet."""

    campaign_id: int
    campaign_ref: str
    campaign_name: str
    stage: str
    approvers: list[Person]  # delegates stand in for the approvers who handed it on
    requested_at: datetime  # in the reader's time zone
    deadline: datetime | None
    overdue: bool


@dataclass(frozen=True)
class Overview:
    today: date
    groups: list[HealthGroup]  # every health, worst first, empty ones included
    open_total: int
    launches: list[CampaignCard]  # launching today or within LAUNCH_WINDOW_DAYS
    launches_total: int
    overdue: list[TaskCard]
    overdue_total: int
    approvals: list[WaitingStage]
    approvals_total: int


OVERDUE_TASKS = (
    select(Task, func.count().over().label("total"))
    .join(Campaign, Campaign.id == Task.campaign_id)
    .where(Task.status.in_(ACTIVE_TASK_STATUSES), Campaign.status.in_(OPEN_STATUSES))
    .order_by(Task.due_at, Task.id)
    .limit(OVERDUE_SHOWN)
    .options(*TASK_OPTIONS)
)


async def overview(*, db: AsyncSession, campaign_id: int | None, zone: ZoneInfo, now: datetime) -> Overview:
    today = now.astimezone(zone).date()
    open_cards = await open_campaigns(db=db, campaign_id=campaign_id)
    grouped = by_health(open_cards)
    groups = [HealthGroup(health=health, campaigns=grouped[health][:CARDS_PER_HEALTH], total=len(grouped[health]))
              for health in HEALTH_ORDER]
    horizon = today + timedelta(days=LAUNCH_WINDOW_DAYS)
    launches = sorted((card for card in open_cards if today <= card.launch_date <= horizon),
                      key=lambda card: (card.launch_date, card.id))
    overdue, overdue_total = await overdue_tasks(db=db, campaign_id=campaign_id, zone=zone, now=now)
    waiting = await waiting_stages(db=db, campaign_id=campaign_id, names={card.id: card.name for card in open_cards},
                                   zone=zone, now=now)
    return Overview(
        today=today, groups=groups, open_total=len(open_cards), launches=launches[:LAUNCHES_SHOWN],
        launches_total=len(launches), overdue=overdue, overdue_total=overdue_total,
        approvals=waiting[:APPROVALS_SHOWN], approvals_total=len(waiting),
    )


async def open_campaigns(*, db: AsyncSession, campaign_id: int | None) -> list[CampaignCard]:
    """Every open campaign in scope, soonest launch first."""
    statement = within(cards().where(Campaign.status.in_(OPEN_STATUSES)), campaign_id)
    return [campaign_card(row) for row in await db.execute(statement.order_by(Campaign.launch_date, Campaign.id))]


async def overdue_tasks(
    *, db: AsyncSession, campaign_id: int | None, zone: ZoneInfo, now: datetime
) -> tuple[list[TaskCard], int]:
    """Open tasks of open campaigns whose due time has passed, longest overdue first, and how many."""
    statement = within(OVERDUE_TASKS.where(Task.due_at < now), campaign_id, Task.campaign_id)
    rows = (await db.execute(statement)).all()
    return [task_card(task, zone=zone, now=now) for task, _ in rows], int(rows[0].total) if rows else 0


async def waiting_stages(
    *, db: AsyncSession, campaign_id: int | None, names: dict[int, str], zone: ZoneInfo, now: datetime
) -> list[WaitingStage]:
    """Stages open now with approvals still pending, nearest deadline first. `names`: open campaigns' names."""
    statement = within(
        select(Approval).join(Campaign, Campaign.id == Approval.campaign_id)
        .where(Approval.status == ApprovalStatus.PENDING, Campaign.status.in_(OPEN_STATUSES))
        .order_by(Approval.deadline.is_(None), Approval.deadline, Approval.id)
        .options(joinedload(Approval.approver), joinedload(Approval.delegated_to)),
        campaign_id, Approval.campaign_id,
    )
    pending = list(await db.scalars(statement))
    stages = await stages_of(db, [row.campaign_id for row in pending])
    found: dict[tuple[int, str], list[Approval]] = {}
    for row in pending:
        if row.stage in stages[row.campaign_id].open_names():
            found.setdefault((row.campaign_id, row.stage), []).append(row)
    waiting = []
    for (stage_campaign, stage), rows in found.items():
        deadline = min((row.deadline for row in rows if row.deadline is not None), default=None)
        requested = min(row.created_at for row in rows)
        waiting.append(WaitingStage(
            campaign_id=stage_campaign, campaign_ref=campaign_ref(stage_campaign),
            campaign_name=names.get(stage_campaign, campaign_ref(stage_campaign)), stage=stage,
            approvers=[person(row.delegated_to or row.approver) for row in rows],
            requested_at=requested.astimezone(zone), deadline=local(deadline, zone),
            overdue=deadline is not None and deadline < now,
        ))
    return waiting
