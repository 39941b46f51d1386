"""The dashboard's metrics over a range of days: how much work got done, on time, how fast sign-offs came
back, and how the plans' buffers stand.

- Completion: of the tasks due in the range (up to now: work due tomorrow is not missing yet), how many
  are done. Milestones are moments, not work, and cancelled tasks were not wanted: both left out.
- On time: of the tasks finished in the range that had a due time, how many finished by it.
- Approval turnaround: hours from the request to the decision, for the decisions made in the range
  (median and 90th percentile), and how many of those with a deadline came by it.
- Buffer health: the campaigns launching in the range (cancelled ones left out), by the plan's verdict
  and by how much buffer is left: the thirds of a buffer fever chart (green, amber, red).
- Email: of the people the campaigns' emails reached in the range (Mailjet's events, `email_events`), how
  many got them, opened and clicked, and the bounces and unsubscribes; `available` False until an event
  in the range and scope has come in.
Each is one aggregate query or one narrow read, whatever the range holds.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Approval, ApprovalStatus, Campaign, CampaignStatus, Task, TaskStatus
from services.dashboard import HEALTH_ORDER, campaign_card, cards, within

GREEN_LEFT, AMBER_LEFT = 200 / 3, 100 / 3  # buffer left (%) at or above which a plan is green, amber


@dataclass(frozen=True)
class Rate:
    part: int
    whole: int
    pct: float | None  # None when there is nothing to measure

    @classmethod
    def of(cls, part: int, whole: int) -> Rate:
        return cls(part=part, whole=whole, pct=round(100 * part / whole, 1) if whole else None)


@dataclass(frozen=True)
class Turnaround:
    decided: int
    median_hours: float | None
    p90_hours: float | None
    in_time: Rate  # of the decisions that had a deadline


@dataclass(frozen=True)
class Count:
    name: str  # a Health value, or a band: green, amber, red
    label: str
    count: int


@dataclass(frozen=True)
class BufferHealth:
    campaigns: int
    by_health: list[Count]
    bands: list[Count]  # planned campaigns only
    average_left_pct: float | None


@dataclass(frozen=True)
class EmailRates:
    available: bool
    opens: Rate | None = None  # of the people delivered to
    clicks: Rate | None = None
    recipients: int = 0
    delivered: Rate | None = None  # of the recipients
    bounces: int = 0
    unsubscribes: int = 0
    spam_reports: int = 0
    blocked: int = 0


@dataclass(frozen=True)
class Metrics:
    first: date
    last: date  # included
    zone: str
    completion: Rate
    on_time: Rate
    turnaround: Turnaround
    buffer: BufferHealth
    email: EmailRates


async def metrics(
    *, db: AsyncSession, campaign_id: int | None, first: date, last: date, zone: ZoneInfo, now: datetime
) -> Metrics:
    start = datetime.combine(first, time(0), tzinfo=zone)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone)
    return Metrics(
        first=first, last=last, zone=zone.key,
        completion=await _completion(db, campaign_id, start, min(end, now)),
        on_time=await _on_time(db, campaign_id, start, end),
        turnaround=await _turnaround(db, campaign_id, start, end),
        buffer=await _buffer(db, campaign_id, first, last),
        email=await _email(db, campaign_id, start, end),
    )


async def _email(db: AsyncSession, campaign_id: int | None, start: datetime, end: datetime) -> EmailRates:
    # Imported here: email_events uses this module's Rate.
    from services import email_events

    found = await email_events.results(db=db, campaign_ids=None if campaign_id is None else [campaign_id],
                                       start=start, end=end)
    summed = email_events.total(found.values())
    if summed is None:
        return EmailRates(available=False)
    return EmailRates(available=True, opens=summed.opened, clicks=summed.clicked, recipients=summed.recipients,
                      delivered=summed.delivered, bounces=summed.bounced, unsubscribes=summed.unsubscribed,
                      spam_reports=summed.spam_reports, blocked=summed.blocked)


_DONE = case((Task.status == TaskStatus.DONE, 1), else_=0)
_BY_DUE = case((Task.completed_at <= Task.due_at, 1), else_=0)


def _work(campaign_id: int | None) -> Select[Any]:
    """Tasks that are work people were asked for: no milestones, nothing cancelled, in scope."""
    return within(
        select(func.count().label("whole"), func.coalesce(func.sum(_DONE), 0).label("done"),
               func.coalesce(func.sum(_BY_DUE), 0).label("by_due"))
        .select_from(Task).join(Campaign, Campaign.id == Task.campaign_id)
        .where(Task.is_milestone.is_(False), Task.status != TaskStatus.CANCELLED,
               Campaign.status != CampaignStatus.CANCELLED),
        campaign_id, Task.campaign_id,
    )


async def _completion(db: AsyncSession, campaign_id: int | None, start: datetime, end: datetime) -> Rate:
    if end <= start:  # the whole range lies ahead: nothing was due yet
        return Rate.of(0, 0)
    statement = _work(campaign_id).where(Task.due_at >= start, Task.due_at < end)
    row = (await db.execute(statement)).one()
    return Rate.of(int(row.done), int(row.whole))


async def _on_time(db: AsyncSession, campaign_id: int | None, start: datetime, end: datetime) -> Rate:
    statement = _work(campaign_id).where(
        Task.status == TaskStatus.DONE, Task.completed_at >= start, Task.completed_at < end, Task.due_at.is_not(None))
    row = (await db.execute(statement)).one()
    return Rate.of(int(row.by_due), int(row.whole))


async def _turnaround(db: AsyncSession, campaign_id: int | None, start: datetime, end: datetime) -> Turnaround:
    statement = within(
        select(Approval.created_at, Approval.decided_at, Approval.deadline)
        .join(Campaign, Campaign.id == Approval.campaign_id)
        .where(Approval.status.in_((ApprovalStatus.APPROVED, ApprovalStatus.REJECTED)),
               Approval.decided_at >= start, Approval.decided_at < end),
        campaign_id, Approval.campaign_id,
    )
    hours: list[float] = []
    with_deadline = in_time = 0
    for requested, decided, deadline in await db.execute(statement):
        if decided is None:  # the query asked for decided ones; this keeps the type checker sure of it
            continue
        hours.append(max(0.0, (decided - requested).total_seconds() / 3600))
        if deadline is not None:
            with_deadline += 1
            in_time += decided <= deadline
    hours.sort()
    return Turnaround(
        decided=len(hours), median_hours=round(statistics.median(hours), 1) if hours else None,
        p90_hours=round(hours[math.ceil(0.9 * len(hours)) - 1], 1) if hours else None,
        in_time=Rate.of(in_time, with_deadline),
    )


async def _buffer(db: AsyncSession, campaign_id: int | None, first: date, last: date) -> BufferHealth:
    statement = within(
        cards().where(Campaign.launch_date >= first, Campaign.launch_date <= last,
                      Campaign.status != CampaignStatus.CANCELLED),
        campaign_id,
    )
    launching = [campaign_card(row) for row in await db.execute(statement)]
    counts = {health: 0 for health in HEALTH_ORDER}
    for card in launching:
        counts[card.health] += 1
    left = [card.buffer_left_pct for card in launching if card.buffer_left_pct is not None]
    bands = {"green": 0, "amber": 0, "red": 0}
    for value in left:
        bands["green" if value >= GREEN_LEFT else "amber" if value >= AMBER_LEFT else "red"] += 1
    return BufferHealth(
        campaigns=len(launching),
        by_health=[Count(health.value, health.label, counts[health]) for health in HEALTH_ORDER],
        bands=[Count(name, _BAND_LABELS[name], count) for name, count in bands.items()],
        average_left_pct=round(sum(left) / len(left), 1) if left else None,
    )


_BAND_LABELS = {"green": "Green: two thirds or more left", "amber": "Amber: a third to two thirds left",
                "red": "Red: less than a third left"}
