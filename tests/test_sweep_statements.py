"""The sweep's SQL statement count does not grow with the workspace.

It runs every minute in one transaction (on SQLite, holding the only write lock), so work per campaign
must be done in set-based statements: the same few for 3 campaigns as for 30. Each campaign here is
stale (its plan is two weeks old, so the daily re-plan takes it), due its weekly status post, has an
owner of its own, overdue work assigned (reminders, escalations, a digest) and a sign-off stage open
with a pending approval past its deadline (approval escalations; an open gate in the re-plan).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Approval, Campaign, Notification, Task, TaskStatus, TeamMember, TimelineSnapshot
from services import campaigns
from services.planning.templates import load_library
from services.sweep import sweep
from tests.statements import counting_statements

Sessions = async_sessionmaker[AsyncSession]
CREATED = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)  # a Monday: the plans are computed then
SWEEP_AT = datetime(2027, 3, 15, 10, 0, tzinfo=UTC)  # two weeks later, Monday after 09:00: post and re-plan due
LAUNCH = date(2027, 5, 3)
# Statements one sweep may add for ten times the campaigns: none is the aim; a little room for a backend
# that splits a batch differently.
ALLOWED_GROWTH = 2


async def seed(sessions: Sessions, count: int) -> None:
    """`count` product launches, each with its own owner, in the state described in the module docstring."""
    template = load_library().resolve("product_launch")
    assert template.approvals
    stage = template.approvals[0]
    async with sessions.begin() as db:
        for n in range(count):
            owner = TeamMember(slack_user_id=f"UOWNER{n}", name=f"Owner {n}", timezone="UTC", weekly_availability={})
            db.add(owner)
            await db.flush()
            plan = await campaigns.create_campaign(db=db, name=f"Launch {n}", template=template, launch_date=LAUNCH,
                                                   owner=owner, now=CREATED)
            plan.campaign.created_at = CREATED  # so this week's status post is owed (created before Monday 09:00)
            for position, task in enumerate(plan.tasks):
                task.assignee_id = owner.id
                if task.template_key == stage.after_task:
                    task.status, task.completed_at = TaskStatus.DONE, CREATED + timedelta(days=1)
                elif position == 0:  # a date a person set, long past: the re-plan keeps it, so it is overdue
                    task.due_at, task.due_fixed = CREATED + timedelta(days=2), True
            db.add(Approval(campaign_id=plan.campaign.id, stage=stage.name, stage_order=1, approver_id=owner.id,
                            created_at=CREATED + timedelta(days=1), deadline=CREATED + timedelta(days=3)))


async def statements_of_one_sweep(sessions: Sessions, campaign_count: int) -> int:
    await seed(sessions, campaign_count)
    engine = sessions.kw["bind"]
    with counting_statements(engine) as statements:
        async with sessions.begin() as db:
            result = await sweep(db=db, now=SWEEP_AT)
    async with sessions() as db:  # the sweep did all the work described, for every campaign
        replanned = await db.scalar(select(TimelineSnapshot.id).where(TimelineSnapshot.reason == "daily re-plan")
                                    .order_by(TimelineSnapshot.id.desc()).limit(1))
        kinds = set((await db.scalars(select(Notification.kind))).all())
        per_campaign = len((await db.scalars(select(Notification.id).where(Notification.kind == "campaign_status"))).all())
        campaigns_seen = len((await db.scalars(select(Campaign.id))).all())
        assigned = await db.scalar(select(Task.id).where(Task.assignee_id.is_not(None)).limit(1))
    assert replanned is not None and assigned is not None and result.written > 0
    assert {"campaign_status", "task_overdue", "task_escalation", "approval_escalation", "digest"} <= kinds
    assert per_campaign == campaigns_seen == campaign_count
    return len(statements)


async def test_one_sweep_costs_the_same_few_statements_for_3_or_30_campaigns(db_url: str, sessions: Sessions) -> None:
    from tests.conftest import empty_database

    small = await statements_of_one_sweep(sessions, 3)
    await empty_database(db_url)
    large = await statements_of_one_sweep(sessions, 30)
    assert large - small <= ALLOWED_GROWTH, f"{small} statements for 3 campaigns, {large} for 30"
