"""The week and day views: what launches, which milestones fall and which tasks are due, day by day.

Days are the reader's: a task due at 23:30 UTC belongs to the next day in Berlin. The day boundaries
are computed here in the reader's zone and handed to the database as moments, so one query sorts every
task into its day (a CASE over the boundaries) and keeps the first few of each with the day's true total
(window functions), however many tasks a busy week has. Milestones rank first so they are always shown.
Cancelled work and cancelled campaigns are left out; finished work stays, marked done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, joinedload

from models import Campaign, CampaignStatus, Task, TaskStatus
from services.dashboard import CampaignCard, TaskCard, campaign_card, cards, task_card, within

WEEK_DAYS = 7
CARDS_PER_DAY_IN_WEEK = 25
CARDS_PER_DAY = 400  # the day view: a whole day, still bounded


@dataclass(frozen=True)
class Day:
    day: date
    is_today: bool
    launches: list[CampaignCard]
    milestones: list[TaskCard]
    tasks: list[TaskCard]  # due this day, soonest first (the first few in the week view)
    total: int  # milestones and tasks due this day, shown or not

    @property
    def more(self) -> int:
        return self.total - len(self.milestones) - len(self.tasks)


@dataclass(frozen=True)
class Schedule:
    first: date
    last: date  # included
    previous: date  # the first day of the span before, and of the span after (for the page's arrows)
    following: date
    today: date
    zone: str
    days: list[Day]


async def schedule(
    *, db: AsyncSession, campaign_id: int | None, first: date, days: int, zone: ZoneInfo, now: datetime,
    per_day: int,
) -> Schedule:
    """`days` days from `first` in `zone`, each with up to `per_day` milestones and tasks."""
    last = first + timedelta(days=days - 1)
    launches = await _launches(db, campaign_id, first, last)
    due = await _due(db, campaign_id, first, days, zone, now, per_day)
    today = now.astimezone(zone).date()
    listed = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        cards, total = due.get(offset, ([], 0))
        listed.append(Day(
            day=day, is_today=day == today, launches=launches.get(day, []),
            milestones=[card for card in cards if card.milestone],
            tasks=[card for card in cards if not card.milestone], total=total,
        ))
    return Schedule(first=first, last=last, previous=first - timedelta(days=days), following=last + timedelta(days=1),
                    today=today, zone=zone.key, days=listed)


async def _launches(
    db: AsyncSession, campaign_id: int | None, first: date, last: date
) -> dict[date, list[CampaignCard]]:
    statement = within(
        cards().where(Campaign.launch_date >= first, Campaign.launch_date <= last,
                      Campaign.status != CampaignStatus.CANCELLED),
        campaign_id,
    )
    found: dict[date, list[CampaignCard]] = {}
    for row in await db.execute(statement.order_by(Campaign.launch_date, Campaign.id)):
        found.setdefault(row.launch_date, []).append(campaign_card(row))
    return found


async def _due(
    db: AsyncSession, campaign_id: int | None, first: date, days: int, zone: ZoneInfo, now: datetime, per_day: int,
) -> dict[int, tuple[list[TaskCard], int]]:
    """Task cards by day offset (first few, milestones first) and each day's total."""
    bounds = [datetime.combine(first + timedelta(days=offset), time(0), tzinfo=zone) for offset in range(days + 1)]
    day_of = case(*((Task.due_at < bound, offset) for offset, bound in enumerate(bounds[1:])), else_=days)
    ranked = within(
        select(
            Task,
            day_of.label("day"),
            func.row_number().over(partition_by=day_of, order_by=(Task.is_milestone.desc(), Task.due_at, Task.id))
            .label("position"),
            func.count().over(partition_by=day_of).label("total"),
        )
        .join(Campaign, Campaign.id == Task.campaign_id)
        .where(Task.due_at >= bounds[0], Task.due_at < bounds[-1], Task.status != TaskStatus.CANCELLED,
               Campaign.status != CampaignStatus.CANCELLED),
        campaign_id, Task.campaign_id,
    ).subquery()
    task = aliased(Task, ranked)
    rows = await db.execute(
        select(task, ranked.c.day, ranked.c.total)
        .where(ranked.c.position <= per_day)
        .order_by(ranked.c.day, ranked.c.position)
        .options(joinedload(task.assignee),
                 joinedload(task.campaign).load_only(Campaign.id, Campaign.name, Campaign.status))
    )
    found: dict[int, tuple[list[TaskCard], int]] = {}
    for row_task, offset, total in rows:
        cards, _ = found.setdefault(int(offset), ([], int(total)))
        cards.append(task_card(row_task, zone=zone, now=now))
    return found
