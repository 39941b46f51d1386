"""Everything one person's App Home shows, gathered in a handful of queries. No Slack here.

What is loaded is already capped (a few rows per section plus the true totals, counted by window
functions in the same query), so a person with hundreds of tasks costs the same queries as one with three.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, bindparam, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, joinedload

from models import (
    Approval,
    ApprovalStatus,
    Campaign,
    Notification,
    NotificationStatus,
    Task,
    TeamMember,
    Timeline,
)
from services.approval_stages import StageLine, stage_lines, stages_of
from services.campaign_content import content_of_campaigns
from services.campaigns import OPEN_STATUSES
from services.kinds import SURFACES
from services.plans import PlanSummary
from services.team import ACTIVE_TASK_STATUSES

TASKS_PER_BUCKET = 8
APPROVALS_SHOWN = 5
CAMPAIGNS_SHOWN = 10
INBOX_SHOWN = 10
WEEK_DAYS = 7  # "this week" is the next seven days: on a Friday, next Tuesday is still this week's work


class Bucket(enum.IntEnum):
    """When an open task is due, in the person's own calendar. The value is the display order."""

    OVERDUE = 0  # due on a day before today
    TODAY = 1
    THIS_WEEK = 2  # tomorrow up to seven days from today
    LATER = 3  # further out, or no due date


@dataclass(frozen=True)
class TaskGroup:
    bucket: Bucket
    tasks: list[Task]  # the first TASKS_PER_BUCKET, soonest due first; `task.campaign` is loaded
    total: int


@dataclass(frozen=True)
class PendingApproval:
    approval: Approval  # `approver` and `delegated_to` are loaded
    campaign: Campaign


@dataclass(frozen=True)
class CampaignHealth:
    """A campaign's plan at a glance; `risk` is None for a campaign without a plan."""

    campaign: Campaign
    risk: str | None = None
    buffer_left_pct: float | None = None
    projected_launch: date | None = None
    progress_pct: float | None = None
    stages: tuple[StageLine, ...] = ()  # its approval stages, in running order
    assets: int = 0  # not archived
    content_errors: int = 0  # what the content checks find in them (`services.campaign_content`)
    content_warnings: int = 0


@dataclass(frozen=True)
class HomeData:
    member: TeamMember
    now: datetime
    today: date  # in the member's time zone
    task_groups: list[TaskGroup]  # one per Bucket, in order, empty ones included
    approvals: list[PendingApproval]
    approvals_total: int
    campaigns: list[CampaignHealth]
    campaigns_total: int
    inbox: list[Notification]  # newest first
    unread_total: int  # every unread notification, shown or not

    @property
    def unread_shown_ids(self) -> list[int]:
        return [notification.id for notification in self.inbox if notification.read_at is None]


async def gather(*, db: AsyncSession, member: TeamMember, now: datetime) -> HomeData:
    today = now.astimezone(ZoneInfo(member.timezone)).date()
    groups = await my_tasks(db=db, member=member, today=today)
    pending = await _pending_approvals(db, member)
    owned, campaigns_total = await _owned_campaigns(db, member)
    # One read of the stages for both lists; the owned campaigns' timelines came with them.
    stages = await stages_of(
        db, [campaign.id for _, campaign in pending] + [campaign.id for campaign in owned],
        stored={campaign.id: campaign.timeline.approval_stages if campaign.timeline else [] for campaign in owned},
    )
    waiting = [PendingApproval(approval=approval, campaign=campaign) for approval, campaign in pending
               if approval.stage in stages[campaign.id].open_names()]
    contents = await content_of_campaigns(  # one query: the rules came with the timelines
        db, [campaign.id for campaign in owned],
        stored_rules={campaign.id: campaign.timeline.content_rules if campaign.timeline else None for campaign in owned})
    campaigns = [replace(_health(campaign, campaign.timeline), stages=tuple(stage_lines(stages[campaign.id])),
                         assets=len(contents[campaign.id].assets), content_errors=len(contents[campaign.id].errors(
                             every_stage=True)), content_warnings=len(contents[campaign.id].warnings))
                 for campaign in owned]
    inbox, unread_total = await recent_notifications(db=db, member=member, now=now)
    return HomeData(
        member=member, now=now, today=today, task_groups=groups, approvals=waiting[:APPROVALS_SHOWN],
        approvals_total=len(waiting), campaigns=campaigns, campaigns_total=campaigns_total,
        inbox=inbox, unread_total=unread_total,
    )


def bucket_bounds(today: date, timezone: str) -> tuple[datetime, datetime, datetime]:
    """Start of today, of tomorrow and of the day after "this week", as aware moments in `timezone`."""
    zone = ZoneInfo(timezone)

    def midnight(days: int) -> datetime:
        return datetime.combine(today + timedelta(days=days), time(0), tzinfo=zone)

    return midnight(0), midnight(1), midnight(WEEK_DAYS + 1)


def _my_tasks_statement() -> Select[Any]:
    """The bucketed task query, built once: bound per call to the member and their day boundaries.

    Building it is a third of a millisecond of Python, paid on every Home and `/task mine` otherwise;
    a built statement also keeps its cache key, so SQLAlchemy finds the compiled SQL without walking it.
    """
    bucket = case(
        (Task.due_at.is_(None), int(Bucket.LATER)),
        (Task.due_at < bindparam("today_start"), int(Bucket.OVERDUE)),
        (Task.due_at < bindparam("tomorrow_start"), int(Bucket.TODAY)),
        (Task.due_at < bindparam("week_end"), int(Bucket.THIS_WEEK)),
        else_=int(Bucket.LATER),
    )
    # The member's tasks carry their own rank, so the outer query reads them from the ranked rows:
    # joining the ranks back to `tasks` by id made PostgreSQL scan the whole table (3 ms a Home).
    ranked = (
        select(
            Task,
            bucket.label("bucket"),
            func.row_number().over(partition_by=bucket, order_by=(Task.due_at.is_(None), Task.due_at, Task.id))
            .label("position"),
            func.count().over(partition_by=bucket).label("total"),
        )
        .join(Campaign, Campaign.id == Task.campaign_id)
        .where(
            Task.assignee_id == bindparam("member_id"),
            Task.status.in_(ACTIVE_TASK_STATUSES),
            Campaign.status.in_(OPEN_STATUSES),
        )
        .subquery()
    )
    task = aliased(Task, ranked)
    return (
        select(task, ranked.c.bucket, ranked.c.total)
        .where(ranked.c.position <= TASKS_PER_BUCKET)
        .order_by(ranked.c.bucket, ranked.c.position)
        .options(joinedload(task.campaign))
    )


MY_TASKS = _my_tasks_statement()

# The Home's other queries, built once too (see _my_tasks_statement).
PENDING_APPROVALS = (
    select(Approval, Campaign)
    .join(Campaign, Campaign.id == Approval.campaign_id)
    .where(
        Approval.status == ApprovalStatus.PENDING,
        or_(Approval.approver_id == bindparam("member_id"), Approval.delegated_to_id == bindparam("member_id")),
        Campaign.status.in_(OPEN_STATUSES),
    )
    .order_by(Approval.deadline.is_(None), Approval.deadline, Approval.id)
    .options(joinedload(Approval.approver), joinedload(Approval.delegated_to))
)
OWNED_CAMPAIGNS = (
    select(Campaign, func.count().over())
    .where(Campaign.owner_id == bindparam("member_id"), Campaign.status.in_(OPEN_STATUSES))
    .order_by(Campaign.launch_date, Campaign.id)
    .limit(CAMPAIGNS_SHOWN)
    .options(joinedload(Campaign.timeline))
)
RECENT_NOTIFICATIONS = (
    select(Notification, func.sum(case((Notification.read_at.is_(None), 1), else_=0)).over())
    .where(Notification.recipient_id == bindparam("member_id"), Notification.scheduled_for <= bindparam("now"),
           Notification.status != NotificationStatus.WITHDRAWN, Notification.kind.not_in(SURFACES))
    .order_by(Notification.scheduled_for.desc(), Notification.id.desc())
    .limit(INBOX_SHOWN)
)


async def my_tasks(*, db: AsyncSession, member: TeamMember, today: date) -> list[TaskGroup]:
    """Open tasks assigned to the member in open campaigns, by bucket: the first few of each and its total.

    Buckets go by the day a task is due in the member's calendar, not the hour: a task due at 10:00 today
    is "due today" all day, as the date shown next to it says.
    """
    today_start, tomorrow_start, week_end = bucket_bounds(today, member.timezone)
    rows = await db.execute(MY_TASKS, {"member_id": member.id, "today_start": today_start,
                                       "tomorrow_start": tomorrow_start, "week_end": week_end})
    shown: dict[Bucket, list[Task]] = {key: [] for key in Bucket}
    totals: dict[Bucket, int] = dict.fromkeys(Bucket, 0)
    for task, key, total in rows:
        shown[Bucket(key)].append(task)
        totals[Bucket(key)] = int(total)
    return [TaskGroup(bucket=key, tasks=shown[key], total=totals[key]) for key in Bucket]


async def _pending_approvals(db: AsyncSession, member: TeamMember) -> list[tuple[Approval, Campaign]]:
    """Pending approvals the member gives, as approver or delegate, in open campaigns, nearest deadline
    first. The Home keeps those whose stage is open now (not queued behind an earlier stage)."""
    rows = await db.execute(PENDING_APPROVALS, {"member_id": member.id})
    return [(approval, campaign) for approval, campaign in rows]


async def _owned_campaigns(db: AsyncSession, member: TeamMember) -> tuple[list[Campaign], int]:
    """The member's first open campaigns, soonest launch first, each with its timeline; and how many."""
    rows = (await db.execute(OWNED_CAMPAIGNS, {"member_id": member.id})).all()
    return [campaign for campaign, _ in rows], int(rows[0][1]) if rows else 0


def _health(campaign: Campaign, timeline: Timeline | None) -> CampaignHealth:
    if timeline is None:
        return CampaignHealth(campaign=campaign)
    # Risk and buffer read only the timeline, so the plan's tasks are not loaded for the home.
    plan = PlanSummary(campaign=campaign, timeline=timeline, tasks=[])
    return CampaignHealth(
        campaign=campaign, risk=plan.risk, buffer_left_pct=plan.buffer_left_pct,
        projected_launch=timeline.projected_launch, progress_pct=timeline.progress_pct,
    )


async def recent_notifications(
    *, db: AsyncSession, member: TeamMember, now: datetime
) -> tuple[list[Notification], int]:
    """The member's newest notifications that are due (any channel), and how many of all due ones are unread.

    A reminder scheduled for later is not news yet, so it stays out until its time comes.
    """
    rows = (await db.execute(RECENT_NOTIFICATIONS, {"member_id": member.id, "now": now})).all()
    total_unread = int(rows[0][1] or 0) if rows else 0
    return [notification for notification, _ in rows], total_unread


async def mark_read(*, db: AsyncSession, member_id: int, notification_ids: Sequence[int], now: datetime) -> int:
    """Mark the member's notifications read (those already read keep their first read time)."""
    if not notification_ids:
        return 0
    result = await db.execute(
        update(Notification)
        .where(
            Notification.id.in_(list(notification_ids)),
            Notification.recipient_id == member_id,
            Notification.read_at.is_(None),
        )
        .values(read_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
