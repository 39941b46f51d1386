"""Tasks: find, list, start, finish, block, re-date, re-estimate. A change that moves the plan re-plans it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from models import Campaign, Task, TaskStatus
from services import audit, authz, plans
from services.errors import InvalidInput, NotFound
from services.refs import RefKind, format_ref

MAX_REASON = 500
MAX_ESTIMATE_HOURS = 8 * 60  # a task longer than about three months should be split
MIN_ESTIMATE_HOURS = 0.5
MAX_HORIZON_DAYS = 3 * 365  # the same horizon as a campaign's launch date


def task_ref(task: Task) -> str:
    return format_ref(RefKind.TASK, task.id)


async def get_task(*, db: AsyncSession, task_id: int) -> Task:
    task = await db.scalar(
        select(Task)
        .where(Task.id == task_id)
        .options(selectinload(Task.campaign).selectinload(Campaign.owner), selectinload(Task.assignee))
    )
    if task is None:
        raise NotFound(f"There is no task {format_ref(RefKind.TASK, task_id)}.")
    return task


async def list_tasks(*, db: AsyncSession, campaign: Campaign) -> Sequence[Task]:
    """A campaign's tasks in plan order: by latest start, milestones after the work they close."""
    rows = await db.scalars(
        select(Task).where(Task.campaign_id == campaign.id).options(selectinload(Task.assignee))
        .order_by(Task.start_at.is_(None), Task.start_at, Task.is_milestone, Task.id)
    )
    return rows.all()


@dataclass
class Context:
    """Who acts, when, and the team's holidays: what every change below needs."""

    actor: authz.Actor
    now: datetime
    holidays: frozenset[date] = frozenset()


async def start(*, db: AsyncSession, task: Task, ctx: Context) -> None:
    authz.require_task_worker(ctx.actor, task, task.campaign, "start this task")
    _require_open(task)
    task.status = TaskStatus.IN_PROGRESS
    task.blocked_reason = None
    _audit(db, ctx, task, "task.started")


async def complete(*, db: AsyncSession, task: Task, ctx: Context) -> plans.PlanSummary | None:
    authz.require_task_worker(ctx.actor, task, task.campaign, "finish this task")
    if task.status is TaskStatus.DONE:
        raise InvalidInput(f"{task_ref(task)} is already done.")
    _require_open(task)
    task.status = TaskStatus.DONE
    task.completed_at = ctx.now
    task.blocked_reason = None
    late = task.due_at is not None and ctx.now > task.due_at
    _audit(db, ctx, task, "task.completed", late=late)
    return await _replan(db, task, ctx, f"{task_ref(task)} done" + (" late" if late else ""))


async def block(*, db: AsyncSession, task: Task, reason: str, ctx: Context) -> plans.PlanSummary | None:
    authz.require_task_worker(ctx.actor, task, task.campaign, "block this task")
    _require_open(task)
    clean = " ".join(reason.split())
    if not clean:
        raise InvalidInput("Say what it is waiting for: `/task block T-4 waiting for legal review`.")
    task.status = TaskStatus.BLOCKED
    task.blocked_reason = clean[:MAX_REASON]
    _audit(db, ctx, task, "task.blocked", reason=task.blocked_reason)
    return await _replan(db, task, ctx, f"{task_ref(task)} blocked")


async def set_due(*, db: AsyncSession, task: Task, due: date, ctx: Context) -> plans.PlanSummary | None:
    authz.require_task_worker(ctx.actor, task, task.campaign, "change this task's due date")
    _require_open(task)
    owner_zone = ZoneInfo(task.campaign.owner.timezone)
    today = ctx.now.astimezone(owner_zone).date()
    if due < today:
        raise InvalidInput(f"{due.isoformat()} is in the past; pick today or later.")
    if due > today + timedelta(days=MAX_HORIZON_DAYS):
        raise InvalidInput(f"{due.isoformat()} is more than {MAX_HORIZON_DAYS // 365} years away.")
    task.due_at = datetime.combine(due, time(17, 0), tzinfo=owner_zone)  # end of that working day
    task.due_fixed = True
    _audit(db, ctx, task, "task.due_changed", due=due.isoformat())
    return await _replan(db, task, ctx, f"{task_ref(task)} due {due.isoformat()}")


async def reestimate(*, db: AsyncSession, task: Task, hours: float, ctx: Context) -> plans.PlanSummary | None:
    authz.require_task_worker(ctx.actor, task, task.campaign, "re-estimate this task")
    _require_open(task)
    if task.is_milestone:
        raise InvalidInput(f"{task_ref(task)} is a milestone: it marks a moment and takes no time.")
    if not MIN_ESTIMATE_HOURS <= hours <= MAX_ESTIMATE_HOURS:
        raise InvalidInput(f"An estimate is between 30m and {MAX_ESTIMATE_HOURS // 8}d; split bigger work.")
    previous = task.duration_hours
    task.duration_hours = hours
    _audit(db, ctx, task, "task.reestimated", hours=hours, previous=previous)
    return await _replan(db, task, ctx, f"{task_ref(task)} re-estimated {previous:g}h → {hours:g}h")


def _require_open(task: Task) -> None:
    if task.status in (TaskStatus.DONE, TaskStatus.CANCELLED):
        raise InvalidInput(f"{task_ref(task)} is {task.status.value}; it can't change any more.")


def _audit(db: AsyncSession, ctx: Context, task: Task, action: str, **details: object) -> None:
    audit.record(db=db, actor=ctx.actor.member.slack_user_id, action=action, entity_type="task",
                 entity_id=task.id, **details)


async def _replan(db: AsyncSession, task: Task, ctx: Context, reason: str) -> plans.PlanSummary | None:
    await db.flush()
    return await plans.replan(db=db, campaign=task.campaign, now=ctx.now, reason=reason, holidays=ctx.holidays)
