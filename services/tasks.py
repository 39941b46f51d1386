"""Tasks: find, list, add, start, finish, block, re-date, re-estimate, comment.

A change that moves the plan re-plans it, and the owner's plan alert goes into the outbox with the
change (`_replan`). Every change to a task takes its campaign's row first (`_take`), before it checks
or changes anything: a re-plan writes every task of the campaign, so two changes that each took a task
first and then re-planned would deadlock on each other's task.

Who may add a task to a campaign, or comment on one, is its team: the owner, anyone with a task in it,
and admins (see `is_on_team`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from models import (
    Campaign,
    CampaignStatus,
    Comment,
    FormSubmission,
    Priority,
    Task,
    TaskDependency,
    TaskStatus,
    TeamMember,
)
from models.form_submission import MAX_VIEW_ID
from models.upsert import insert_ignore
from services import audit, authz, plan_alerts, plans, signoffs, webhooks
from services.approval_stages import campaign_stages
from services.campaign_content import expected_deliverable
from services.campaigns import lock_campaign, lock_with_tasks
from services.content_checks import EMAIL
from services.errors import DomainError, InvalidInput, NotFound
from services.fields import InvalidField
from services.planning.schedule import Link, find_cycle
from services.planning.templates import ANY_DELIVERABLE, parse_duration
from services.refs import RefKind, format_ref, parse_ref

MAX_REASON = 500
MAX_ESTIMATE_HOURS = 8 * 60  # a task longer than about three months should be split
MIN_ESTIMATE_HOURS = 0.5
MAX_HORIZON_DAYS = 3 * 365  # the same horizon as a campaign's launch date
MAX_TITLE = 300  # the column's length
MAX_DESCRIPTION = 3000  # what a Slack text input holds
MAX_COMMENT = 3000
MAX_LINKS = 20  # refs in one "waits for" or "before" field
DEFAULT_ESTIMATE = "1d"
SUBMISSION_REMEMBERED = timedelta(days=1)  # how long a task form's view id guards against a repeat
OPEN_CAMPAIGN_STATUSES = (CampaignStatus.PLANNING, CampaignStatus.ACTIVE, CampaignStatus.PAUSED)


def task_ref(task: Task) -> str:
    return format_ref(RefKind.TASK, task.id)


async def get_task(*, db: AsyncSession, task_id: int) -> Task:
    task = await db.scalar(
        select(Task)
        .where(Task.id == task_id)
        .options(joinedload(Task.campaign).joinedload(Campaign.owner), joinedload(Task.assignee))
    )
    if task is None:
        raise NotFound(f"There is no task {format_ref(RefKind.TASK, task_id)}.")
    return task


async def list_tasks(*, db: AsyncSession, campaign: Campaign) -> Sequence[Task]:
    """A campaign's tasks in plan order, by due date: a plan never has a task due before what it waits for
    (`plans._planned_finishes`), so this is also the order of the links; at the same moment a milestone
    comes after the work it closes."""
    rows = await db.scalars(
        select(Task).where(Task.campaign_id == campaign.id).options(joinedload(Task.assignee))
        .order_by(Task.due_at.is_(None), Task.due_at, Task.is_milestone, Task.start_at, Task.id)
    )
    return rows.all()


@dataclass
class Context:
    """Who acts, when, and the team's holidays: what every change below needs."""

    actor: authz.Actor
    now: datetime
    holidays: frozenset[date] = frozenset()


async def start(*, db: AsyncSession, task: Task, ctx: Context) -> None:
    await _take(db, task)
    authz.require_task_worker(ctx.actor, task, task.campaign, "start this task")
    require_open(task)
    task.status = TaskStatus.IN_PROGRESS
    task.blocked_reason = None
    _audit(db, ctx, task, "task.started")


class DeliverableMissing(InvalidInput):
    """A task that hands over an asset is being finished without one: ask first (`complete(anyway=True)`)."""

    def __init__(self, task: Task, kind: str):
        self.task_id, self.campaign_id, self.kind = task.id, task.campaign_id, kind
        ref, campaign = task_ref(task), format_ref(RefKind.CAMPAIGN, task.campaign_id)
        self.what = what = "an asset" if kind == ANY_DELIVERABLE else f"an asset of kind {kind}"
        draft = f" or write it: `/campaign asset draft {campaign} deliverable={ref}`" if kind == EMAIL else ""
        super().__init__(f"{ref} hands over {what}, and none is tied to it. Attach it first: "
                         f"`/campaign asset add {campaign} <link> deliverable={ref}`{draft}; "
                         f"or finish it anyway: `/task done {ref} anyway`.")


async def complete(*, db: AsyncSession, task: Task, ctx: Context, anyway: bool = False) -> plans.PlanSummary | None:
    """Finish the task, open the sign-off stages that waited for it, re-plan.

    A task that hands over an asset (`campaign_content.expected_deliverable`) and has none tied to it is
    not finished unless `anyway`: `DeliverableMissing` says what to attach."""
    campaign = await _take(db, task)
    authz.require_task_worker(ctx.actor, task, task.campaign, "finish this task")
    if task.status is TaskStatus.DONE:
        raise InvalidInput(f"{task_ref(task)} is already done.")
    require_open(task)
    if not anyway:
        missing = await expected_deliverable(db, task)
        if missing is not None:
            raise DeliverableMissing(task, missing)
    before = (await campaign_stages(db, campaign.id)).open_names()
    task.status = TaskStatus.DONE
    task.completed_at = ctx.now
    task.blocked_reason = None
    late = task.due_at is not None and ctx.now > task.due_at
    _audit(db, ctx, task, "task.completed", late=late, **({"without_deliverable": True} if anyway else {}))
    await webhooks.emit(db=db, event=webhooks.Event.TASK_DONE, campaign=campaign, now=ctx.now, data={
        "task": {"id": task.id, "ref": task_ref(task), "title": task.title}, "late": late,
        "by": ctx.actor.member.slack_user_id})
    opened = await signoffs.open_ready(db=db, campaign=campaign, before=before, now=ctx.now, holidays=ctx.holidays,
                                       actor_slack_id=ctx.actor.member.slack_user_id)
    plan = await _replan(db, task, ctx, f"{task_ref(task)} done" + (" late" if late else ""))
    if plan is not None:
        plan.opened_stages = opened
    return plan


async def block(*, db: AsyncSession, task: Task, reason: str, ctx: Context) -> plans.PlanSummary | None:
    await _take(db, task)
    authz.require_task_worker(ctx.actor, task, task.campaign, "block this task")
    require_open(task)
    clean = " ".join(reason.split())
    if not clean:
        raise InvalidInput("Say what it is waiting for: `/task block T-4 waiting for legal review`.")
    task.status = TaskStatus.BLOCKED
    task.blocked_reason = clean[:MAX_REASON]
    _audit(db, ctx, task, "task.blocked", reason=task.blocked_reason)
    return await _replan(db, task, ctx, f"{task_ref(task)} blocked")


async def set_due(*, db: AsyncSession, task: Task, due: date, ctx: Context) -> plans.PlanSummary | None:
    await _take(db, task)
    authz.require_task_worker(ctx.actor, task, task.campaign, "change this task's due date")
    require_open(task)
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
    await _take(db, task)
    authz.require_task_worker(ctx.actor, task, task.campaign, "re-estimate this task")
    require_open(task)
    if task.is_milestone:
        raise InvalidInput(f"{task_ref(task)} is a milestone: it marks a moment and takes no time.")
    if not MIN_ESTIMATE_HOURS <= hours <= MAX_ESTIMATE_HOURS:
        raise InvalidInput(f"An estimate is between 30m and {MAX_ESTIMATE_HOURS // 8}d; split bigger work.")
    previous = task.duration_hours
    task.duration_hours = hours
    _audit(db, ctx, task, "task.reestimated", hours=hours, previous=previous)
    return await _replan(db, task, ctx, f"{task_ref(task)} re-estimated {previous:g}h → {hours:g}h")


# ---------------------------------------------------------------- the campaign's team


async def is_on_team(db: AsyncSession, actor: authz.Actor, campaign: Campaign) -> bool:
    """Admins, the owner, and anyone holding a task in the campaign (open or done)."""
    if authz.can_manage_campaign(actor, campaign):
        return True
    holds = await db.scalar(select(exists().where(
        Task.campaign_id == campaign.id, Task.assignee_id == actor.member.id, Task.status != TaskStatus.CANCELLED,
    )))
    return bool(holds)


async def require_team(db: AsyncSession, actor: authz.Actor, campaign: Campaign, doing: str) -> None:
    authz.require(await is_on_team(db, actor, campaign),
                  f"Only {campaign_team_phrase(campaign)} can {doing}.")


def campaign_team_phrase(campaign: Campaign) -> str:
    return f"the owner of {format_ref(RefKind.CAMPAIGN, campaign.id)}, people with a task in it, or an admin"


async def campaigns_open_to(*, db: AsyncSession, actor: authz.Actor, limit: int = 100) -> list[Campaign]:
    """Open campaigns the actor may add tasks to, soonest launch first (all open ones for an admin)."""
    query = select(Campaign).where(Campaign.status.in_(OPEN_CAMPAIGN_STATUSES))
    if not actor.is_admin:
        holds = exists().where(Task.campaign_id == Campaign.id, Task.assignee_id == actor.member.id,
                               Task.status != TaskStatus.CANCELLED)
        query = query.where(or_(Campaign.owner_id == actor.member.id, holds))
    rows = await db.scalars(query.order_by(Campaign.launch_date, Campaign.id).limit(limit))
    return list(rows.all())


# ---------------------------------------------------------------- a new task


@dataclass
class NewTask:
    """What a person asked for, as typed; `create_task` checks every field and names the one that is wrong.

    `after`: refs of the tasks it waits for ("T-4, T-7"); `before`: refs of the tasks that wait for it.
    """

    campaign_id: int
    title: str
    description: str = ""
    estimate: str = ""  # empty: a day
    due: date | None = None
    assignee: TeamMember | None = None
    priority: Priority = Priority.NORMAL
    after: str = ""
    before: str = ""


@dataclass(frozen=True)
class CreatedTask:
    task: Task  # `campaign` (with its owner) and `assignee` are loaded
    plan: plans.PlanSummary | None
    after: list[Task] = field(default_factory=list)  # what it waits for
    before: list[Task] = field(default_factory=list)  # what waits for it
    repeated: bool = False  # the same form was sent before: this is the task it added; nothing changed now


async def create_task(
    *, db: AsyncSession, new: NewTask, ctx: Context, submission_id: str | None = None
) -> CreatedTask:
    """Add a task to an open campaign (its team may) and re-plan. Raises InvalidField naming what is wrong.

    `submission_id` (the form's Slack view id) makes a repeat harmless: the same form submitted again, or
    twice at once, adds nothing and returns the task the first submission added (`repeated`). The id is
    claimed first, in this transaction: a concurrent repeat waits on the claim until this one commits
    (then finds the task) or rolls back (then adds it itself), so a refused form stays free to be
    corrected and sent again, as Slack keeps the same view while it shows the errors.
    """
    if submission_id is None:
        return await _add_task(db, new, ctx)
    if len(submission_id) > MAX_VIEW_ID:
        raise InvalidInput("That form's id is not one Slack sends; open the form again.")
    if not await insert_ignore(db, FormSubmission, {"view_id": submission_id}, conflict=["view_id"]):
        return await _added_before(db, submission_id)
    created = await _add_task(db, new, ctx)
    await db.execute(update(FormSubmission).where(FormSubmission.view_id == submission_id)
                     .values(task_id=created.task.id))
    return created


async def forget_submissions(*, db: AsyncSession, before: datetime) -> None:
    """Drop the claims of forms submitted before `before` (the sweep does it): a repeat comes within
    minutes of the first submission, and the table would otherwise grow by a row per task added."""
    await db.execute(delete(FormSubmission).where(FormSubmission.created_at < before))


async def _added_before(db: AsyncSession, submission_id: str) -> CreatedTask:
    """The task an earlier submission of the same form added, with its links as they are now."""
    task_id = await db.scalar(select(FormSubmission.task_id).where(FormSubmission.view_id == submission_id))
    if task_id is None:  # the claim and the task commit together, and the row goes with its task
        raise InvalidInput("This form was sent before and its task is gone; open a new form to add one.")
    task = await get_task(db=db, task_id=task_id)
    after = await db.scalars(select(Task).join(TaskDependency, TaskDependency.predecessor_id == Task.id)
                             .where(TaskDependency.successor_id == task.id).order_by(Task.id))
    before = await db.scalars(select(Task).join(TaskDependency, TaskDependency.successor_id == Task.id)
                              .where(TaskDependency.predecessor_id == task.id).order_by(Task.id))
    return CreatedTask(task=task, plan=None, after=list(after), before=list(before), repeated=True)


async def _add_task(db: AsyncSession, new: NewTask, ctx: Context) -> CreatedTask:
    try:
        campaign = await lock_campaign(db, new.campaign_id)  # first: the re-plan below writes every task
    except DomainError as error:
        raise InvalidField("campaign", str(error)) from None
    ref = format_ref(RefKind.CAMPAIGN, campaign.id)
    if campaign.status not in OPEN_CAMPAIGN_STATUSES:
        raise InvalidField("campaign", f"{ref} is {campaign.status.value}; it takes no new tasks.")
    if not await is_on_team(db, ctx.actor, campaign):
        raise InvalidField("campaign", f"Only {campaign_team_phrase(campaign)} can add tasks to it.")
    title = " ".join(new.title.replace("\x00", "").split())
    if not title:
        raise InvalidField("title", "Give the task a title.")
    if len(title) > MAX_TITLE:
        raise InvalidField("title", f"The title is {len(title)} characters long; keep it under {MAX_TITLE + 1}.")
    description = new.description.replace("\x00", "").strip()
    if len(description) > MAX_DESCRIPTION:
        raise InvalidField("description", f"Keep the description under {MAX_DESCRIPTION + 1} characters.")
    hours = _estimate_hours(new.estimate)
    owner_zone = ZoneInfo(campaign.owner.timezone)
    if new.due is not None:
        _check_due(new.due, ctx.now.astimezone(owner_zone).date(), field_name="due")
    if new.assignee is not None and new.assignee.id != ctx.actor.member.id \
            and not authz.can_manage_campaign(ctx.actor, campaign):
        raise InvalidField("assignee", "Only the campaign owner or an admin can give a task to someone else; "
                                       "pick yourself or leave it empty.")
    after = await _linked_tasks(db, campaign, new.after, "after")
    before = await _linked_tasks(db, campaign, new.before, "before")
    await _refuse_loops(db, campaign, after, before)

    task = Task(
        campaign_id=campaign.id, title=title, description=description or None, duration_hours=hours,
        priority=new.priority, status=TaskStatus.TODO,
        assignee_id=new.assignee.id if new.assignee else None,
        assignment_reason=f"chosen by {ctx.actor.member.name}"[:1000] if new.assignee else None,
    )
    if new.due is not None:
        task.due_at = datetime.combine(new.due, time(17, 0), tzinfo=owner_zone)  # end of that working day
        task.due_fixed = True
    task.campaign, task.assignee = campaign, new.assignee
    db.add(task)
    await db.flush()
    db.add_all([TaskDependency(predecessor_id=other.id, successor_id=task.id) for other in after]
               + [TaskDependency(predecessor_id=task.id, successor_id=other.id) for other in before])
    _audit(db, ctx, task, "task.created", campaign_id=campaign.id, title=title, hours=hours,
           priority=new.priority.value, due=new.due.isoformat() if new.due else None,
           assignee_id=task.assignee_id, after=[other.id for other in after], before=[other.id for other in before])
    plan = await _replan(db, task, ctx, f"{task_ref(task)} added")
    return CreatedTask(task=task, plan=plan, after=after, before=before)


def parse_task_refs(text: str) -> list[int]:
    """`T-4, T-7 t9` -> [4, 7, 9]: commas, semicolons or spaces between, each ref once, in order."""
    ids: list[int] = []
    for word in re.split(r"[\s,;]+", text.strip()):
        if word:
            number = parse_ref(word, RefKind.TASK)
            if number not in ids:
                ids.append(number)
    return ids


def _estimate_hours(typed: str) -> float:
    try:
        hours = parse_duration(typed.strip() or DEFAULT_ESTIMATE)
    except ValueError as error:
        raise InvalidField("estimate", str(error)) from None
    if not MIN_ESTIMATE_HOURS <= hours <= MAX_ESTIMATE_HOURS:
        raise InvalidField("estimate", f"An estimate is between 30m and {MAX_ESTIMATE_HOURS // 8}d; split bigger work.")
    return hours


def _check_due(due: date, today: date, *, field_name: str) -> None:
    if due < today:
        raise InvalidField(field_name, f"{due.isoformat()} is in the past; pick today or later.")
    if due > today + timedelta(days=MAX_HORIZON_DAYS):
        raise InvalidField(field_name, f"{due.isoformat()} is more than {MAX_HORIZON_DAYS // 365} years away.")


async def _linked_tasks(db: AsyncSession, campaign: Campaign, typed: str, field_name: str) -> list[Task]:
    """The tasks a "waits for" (`after`) or "before" field names: real, of this campaign, still in the plan."""
    try:
        ids = parse_task_refs(typed)
    except DomainError as error:
        raise InvalidField(field_name, str(error)) from None
    if len(ids) > MAX_LINKS:
        raise InvalidField(field_name, f"Name at most {MAX_LINKS} tasks here.")
    found = {task.id: task for task in await db.scalars(select(Task).where(Task.id.in_(ids)))} if ids else {}
    ref = format_ref(RefKind.CAMPAIGN, campaign.id)
    for task_id in ids:
        task = found.get(task_id)
        shown = format_ref(RefKind.TASK, task_id)
        if task is None:
            raise InvalidField(field_name, f"There is no task {shown}.")
        if task.campaign_id != campaign.id:
            raise InvalidField(field_name, f"{shown} belongs to {format_ref(RefKind.CAMPAIGN, task.campaign_id)}, "
                                           f"not {ref}; link tasks of the same campaign.")
        if task.status is TaskStatus.CANCELLED:
            raise InvalidField(field_name, f"{shown} is cancelled; it is no longer in the plan.")
        if field_name == "before" and task.status is TaskStatus.DONE:
            raise InvalidField(field_name, f"{shown} is already done; nothing new can come before it.")
    return [found[task_id] for task_id in ids]


async def _refuse_loops(db: AsyncSession, campaign: Campaign, after: list[Task], before: list[Task]) -> None:
    """A new task that waits for X and comes before Y closes a loop when Y already leads to X."""
    if not after or not before:
        return  # a loop through the new task needs a way in and a way out
    ids = list(await db.scalars(select(Task.id).where(Task.campaign_id == campaign.id)))
    index = {task_id: position for position, task_id in enumerate(ids)}
    new = len(ids)  # the new task's place in the graph
    dependencies = await db.scalars(select(TaskDependency).where(TaskDependency.successor_id.in_(ids)))
    links = [Link(index[d.predecessor_id], index[d.successor_id])
             for d in dependencies if d.predecessor_id in index]
    links += [Link(index[task.id], new) for task in after] + [Link(new, index[task.id]) for task in before]
    cycle = find_cycle(new + 1, links)
    if cycle is None:
        return
    start = cycle.index(new) if new in cycle else 0
    loop = cycle[start:] + cycle[:start]
    names = [("this task" if i == new else format_ref(RefKind.TASK, ids[i])) for i in [*loop, loop[0]]]
    raise InvalidField("before", f"That makes a loop: {' → '.join(names)} would each wait for the next. "
                                 "Remove a task from “waits for” or “before”.")


# ---------------------------------------------------------------- comments


async def add_comment(*, db: AsyncSession, task: Task, body: str, ctx: Context) -> Comment:
    """A note on a task from someone on the campaign's team, kept as typed (escaped when shown)."""
    await require_team(db, ctx.actor, task.campaign, "comment on its tasks")
    clean = body.replace("\x00", "").strip()
    if not clean:
        raise InvalidInput(f"Write the comment after the task: `/task comment {task_ref(task)} The copy is ready`.")
    if len(clean) > MAX_COMMENT:
        raise InvalidInput(f"A comment holds at most {MAX_COMMENT:,} characters; this one has {len(clean):,}. "
                           "Shorten it or split it in two.")
    comment = Comment(campaign_id=task.campaign_id, task_id=task.id, author_id=ctx.actor.member.id, body=clean)
    db.add(comment)
    await db.flush()
    _audit(db, ctx, task, "task.commented", comment_id=comment.id, length=len(clean))
    return comment


async def _take(db: AsyncSession, task: Task) -> Campaign:
    """Lock the task's campaign, then re-read the task: what the last writer left, now that nobody else can
    change it. Called first by every change, so they queue on the campaign and re-plan one at a time."""
    return await lock_with_tasks(db, task.campaign_id, [task])


def require_open(task: Task) -> None:
    if task.status in (TaskStatus.DONE, TaskStatus.CANCELLED):
        raise InvalidInput(f"{task_ref(task)} is {task.status.value}; it can't change any more.")


def _audit(db: AsyncSession, ctx: Context, task: Task, action: str, **details: object) -> None:
    audit.record(db=db, actor=ctx.actor.member.slack_user_id, action=action, entity_type="task",
                 entity_id=task.id, **details)


async def _replan(db: AsyncSession, task: Task, ctx: Context, reason: str) -> plans.PlanSummary | None:
    """Re-plan after a change, and write the owner's alert (if the plan crossed a line) in the same
    transaction: it goes out when the change commits, and never for a change that rolled back."""
    await db.flush()
    plan = await plans.replan(db=db, campaign=task.campaign, now=ctx.now, reason=reason, holidays=ctx.holidays)
    await plan_alerts.write(db=db, plan=plan, because=f"{reason} ({ctx.actor.member.name})", now=ctx.now)
    return plan


async def snooze(*, db: AsyncSession, task: Task, until: datetime, ctx: Context) -> None:
    """Hold the task's reminders until `until` (escalations to the owner still run: snoozing hides no lateness)."""
    await _take(db, task)
    authz.require_task_worker(ctx.actor, task, task.campaign, "snooze this task's reminders")
    require_open(task)
    if until <= ctx.now:
        raise InvalidInput("Snooze until a moment in the future.")
    task.snoozed_until = until
    _audit(db, ctx, task, "task.snoozed", until=until.isoformat())
