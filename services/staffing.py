"""Who does which task: feeds the pure assignment engine from the database and records its choices.

Like every change to a campaign's tasks, an assignment takes the campaign's row first
(`campaigns.lock_campaign`) and reads the tasks after it, so it queues behind a re-plan instead of
deadlocking with it, and never staffs a task from a copy someone changed in the meantime.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Campaign, Task, TaskStatus, TeamMember
from services import audit, authz
from services.campaigns import lock_campaign, lock_with_tasks
from services.errors import InvalidInput
from services.planning.assignment import Candidate, Choice, TaskNeed, assign_many
from services.tasks import list_tasks
from services.team import ACTIVE_TASK_STATUSES


async def candidates(*, db: AsyncSession, campaign: Campaign) -> list[Candidate]:
    """Every active member with their open-task load and how much of this campaign they already hold."""
    load = {member_id: count for member_id, count in (await db.execute(
        select(Task.assignee_id, func.count()).where(Task.status.in_(ACTIVE_TASK_STATUSES)).group_by(Task.assignee_id)
    )).all()}
    held = {member_id: count for member_id, count in (await db.execute(
        select(Task.assignee_id, func.count()).where(Task.campaign_id == campaign.id).group_by(Task.assignee_id)
    )).all()}
    members = await db.scalars(select(TeamMember).where(TeamMember.is_active.is_(True)))
    return [
        Candidate(
            member_id=member.id, name=member.name, skills=frozenset(s.lower() for s in member.skills),
            role=member.role, timezone=member.timezone, weekly_availability=member.weekly_availability,
            max_concurrent=member.max_concurrent_tasks, active_tasks=load.get(member.id, 0),
            out_of_office=(member.out_of_office_from, member.out_of_office_until)
            if member.out_of_office_from and member.out_of_office_until else None,
            tasks_in_campaign=held.get(member.id, 0),
        )
        for member in members
    ]


def need(task: Task, now: datetime, owner_timezone: str) -> TaskNeed:
    """The days someone must be around for: from the earliest start to the due date, as whole days.

    Whole days in the owner's calendar, because people in other time zones do the work in their own
    hours on those days; an hour-exact window would rule out anyone a few zones away.
    """
    zone = ZoneInfo(owner_timezone)
    start = task.earliest_start_at or task.start_at or now
    due = task.due_at or start + timedelta(hours=max(task.duration_hours, 1.0))
    first, last = min(start, due).astimezone(zone).date(), max(start, due).astimezone(zone).date()
    return TaskNeed(
        task_id=task.id, title=task.title, skill=task.required_skill,
        window_start=datetime.combine(first, time.min, tzinfo=zone),
        window_end=datetime.combine(last, time.max, tzinfo=zone),
    )


async def auto_assign(
    *, db: AsyncSession, campaign: Campaign, tasks: Sequence[Task], actor: authz.Actor, now: datetime
) -> list[tuple[Task, Choice]]:
    """Pick the best person for each open task, in plan order; record the choice and its reason."""
    await lock_with_tasks(db, campaign.id, tasks)
    return await _choose(db=db, campaign=campaign, tasks=tasks, actor=actor, now=now)


async def assign_unstaffed(
    *, db: AsyncSession, campaign: Campaign, actor: authz.Actor, now: datetime
) -> list[tuple[Task, Choice]]:
    """`auto_assign` for every task of the campaign that has nobody, as they stand once it is locked."""
    await lock_campaign(db, campaign.id)
    unstaffed = [task for task in await list_tasks(db=db, campaign=campaign) if task.assignee_id is None]
    return await _choose(db=db, campaign=campaign, tasks=unstaffed, actor=actor, now=now)


async def _choose(
    *, db: AsyncSession, campaign: Campaign, tasks: Sequence[Task], actor: authz.Actor, now: datetime
) -> list[tuple[Task, Choice]]:
    """The engine's pick for each open task among `tasks`, recorded; the caller holds the campaign's lock."""
    authz.require_campaign_manager(actor, campaign, "assign its tasks")
    work = [task for task in tasks if task.status not in (TaskStatus.DONE, TaskStatus.CANCELLED) and not task.is_milestone]
    owner_timezone = campaign.owner.timezone
    choices = assign_many([need(task, now, owner_timezone) for task in work],
                          await candidates(db=db, campaign=campaign), owner_timezone=owner_timezone)
    for task, choice in zip(work, choices, strict=True):
        if choice.member_id is not None:
            _record(db, task, choice.member_id, choice.explanation, actor)
    return list(zip(work, choices, strict=True))


async def assign_to(*, db: AsyncSession, task: Task, member: TeamMember, actor: authz.Actor) -> None:
    """A person's own choice of assignee, which wins over the engine (skills are only advice here)."""
    await lock_with_tasks(db, task.campaign_id, [task])
    authz.require_campaign_manager(actor, task.campaign, "assign its tasks")
    if task.status in (TaskStatus.DONE, TaskStatus.CANCELLED):
        raise InvalidInput(f"T-{task.id} is {task.status.value}; there is nothing left to assign.")
    _record(db, task, member.id, f"chosen by {actor.member.name}", actor)
    task.assignee = member


def _record(db: AsyncSession, task: Task, member_id: int, reason: str, actor: authz.Actor) -> None:
    task.assignee_id = member_id
    task.assignment_reason = reason[:1000]
    audit.record(db=db, actor=actor.member.slack_user_id, action="task.assigned", entity_type="task",
                 entity_id=task.id, member_id=member_id, reason=reason[:1000])
