"""A campaign's plan: tasks from its template, scheduled back from the launch date, re-planned as work moves.

Time runs on one axis of working hours in the campaign owner's calendar, with 0 at the next working
moment after "now". The project buffer sits in front of the launch: every link into a final milestone
(or, for a final ordinary task, into a virtual launch point) carries the buffer as lag, so latest dates
leave the buffer free and any lateness of the work shows up as buffer consumed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Campaign,
    Priority,
    Task,
    TaskDependency,
    TaskStatus,
    TeamMember,
    Timeline,
    TimelineSnapshot,
)
from services.errors import InvalidInput
from services.planning.calendar import WorkingCalendar
from services.planning.schedule import CycleError, Link, compute_schedule
from services.planning.templates import Template

ALERT_LEVELS = (100, 50)
HOURS_PER_DAY = 8.0  # the campaign calendar's 09:00-17:00
CLOSED = (TaskStatus.DONE, TaskStatus.CANCELLED)


@dataclass
class PlanSummary:
    """A campaign's plan as last computed, plus what the latest re-plan wants the owner to hear."""

    campaign: Campaign
    timeline: Timeline
    tasks: list[Task]
    alerts: list[str] = field(default_factory=list)

    @property
    def critical_path(self) -> list[Task]:
        by_id = {task.id: task for task in self.tasks}
        return [by_id[task_id] for task_id in self.timeline.critical_path if task_id in by_id]

    @property
    def remaining_critical_path(self) -> list[Task]:
        return [task for task in self.critical_path if task.status not in CLOSED]

    @property
    def critical_days(self) -> float:
        """Working days of work still ahead on the critical path."""
        return sum(task.duration_hours for task in self.remaining_critical_path) / HOURS_PER_DAY

    @property
    def compressed(self) -> bool:
        return self.timeline.compressed_days > 0

    @property
    def buffer_left_pct(self) -> float:
        return max(0.0, 100.0 - self.timeline.buffer_consumed_pct)

    @property
    def risk(self) -> str:
        """`late` (the launch moves), `at risk` (half the buffer gone or no room to spare), `on track`."""
        timeline = self.timeline
        if timeline.projected_launch is not None and timeline.projected_launch > self.campaign.launch_date:
            return "late"
        if timeline.buffer_consumed_pct >= 50 or self.compressed:
            return "at risk"
        return "on track"

    @property
    def milestones(self) -> list[Task]:
        return [task for task in self.tasks if task.is_milestone]

    @property
    def culprits(self) -> list[Task]:
        """The longest open critical tasks: where to look to make a compressed plan fit."""
        open_tasks = [task for task in self.remaining_critical_path if not task.is_milestone]
        return sorted(open_tasks, key=lambda task: -task.duration_hours)[:3]


def campaign_calendar(owner: TeamMember, holidays: frozenset[date] = frozenset()) -> WorkingCalendar:
    """Weekdays 09:00-17:00 in the owner's time zone, minus team holidays."""
    return WorkingCalendar(timezone=owner.timezone, holidays=holidays)


async def create_plan(
    *, db: AsyncSession, campaign: Campaign, template: Template, now: datetime, holidays: frozenset[date] = frozenset()
) -> PlanSummary:
    """Create the template's tasks and links for a new campaign, then schedule them."""
    tasks = [
        Task(
            campaign_id=campaign.id, title=spec.title, description=spec.description, template_key=spec.key,
            required_skill=spec.skill, duration_hours=spec.duration_hours, is_milestone=spec.milestone,
            priority=Priority.HIGH if spec.milestone else Priority.NORMAL,
        )
        for spec in template.tasks
    ]
    db.add_all(tasks)
    await db.flush()
    by_key = {task.template_key: task for task in tasks}
    dependencies = [
        TaskDependency(predecessor_id=by_key[link.task].id, successor_id=by_key[spec.key].id, lag_hours=link.lag_hours)
        for spec in template.tasks
        for link in spec.after
    ]
    db.add_all(dependencies)
    timeline = Timeline(
        campaign_id=campaign.id, template=template.name, buffer_hours=template.buffer_hours,
        approval_stages=[
            {"name": stage.name, "approver_role": stage.approver_role, "rule": stage.rule,
             "allowed_hours": stage.allowed_hours, "after_task": stage.after_task, "order": order}
            for order, stage in enumerate(template.approvals, start=1)
        ],
    )
    db.add(timeline)
    await db.flush()
    calendar = campaign_calendar(campaign.owner, holidays)
    return _schedule(db, campaign, timeline, tasks, dependencies, calendar, now, reason="planned", alert=False)


async def load_plan(*, db: AsyncSession, campaign: Campaign) -> PlanSummary | None:
    timeline = await db.scalar(select(Timeline).where(Timeline.campaign_id == campaign.id))
    if timeline is None:
        return None
    tasks = await db.scalars(select(Task).where(Task.campaign_id == campaign.id).order_by(Task.id))
    return PlanSummary(campaign=campaign, timeline=timeline, tasks=list(tasks))


async def replan(
    *, db: AsyncSession, campaign: Campaign, now: datetime, reason: str, holidays: frozenset[date] = frozenset()
) -> PlanSummary | None:
    """Recompute the plan after a change; None for a campaign that has no plan (no template tasks)."""
    timeline = await db.scalar(select(Timeline).where(Timeline.campaign_id == campaign.id))
    if timeline is None:
        return None
    tasks = list(await db.scalars(select(Task).where(Task.campaign_id == campaign.id).order_by(Task.id)))
    ids = [task.id for task in tasks]
    dependencies = list(await db.scalars(select(TaskDependency).where(TaskDependency.successor_id.in_(ids))))
    calendar = campaign_calendar(campaign.owner, holidays)
    return _schedule(db, campaign, timeline, tasks, dependencies, calendar, now, reason=reason, alert=True)


def _schedule(
    db: AsyncSession,
    campaign: Campaign,
    timeline: Timeline,
    tasks: list[Task],
    dependencies: Sequence[TaskDependency],
    calendar: WorkingCalendar,
    now: datetime,
    *,
    reason: str,
    alert: bool,
) -> PlanSummary:
    active = [task for task in tasks if task.status is not TaskStatus.CANCELLED]
    index = {task.id: position for position, task in enumerate(active)}
    origin = calendar.next_working_moment(now)
    launch_moment = datetime.combine(campaign.launch_date, calendar.day_start, tzinfo=ZoneInfo(calendar.timezone))
    deadline = calendar.working_hours_between(origin, launch_moment)
    buffer = timeline.buffer_hours

    durations = [0.0 if task.status is TaskStatus.DONE else task.duration_hours for task in active]
    min_start = [_earliest_allowed(task, calendar, origin) for task in active]
    links, virtual_launch = _links_with_buffer(active, index, dependencies, buffer)
    if virtual_launch:
        durations.append(0.0)
        min_start.append(0.0)
    try:
        schedule = compute_schedule(durations, links, deadline=deadline, min_start=min_start)
    except CycleError as error:  # templates are checked on load; this guards edits made later
        names = " → ".join(active[i].title for i in error.cycle if i < len(active))
        raise InvalidInput(f"These tasks wait on each other in a circle: {names}.") from None

    critical = {i for i in schedule.critical_path if i < len(active)}
    for i, task in enumerate(active):
        if task.status is TaskStatus.DONE:
            task.on_critical_path = False
            continue
        task.earliest_start_at = calendar.next_working_moment(calendar.add_working_hours(origin, schedule.earliest_start[i]))
        task.earliest_finish_at = calendar.add_working_hours(origin, schedule.earliest_finish[i])
        # Planned dates are the latest that still meet the launch; where those already lie in the past
        # (a compressed plan) nobody can act on them, so the earliest possible dates stand instead.
        in_time = schedule.latest_start[i] >= 0
        planned_start = schedule.latest_start[i] if in_time else schedule.earliest_start[i]
        planned_finish = schedule.latest_finish[i] if in_time else schedule.earliest_finish[i]
        task.start_at = calendar.next_working_moment(calendar.add_working_hours(origin, planned_start))
        if task.is_milestone and not task.due_fixed and abs(schedule.latest_finish[i] - deadline) < 1e-9:
            task.due_at = launch_moment.astimezone(UTC)  # the launch itself: on launch day, not the eve
        elif not task.due_fixed:
            task.due_at = calendar.add_working_hours(origin, planned_finish)
        task.float_hours = round(schedule.total_float[i], 2)
        task.on_critical_path = i in critical

    open_floats = [schedule.total_float[i] for i, task in enumerate(active) if task.status is not TaskStatus.DONE]
    min_float = min(open_floats, default=0.0)
    consumed_hours = max(0.0, schedule.project_finish - deadline)
    work_finish = schedule.project_finish - buffer
    if work_finish > deadline:
        # The launch happens at the start of a day, so work ending on day D launches the next working day.
        slipped = calendar.add_working_hours(origin, work_finish).astimezone(ZoneInfo(calendar.timezone)).date()
        projected = max(campaign.launch_date, _next_working_day(calendar, slipped + timedelta(days=1)))
    else:
        projected = campaign.launch_date
    previous_projection = timeline.projected_launch
    timeline.critical_path = [active[i].id for i in schedule.critical_path if i < len(active)]
    timeline.milestones = [
        {"task_id": task.id, "name": task.title, "due": task.due_at.isoformat() if task.due_at else None}
        for task in active if task.is_milestone
    ]
    timeline.compressed_days = math.ceil(-min_float / calendar.hours_per_day - 1e-9) if min_float < -1e-6 else 0
    timeline.buffer_consumed_pct = round(consumed_hours / buffer * 100, 1) if buffer > 0 else (100.0 if consumed_hours else 0.0)
    timeline.projected_launch = projected
    total_hours = sum(task.duration_hours for task in active) or 1.0
    timeline.progress_pct = round(sum(t.duration_hours for t in active if t.status is TaskStatus.DONE) / total_hours * 100, 1)
    timeline.computed_at = now
    alerts = _alerts(campaign, timeline, previous_projection) if alert else []
    timeline.alert_level = next((level for level in ALERT_LEVELS if timeline.buffer_consumed_pct >= level), 0)
    db.add(TimelineSnapshot(campaign_id=campaign.id, at=now, reason=reason[:200], projected_launch=projected,
                            buffer_consumed_pct=timeline.buffer_consumed_pct, progress_pct=timeline.progress_pct))
    return PlanSummary(campaign=campaign, timeline=timeline, tasks=active, alerts=alerts)


def _earliest_allowed(task: Task, calendar: WorkingCalendar, origin: datetime) -> float:
    """Done: fixed at its finish (in the past). A person-set due date: planned to finish then. Else now."""
    if task.status is TaskStatus.DONE and task.completed_at is not None:
        return calendar.working_hours_between(origin, task.completed_at)
    if task.due_fixed and task.due_at is not None:
        return max(0.0, calendar.working_hours_between(origin, task.due_at) - task.duration_hours)
    return 0.0


def _links_with_buffer(
    tasks: list[Task], index: dict[int, int], dependencies: Sequence[TaskDependency], buffer: float
) -> tuple[list[Link], bool]:
    """The task links, with the buffer as lag in front of the launch (see the module docstring).

    Returns the links and whether they end in a virtual launch point (id `len(tasks)`).
    """
    has_successor = {dependency.predecessor_id for dependency in dependencies if dependency.successor_id in index}
    final_milestones = {t.id for t in tasks if t.is_milestone and t.id not in has_successor}
    links = [
        Link(index[d.predecessor_id], index[d.successor_id],
             d.lag_hours + (buffer if d.successor_id in final_milestones else 0.0))
        for d in dependencies
        if d.predecessor_id in index and d.successor_id in index
    ]
    final_tasks = [t for t in tasks if t.id not in has_successor and t.id not in final_milestones]
    virtual_launch = len(tasks)
    links += [Link(index[task.id], virtual_launch, buffer) for task in final_tasks]
    return links, bool(final_tasks)


def _next_working_day(calendar: WorkingCalendar, day: date) -> date:
    while not calendar.is_working_day(day):
        day += timedelta(days=1)
    return day


def _alerts(campaign: Campaign, timeline: Timeline, previous_projection: date | None) -> list[str]:
    alerts = []
    slipped = timeline.projected_launch is not None and timeline.projected_launch > campaign.launch_date
    was_slipping = previous_projection is not None and previous_projection > campaign.launch_date
    if slipped and (not was_slipping or timeline.projected_launch != previous_projection):
        alerts.append(f"The launch is now projected for {timeline.projected_launch:%a %d %b %Y}, "
                      f"after the target {campaign.launch_date:%a %d %b %Y}.")
    level = next((level for level in ALERT_LEVELS if timeline.buffer_consumed_pct >= level), 0)
    if level > timeline.alert_level:
        alerts.append(f"{timeline.buffer_consumed_pct:.0f}% of the buffer is used up (crossed {level}%).")
    return alerts
