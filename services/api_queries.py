"""The REST API's list reads: campaigns and tasks a page at a time, with filters, and a member's approvals.

Pages are keyset pages: the cursor is the sort key of the last row shown, so a page costs the same at
row 10 as at row 10,000, and a row added or removed meanwhile neither repeats nor skips the rows after
it. Campaigns sort by launch date then id (the order every other list of campaigns uses), tasks by id.
Everyone on the team may read every campaign and task, as in Slack (`/campaign list`, `/task list`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from models import Approval, Campaign, CampaignStatus, Task, TaskStatus
from services.campaigns import OPEN_STATUSES
from services.home import PENDING_APPROVALS


@dataclass(frozen=True)
class CampaignSlice:
    campaigns: Sequence[Campaign]  # owner loaded
    next_after: tuple[date, int] | None  # the sort key to continue after; None on the last page


async def campaign_page(
    *, db: AsyncSession, statuses: Sequence[CampaignStatus] = OPEN_STATUSES, owner_id: int | None = None,
    template: str | None = None, after: tuple[date, int] | None = None, limit: int = 50,
) -> CampaignSlice:
    query = select(Campaign).where(Campaign.status.in_(statuses)).options(joinedload(Campaign.owner))
    if owner_id is not None:
        query = query.where(Campaign.owner_id == owner_id)
    if template is not None:
        query = query.where(Campaign.template == template)
    if after is not None:
        launch, last_id = after
        query = query.where(or_(Campaign.launch_date > launch,
                                and_(Campaign.launch_date == launch, Campaign.id > last_id)))
    rows = list(await db.scalars(query.order_by(Campaign.launch_date, Campaign.id).limit(limit + 1)))
    shown = rows[:limit]
    more = len(rows) > limit
    return CampaignSlice(campaigns=shown, next_after=(shown[-1].launch_date, shown[-1].id) if more else None)


@dataclass(frozen=True)
class TaskSlice:
    tasks: Sequence[Task]  # assignee loaded
    next_after: int | None


async def task_page(
    *, db: AsyncSession, campaign_id: int | None = None, assignee_id: int | None = None,
    status: TaskStatus | None = None, after: int | None = None, limit: int = 50,
) -> TaskSlice:
    query = select(Task).options(joinedload(Task.assignee))
    if campaign_id is not None:
        query = query.where(Task.campaign_id == campaign_id)
    if assignee_id is not None:
        query = query.where(Task.assignee_id == assignee_id)
    if status is not None:
        query = query.where(Task.status == status)
    if after is not None:
        query = query.where(Task.id > after)
    rows = list(await db.scalars(query.order_by(Task.id).limit(limit + 1)))
    shown = rows[:limit]
    return TaskSlice(tasks=shown, next_after=shown[-1].id if len(rows) > limit else None)


async def approvals_waiting_on(*, db: AsyncSession, member_id: int) -> list[tuple[Approval, Campaign]]:
    """Pending approvals the member gives (as approver or delegate) in open campaigns, nearest deadline
    first: the Home's list, including stages queued behind an earlier one."""
    rows = await db.execute(PENDING_APPROVALS, {"member_id": member_id})
    return [(approval, campaign) for approval, campaign in rows]


async def stage_approvals(*, db: AsyncSession, campaign_id: int, stage: str) -> list[Approval]:
    """The rows of one stage (one per approver), in the order they were made."""
    query = select(Approval).where(Approval.campaign_id == campaign_id, Approval.stage == stage).order_by(Approval.id)
    return list(await db.scalars(query))
