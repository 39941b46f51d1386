"""A campaign's plan: tasks from its template, scheduled back from the launch date, re-planned as work moves.

Time runs on one axis of working hours in the campaign owner's calendar, with 0 at the next working
moment after "now". The project buffer sits in front of the launch: every link into a final milestone
(or, for a final ordinary task, into a virtual launch point) carries the buffer as lag, so latest dates
leave the buffer free and any lateness of the work shows up as buffer consumed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import flag_modified, get_history

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
from services.approval_stages import SETTLED, CampaignStages, StageState, stages_of
from services.durations import HOURS_PER_DAY
from services.errors import InvalidInput
from services.held_rows import not_yet_held, note_held
from services.planning.calendar import WorkingCalendar
from services.planning.schedule import CycleError, Link, Schedule, compute_schedule
from services.planning.templates import Template

ALERT_LEVELS = (100, 50)
CLOSED = (TaskStatus.DONE, TaskStatus.CANCELLED)
# Told each re-plan's duration in seconds. bot/ wires the metrics in: services know no metrics library.
_replan_observers: list[Callable[[float], None]] = []


def observe_replans(observer: Callable[[float], None]) -> None:
    """Have `observer` told how long each re-plan took (once, however often it is wired)."""
    if observer not in _replan_observers:
        _replan_observers.append(observer)


@dataclass(frozen=True)
class PlanChange:
    """What one (re)plan changed, for the one line people read after it.

    `first`: a new plan, nothing to compare with (the `_before` values are then the plan's own; the
    critical work counts as new). `critical_known` is False for a change read back from the snapshots,
    which keep the launch and the buffer but not the critical path.
    """

    first: bool
    launch_before: date | None
    launch_after: date | None
    buffer_left_before: float
    buffer_left_after: float
    newly_critical: list[Task] = field(default_factory=list)
    critical_known: bool = True
    reason: str = ""
    at: datetime | None = None


@dataclass(frozen=True)
class SignoffGate:
    """A template sign-off stage as a node of the plan, between the task it reviews and the work that
    waits for it (see `_with_signoffs`).

    Not open yet (or rejected, so a new round is needed): it takes `allowed_hours` from when it can start.
    Open: it ends at its deadline, or now if the deadline has passed, so a late sign-off pushes the work
    after it out day by day, consuming buffer, like a late task. Passed or skipped: it waits for nothing.
    """

    after_task_id: int
    allowed_hours: float
    open_until: datetime | None = None  # open: its deadline
    is_open: bool = False
    settled: bool = False


@dataclass
class PlanSummary:
    """A campaign's plan as last computed, plus what the latest re-plan wants the owner to hear."""

    campaign: Campaign
    timeline: Timeline
    tasks: list[Task]
    alerts: list[str] = field(default_factory=list)
    change: PlanChange | None = None  # set by a (re)plan: what it moved
    # Lags (working hours, buffer excluded) of the links along the critical path, by (predecessor, successor).
    path_lags: dict[tuple[int, int], float] = field(default_factory=dict)
    opened_stages: tuple[str, ...] = ()  # sign-off stages the change opened: their requests go out after commit

    @property
    def critical_path(self) -> list[Task]:
        by_id = {task.id: task for task in self.tasks}
        return [by_id[task_id] for task_id in self.timeline.critical_path if task_id in by_id]

    @property
    def remaining_critical_path(self) -> list[Task]:
        return [task for task in self.critical_path if task.status not in CLOSED]

    @property
    def critical_days(self) -> float:
        """Working days the critical path still spans: its open tasks and the lags between them.

        Lags are waiting time the launch must allow for just as much as work, so a compressed plan is
        short by this span plus the buffer, less the working days left before launch (`compressed_days`,
        rounded up). The wait after a task already done is left out: part of it has passed.
        """
        path = self.remaining_critical_path
        lags = sum(self.path_lags.get((before.id, after.id), 0.0) for before, after in pairwise(path))
        return (sum(task.duration_hours for task in path) + lags) / HOURS_PER_DAY

    @property
    def compressed(self) -> bool:
        return self.timeline.compressed_days > 0

    @property
    def buffer_left_pct(self) -> float:
        return _buffer_left(self.timeline.buffer_consumed_pct)

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


def late_working_days(task: Task) -> int:
    """Whole working days by which the task's earliest finish misses its due date or what the launch
    needs of it, whichever is earlier (rounded up, as the plan's "days short"); 0 when it is in time."""
    if task.status in CLOSED or task.float_hours is None or task.float_hours >= -1e-6:
        return 0
    return math.ceil(-task.float_hours / HOURS_PER_DAY - 1e-9)


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
        approval_stages=_stage_specs(template), content_rules=template.content_snapshot(),
    )
    db.add(timeline)
    await db.flush()
    calendar = campaign_calendar(campaign.owner, holidays)
    gates = [SignoffGate(after_task_id=by_key[stage.after_task].id, allowed_hours=stage.allowed_hours)
             for stage in template.approvals if stage.after_task in by_key]
    plan = _schedule(campaign, timeline, tasks, dependencies, calendar, now, reason="planned", alert=False,
                     gates=gates)
    db.add(TimelineSnapshot(**_snapshot(plan, reason="planned", now=now)))
    return plan


def _stage_specs(template: Template) -> list[dict[str, object]]:
    """The template's stages as stored with the plan. They run in the template's order, except that
    stages reviewing the same task (legal and brand review of the content) run side by side."""
    orders: dict[str | None, int] = {}
    for stage in template.approvals:
        orders.setdefault(stage.after_task, len(orders) + 1)
    return [{"name": stage.name, "approver_role": stage.approver_role, "rule": stage.rule,
             "allowed_hours": stage.allowed_hours, "after_task": stage.after_task, "order": orders[stage.after_task]}
            for stage in template.approvals]


async def load_plan(*, db: AsyncSession, campaign: Campaign) -> PlanSummary | None:
    timeline = await db.scalar(select(Timeline).where(Timeline.campaign_id == campaign.id))
    if timeline is None:
        return None
    tasks = await db.scalars(select(Task).where(Task.campaign_id == campaign.id).order_by(Task.id))
    path = list(timeline.critical_path)
    dependencies: Iterable[TaskDependency] = (
        await db.scalars(select(TaskDependency).where(TaskDependency.successor_id.in_(path))) if path else ())
    return PlanSummary(campaign=campaign, timeline=timeline, tasks=list(tasks),
                       path_lags=_path_lags(path, dependencies))


async def last_change(*, db: AsyncSession, campaign: Campaign) -> PlanChange | None:
    """The latest re-plan against the plan before it, from the snapshots; None for a plan never re-planned."""
    latest, before = (list(await db.scalars(
        select(TimelineSnapshot).where(TimelineSnapshot.campaign_id == campaign.id)
        .order_by(TimelineSnapshot.at.desc(), TimelineSnapshot.id.desc()).limit(2)
    )) + [None, None])[:2]
    if latest is None or before is None:
        return None
    return PlanChange(first=False, launch_before=before.projected_launch, launch_after=latest.projected_launch,
                      buffer_left_before=_buffer_left(before.buffer_consumed_pct),
                      buffer_left_after=_buffer_left(latest.buffer_consumed_pct), critical_known=False,
                      reason=latest.reason, at=latest.at)


async def replan(
    *, db: AsyncSession, campaign: Campaign, now: datetime, reason: str, holidays: frozenset[date] = frozenset()
) -> PlanSummary | None:
    """Recompute the plan after a change; None for a campaign that has no plan (no template tasks).

    Writes in one order: the campaign's row, then its tasks by id (the flush sorts them by key). A caller
    that changed a task took the campaign's row before that change (`campaigns.lock_campaign`), so taking it
    here again costs nothing.
    """
    plans = await replan_many(db=db, campaigns=[campaign], now=now, reason=reason, holidays=holidays)
    return plans.get(campaign.id)


async def replan_many(
    *, db: AsyncSession, campaigns: Sequence[Campaign], now: datetime, reason: str,
    holidays: frozenset[date] = frozenset(),
) -> dict[int, PlanSummary]:
    """`replan` for several campaigns (owners loaded) in a fixed number of statements, however many there are.

    Returns the new plans by campaign id, in the order given; a campaign without a plan is left out.
    Takes every campaign's row first, all in one statement in ascending id order (the project's lock
    order), so a re-plan with no change before it (the daily one in the sweep) queues behind people's
    changes instead of deadlocking with them on the tasks. Then one read each for the timelines, the
    tasks, the links and the sign-off stages, and one flush that writes each table in one statement.
    """
    ids = [campaign.id for campaign in campaigns]
    if not ids:
        return {}
    started = time.perf_counter()
    try:
        return await _replan_held(db, campaigns, ids, now=now, reason=reason, holidays=holidays)
    finally:
        for observe in _replan_observers:
            observe(time.perf_counter() - started)


async def _replan_held(
    db: AsyncSession, campaigns: Sequence[Campaign], ids: list[int], *, now: datetime, reason: str,
    holidays: frozenset[date],
) -> dict[int, PlanSummary]:
    await _hold(db, ids)
    timelines = {timeline.campaign_id: timeline
                 for timeline in await db.scalars(select(Timeline).where(Timeline.campaign_id.in_(ids)))}
    planned = [campaign for campaign in campaigns if campaign.id in timelines]
    if not planned:
        return {}
    planned_ids = [campaign.id for campaign in planned]
    tasks: dict[int, list[Task]] = {campaign_id: [] for campaign_id in planned_ids}
    for task in await db.scalars(select(Task).where(Task.campaign_id.in_(planned_ids)).order_by(Task.id)):
        tasks[task.campaign_id].append(task)
    dependencies = await _dependencies_by_campaign(db, planned_ids)
    stages = await stages_of(db, planned_ids, tasks=tasks,
                             stored={campaign_id: timelines[campaign_id].approval_stages for campaign_id in planned_ids})
    plans = {
        campaign.id: _schedule(campaign, timelines[campaign.id], tasks[campaign.id], dependencies[campaign.id],
                               campaign_calendar(campaign.owner, holidays), now, reason=reason, alert=True,
                               gates=_gates(stages[campaign.id], tasks[campaign.id]))
        for campaign in planned
    }
    await _write(db, list(plans.values()), reason=reason, now=now)
    return plans


async def _hold(db: AsyncSession, campaign_ids: Sequence[int]) -> None:
    """The campaigns' rows, locked until the transaction ends (PostgreSQL; SQLite's BEGIN IMMEDIATE already
    lets one writer in). Only the lock: `campaigns.lock_campaign` also reloads it, and imports this module.
    A change that locked its campaign before changing it is not asked again (`held_rows`)."""
    wanted = not_yet_held(db, campaign_ids)
    if wanted:
        await db.execute(select(Campaign.id).where(Campaign.id.in_(wanted)).order_by(Campaign.id).with_for_update())
        note_held(db, wanted)


async def _dependencies_by_campaign(db: AsyncSession, campaign_ids: Sequence[int]) -> dict[int, list[TaskDependency]]:
    """The links into each campaign's tasks (a link never crosses campaigns), in one query."""
    found: dict[int, list[TaskDependency]] = {campaign_id: [] for campaign_id in campaign_ids}
    rows = await db.execute(
        select(TaskDependency, Task.campaign_id).join(Task, Task.id == TaskDependency.successor_id)
        .where(Task.campaign_id.in_(campaign_ids))
        .order_by(TaskDependency.successor_id, TaskDependency.predecessor_id)
    )
    for dependency, campaign_id in rows:
        found[campaign_id].append(dependency)
    return found


def _gates(stages: CampaignStages, tasks: Sequence[Task]) -> list[SignoffGate]:
    """The campaign's template sign-offs as they stand, for the planner."""
    by_key = {task.template_key: task.id for task in tasks if task.template_key}
    gates = []
    for spec in stages.template:
        if spec.after_task not in by_key:
            continue
        state = stages.states[spec.name].state
        deadline = next((row.deadline for row in stages.rows if row.stage == spec.name), None)
        gates.append(SignoffGate(after_task_id=by_key[spec.after_task], allowed_hours=spec.allowed_hours,
                                 open_until=deadline, is_open=state is StageState.OPEN,
                                 settled=state in SETTLED))
    return gates


# What a (re)plan sets. A row whose plan moved gets all of its table's columns written, even those that
# kept their value: the unit of work batches rows that set the same columns into one executemany, so a
# batch of plans is one UPDATE per table instead of one per row and combination of changed columns.
_PLANNED_TASK_COLUMNS = ("earliest_start_at", "earliest_finish_at", "due_at", "start_at", "float_hours",
                         "on_critical_path")
_PLANNED_TIMELINE_COLUMNS = ("critical_path", "milestones", "compressed_days", "buffer_consumed_pct",
                             "projected_launch", "progress_pct", "computed_at", "alert_level")


async def _write(db: AsyncSession, plans: Sequence[PlanSummary], *, reason: str, now: datetime) -> None:
    """Write the plans: the tasks, the timelines and the snapshots, each in one statement.

    Rows whose plan did not move are not written (their `updated_at` stays), as a plain flush would do.
    The snapshots go in as one bulk insert: the unit of work would insert them one by one on SQLite,
    where it cannot match generated ids to rows in a multi-row insert, and nothing reads their ids.
    """
    for plan in plans:
        _write_whole_if_moved(plan.timeline, _PLANNED_TIMELINE_COLUMNS)
        for task in plan.tasks:
            _write_whole_if_moved(task, _PLANNED_TASK_COLUMNS)
    await db.flush()
    await db.execute(insert(TimelineSnapshot).execution_options(render_nulls=True),
                     [_snapshot(plan, reason=reason, now=now) for plan in plans])


def _write_whole_if_moved(row: Task | Timeline, columns: Sequence[str]) -> None:
    if any(get_history(row, column).has_changes() for column in columns):
        for column in columns:
            flag_modified(row, column)


def _schedule(
    campaign: Campaign,
    timeline: Timeline,
    tasks: list[Task],
    dependencies: Sequence[TaskDependency],
    calendar: WorkingCalendar,
    now: datetime,
    *,
    reason: str,
    alert: bool,
    gates: Sequence[SignoffGate] = (),
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
    links = _with_signoffs(gates, index, dependencies, links, durations, min_start, calendar, origin)
    try:
        schedule = compute_schedule(durations, links, deadline=deadline, min_start=min_start)
    except CycleError as error:  # templates are checked on load; this guards edits made later
        names = " → ".join(active[i].title for i in error.cycle if i < len(active))
        raise InvalidInput(f"These tasks wait on each other in a circle: {names}.") from None

    before = _before(timeline, active)
    work_finish = schedule.project_finish - buffer
    projected = _projected_launch(campaign, calendar, origin, work_finish, deadline)
    projected_moment = datetime.combine(projected, calendar.day_start, tzinfo=ZoneInfo(calendar.timezone))
    fixed = {i: calendar.working_hours_between(origin, task.due_at) for i, task in enumerate(active)
             if task.due_fixed and task.due_at is not None and task.status is not TaskStatus.DONE}
    finish = _planned_finishes(len(active), schedule, durations, links, fixed)
    critical = {i for i in schedule.critical_path if i < len(active)}
    for i, task in enumerate(active):
        if task.status is TaskStatus.DONE:
            task.on_critical_path = False
            continue
        task.earliest_start_at = calendar.next_working_moment(calendar.add_working_hours(origin, schedule.earliest_start[i]))
        task.earliest_finish_at = calendar.add_working_hours(origin, schedule.earliest_finish[i])
        if task.is_milestone and not task.due_fixed and abs(schedule.latest_finish[i] - deadline) < 1e-9:
            # The launch itself: on the (projected) launch day, not the eve, and never before the work it closes.
            task.due_at = task.start_at = projected_moment.astimezone(UTC)
            task.float_hours = round(schedule.total_float[i], 2)
        else:
            if not task.due_fixed:
                task.due_at = calendar.add_working_hours(origin, finish[i])
            task.start_at = calendar.next_working_moment(calendar.add_working_hours(origin, finish[i] - durations[i]))
            # Negative: how late it runs, against the launch or against its own due date if that is earlier.
            task.float_hours = round(min(schedule.total_float[i], finish[i] - schedule.earliest_finish[i]), 2)
        task.on_critical_path = i in critical

    open_floats = [schedule.total_float[i] for i, task in enumerate(active) if task.status is not TaskStatus.DONE]
    min_float = min(open_floats, default=0.0)
    consumed_hours = max(0.0, schedule.project_finish - deadline)
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
    return PlanSummary(campaign=campaign, timeline=timeline, tasks=active, alerts=alerts,
                       change=_change(before, timeline, active, reason=reason[:200], at=now),
                       path_lags=_path_lags(timeline.critical_path, dependencies))


def _snapshot(plan: PlanSummary, *, reason: str, now: datetime) -> dict[str, object]:
    """The plan's point on the buffer fever chart, as a `TimelineSnapshot` row."""
    timeline = plan.timeline
    return {"campaign_id": plan.campaign.id, "at": now, "reason": reason[:200],
            "projected_launch": timeline.projected_launch, "buffer_consumed_pct": timeline.buffer_consumed_pct,
            "progress_pct": timeline.progress_pct}


def _planned_finishes(
    count: int, schedule: Schedule, durations: Sequence[float], links: Sequence[Link], fixed: dict[int, float]
) -> list[float]:
    """When each of the first `count` tasks is due, in working hours from the origin.

    The latest finish that still meets the launch or, where that is out of reach (a compressed plan: it
    would lie in the past, or before the task can possibly finish), the earliest possible finish. Both
    grow along every link, so their maximum does too: nothing is due before what it waits for, and
    nothing is due before it can be done, so reminders never fire for dates nobody could meet.
    A date a person set stands, and holds the work before it: what it waits for is due in time for it,
    even where that is earlier than possible (that task then shows late: see `late_working_days`).
    """
    finish = [fixed.get(i, max(schedule.earliest_finish[i], schedule.latest_finish[i])) for i in range(count)]
    outgoing: dict[int, list[Link]] = {}
    for link in links:
        if link.successor < count:  # not into a virtual point
            outgoing.setdefault(link.predecessor, []).append(link)
    held = set(fixed)  # tasks whose date binds the tasks before them
    for task in reversed(schedule.order):  # successors first
        if task >= count or task in fixed:
            continue
        for link in outgoing.get(task, ()):
            if link.successor in held:
                bound = finish[link.successor] - durations[link.successor] - link.lag
                if bound < finish[task]:
                    finish[task] = bound
                    held.add(task)
    return finish


def _projected_launch(
    campaign: Campaign, calendar: WorkingCalendar, origin: datetime, work_finish: float, deadline: float
) -> date:
    if work_finish <= deadline:
        return campaign.launch_date
    # The launch happens at the start of a day, so work ending on day D launches the next working day.
    slipped = calendar.add_working_hours(origin, work_finish).astimezone(ZoneInfo(calendar.timezone)).date()
    return max(campaign.launch_date, _next_working_day(calendar, slipped + timedelta(days=1)))


def _path_lags(path: Sequence[int], dependencies: Iterable[TaskDependency]) -> dict[tuple[int, int], float]:
    pairs = set(pairwise(path))
    return {(d.predecessor_id, d.successor_id): d.lag_hours for d in dependencies
            if (d.predecessor_id, d.successor_id) in pairs}


@dataclass(frozen=True)
class _Before:
    """The plan as it stood before a (re)plan, read before `_schedule` overwrites it."""

    first: bool
    launch: date | None
    buffer_left: float
    critical: frozenset[int]


def _before(timeline: Timeline, tasks: Sequence[Task]) -> _Before:
    return _Before(first=timeline.computed_at is None, launch=timeline.projected_launch,
                   buffer_left=_buffer_left(timeline.buffer_consumed_pct),
                   critical=frozenset(task.id for task in tasks if task.on_critical_path))


def _change(before: _Before, timeline: Timeline, tasks: Sequence[Task], *, reason: str, at: datetime) -> PlanChange:
    after_left = _buffer_left(timeline.buffer_consumed_pct)
    # Milestones are left out: the launch is always critical, and a moment is not work to watch.
    by_id = {task.id: task for task in tasks}
    critical = [by_id[i] for i in timeline.critical_path
                if i in by_id and by_id[i].on_critical_path and not by_id[i].is_milestone]  # in path order
    if before.first:
        return PlanChange(first=True, launch_before=timeline.projected_launch, launch_after=timeline.projected_launch,
                          buffer_left_before=after_left, buffer_left_after=after_left, newly_critical=critical,
                          reason=reason, at=at)
    newly = [task for task in critical if task.id not in before.critical]
    return PlanChange(first=False, launch_before=before.launch, launch_after=timeline.projected_launch,
                      buffer_left_before=before.buffer_left, buffer_left_after=after_left,
                      newly_critical=newly, reason=reason, at=at)


def _buffer_left(consumed_pct: float) -> float:
    return max(0.0, 100.0 - consumed_pct)


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


def _with_signoffs(
    gates: Sequence[SignoffGate], index: dict[int, int], dependencies: Sequence[TaskDependency], links: list[Link],
    durations: list[float], min_start: list[float], calendar: WorkingCalendar, origin: datetime,
) -> list[Link]:
    """Put each sign-off between its task and the work that waits for it; appends the gates' nodes.

    A template carries a sign-off's time as the lag on the links out of the task it reviews (content
    ready, then a 2-day lag before the press outreach). Those links now run through the sign-off nodes,
    with only the part of the lag beyond the longest sign-off left on them, so the plan is the same while
    nothing is decided and the work moves with the real sign-off once it opens, passes or runs late.
    Links without a lag do not wait for a sign-off.
    """
    nodes: dict[int, list[int]] = {}
    allowed: dict[int, float] = {}
    for gate in gates:
        task = index.get(gate.after_task_id)
        if task is None:  # the task was cancelled: nothing waits on its review
            continue
        nodes.setdefault(task, []).append(len(durations))
        allowed[task] = max(allowed.get(task, 0.0), gate.allowed_hours)
        if gate.settled:
            durations.append(0.0)
            min_start.append(min_start[task])  # no later than the task itself allows
        elif gate.is_open:
            ends = calendar.working_hours_between(origin, gate.open_until) if gate.open_until else 0.0
            durations.append(0.0)
            min_start.append(max(0.0, ends))
        else:
            durations.append(gate.allowed_hours)
            min_start.append(0.0)
    if not nodes:
        return links
    lags = {(index[d.predecessor_id], index[d.successor_id]): d.lag_hours for d in dependencies
            if d.predecessor_id in index and d.successor_id in index}
    rewired = [Link(task, node, 0.0) for task, task_nodes in nodes.items() for node in task_nodes]
    for link in links:
        lag = lags.get((link.predecessor, link.successor), 0.0)
        if link.predecessor not in nodes or lag <= 0:
            rewired.append(link)
            continue
        buffer = link.lag - lag  # on a link into the launch
        rest = max(0.0, lag - allowed[link.predecessor]) + buffer
        rewired += [Link(node, link.successor, rest) for node in nodes[link.predecessor]]
    return rewired


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
