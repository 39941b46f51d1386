"""One sweep of the outbox: write what became due, then list what should go out now.

No Slack and no queue here: the caller (a periodic job) hands `due_ids` to the delivery actor.
Run it inside one transaction. Two sweeps at once duplicate nothing (dedupe keys); `try_lock` lets a
sweeper skip the work when another is already at it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from models import Campaign, CampaignStatus, Timeline
from services import api_idempotency, notifications, plan_alerts, plans, tasks
from services.reminders import MAX_WRITES, due_notifications
from services.status_reports import weekly_status_posts

# pg_try_advisory_xact_lock key for "the sweeper": an arbitrary constant ("CMSW" in ASCII).
SWEEP_LOCK_KEY = 0x434D5357
REPLAN_EVERY = timedelta(hours=24)
STALE_BATCH = 50  # campaigns re-planned per sweep; the rest wait for the next one
# Due rows handed out per sweep: a backlog after downtime drains at the workers' pace (over 1,000/s in
# bench.notifications), not at one page a minute. A row still queued from the last sweep may be handed
# out twice; the claim makes the second job a no-op.
HAND_OUT_LIMIT = 5000


@dataclass(frozen=True)
class SweepResult:
    written: int
    due_ids: Sequence[int]


async def sweep(
    *, db: AsyncSession, now: datetime, limit: int = HAND_OUT_LIMIT, holidays: frozenset[date] = frozenset(),
    link_secret: bytes | None = None, public_url: str | None = None,
) -> SweepResult:
    """`link_secret` and `public_url`: the dashboard's key and address, for the weekly status's timeline
    link (`status_reports`); without them the posts carry none."""
    await replan_stale(db=db, now=now, holidays=holidays)
    written = await due_notifications(db=db, now=now)
    # After the re-plan (fresh risk and buffer) and the reminders, within what is left of the same budget.
    written += await weekly_status_posts(db=db, now=now, max_writes=MAX_WRITES - written, link_secret=link_secret,
                                         public_url=public_url)
    await tasks.forget_submissions(db=db, before=now - tasks.SUBMISSION_REMEMBERED)
    await api_idempotency.forget(db=db, now=now)
    await db.flush()
    return SweepResult(written=written, due_ids=await notifications.due_ids(db=db, now=now, limit=limit))


async def replan_stale(
    *, db: AsyncSession, now: datetime, holidays: frozenset[date] = frozenset(), limit: int = STALE_BATCH
) -> int:
    """Re-plan open campaigns whose plan is a day old: time passing is a change too.

    Work nobody touched is late all the same; without this its buffer use would only show at the next
    edit. Alerts go to the owner through the outbox in this same transaction (`plan_alerts`: one per re-plan,
    and a campaign is re-planned here at most once a day).
    The whole batch is re-planned together (`plans.replan_many`) and its alerts written in one insert, so
    the sweep's statements do not grow with the batch.
    """
    stale = list(await db.scalars(
        select(Campaign)
        .join(Timeline, Timeline.campaign_id == Campaign.id)
        .where(Campaign.status.in_((CampaignStatus.PLANNING, CampaignStatus.ACTIVE)),
               or_(Timeline.computed_at.is_(None), Timeline.computed_at < now - REPLAN_EVERY))
        .options(joinedload(Campaign.owner))
        .order_by(Timeline.computed_at)
        .limit(limit)
    ))
    replanned = await plans.replan_many(db=db, campaigns=stale, now=now, reason="daily re-plan", holidays=holidays)
    drafts = [plan_alerts.draft(plan, because="the daily re-plan", now=now) for plan in replanned.values()]
    await notifications.notify_many(db=db, drafts=[alert for alert in drafts if alert is not None], now=now)
    return len(stale)


async def try_lock(db: AsyncSession) -> bool:
    """True if this transaction is the only sweeper; the lock goes with the commit or rollback.

    PostgreSQL: a transaction-scoped advisory lock, never waited for. SQLite: always True, since
    BEGIN IMMEDIATE already lets one writer in at a time.
    """
    if db.get_bind().dialect.name != "postgresql":
        return True
    return bool(await db.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": SWEEP_LOCK_KEY}))
