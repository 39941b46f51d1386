"""A campaign's plan as the dashboard timeline draws it: one bar per task, the links between them, the
milestones, the critical path, what runs late, and the buffer fever chart from the plan history.

Everything comes from what the planner already stored (`services.plans`): the tasks' planned dates and
critical flags, the timeline's buffer and progress, and one `TimelineSnapshot` per (re)plan for the
chart's trail. Four queries whatever the size of the plan: the campaign with its owner and timeline, the
tasks with their assignees' names, the links, the snapshots.

The fever chart plots buffer consumed against work done. Its bands slope upwards: using a fifth of the
buffer before any work is done is a worse sign than using it all when the work is nearly finished, which
is why a flat "half the buffer gone" line (the owner's alert) is not enough for a picture of the trend.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from models import (
    Campaign,
    CampaignStatus,
    Task,
    TaskDependency,
    TaskStatus,
    TeamMember,
    Timeline,
    TimelineSnapshot,
)
from services.durations import HOURS_PER_DAY
from services.errors import NotFound
from services.plans import campaign_calendar
from services.refs import RefKind, format_ref

CLOSED = (TaskStatus.DONE, TaskStatus.CANCELLED)
FEVER_HISTORY = 1000  # the latest snapshots drawn; a daily re-plan over three years stays inside it
# A task may finish this much after its due moment before it counts as projected late: the planner rounds
# to working hours, and a launch milestone is due at the start of the day its work finished the eve of.
LATE_TOLERANCE = timedelta(minutes=1)

# The fever chart's bands, as buffer consumed (%) at 0% and at 100% of the work done; straight between.
AMBER_FROM = (15.0, 75.0)
RED_FROM = (30.0, 100.0)


class Zone(enum.StrEnum):
    GREEN = "green"
    AMBER = "amber"
    RED = "red"


def band_limit(line: tuple[float, float], work_done_pct: float) -> float:
    """The buffer consumed (%) where a band starts, at `work_done_pct` of the work done."""
    at_start, at_end = line
    done = min(100.0, max(0.0, work_done_pct))
    return at_start + (at_end - at_start) * done / 100.0


def fever_zone(work_done_pct: float, buffer_consumed_pct: float) -> Zone:
    if buffer_consumed_pct >= band_limit(RED_FROM, work_done_pct):
        return Zone.RED
    if buffer_consumed_pct >= band_limit(AMBER_FROM, work_done_pct):
        return Zone.AMBER
    return Zone.GREEN


@dataclass(frozen=True)
class Bar:
    """One task on the chart. A milestone's `start` equals its `end` (the moment it marks)."""

    task_id: int
    ref: str
    title: str
    start: datetime
    end: datetime  # open work: when it is due; done work: when it was finished
    status: TaskStatus
    assignee: str | None
    critical: bool
    milestone: bool
    late: bool  # open and past due, or projected to finish after its due moment or after what the launch needs
    projected_end: datetime | None = None  # open work projected to finish after `end`: by then

    @property
    def done(self) -> bool:
        return self.status is TaskStatus.DONE


@dataclass(frozen=True)
class FeverPoint:
    at: datetime | None
    work_done_pct: float
    buffer_consumed_pct: float
    reason: str = ""

    @property
    def zone(self) -> Zone:
        return fever_zone(self.work_done_pct, self.buffer_consumed_pct)


@dataclass(frozen=True)
class TimelineView:
    campaign_id: int
    ref: str
    name: str
    status: CampaignStatus
    owner: str
    owner_timezone: str
    launch_date: date
    projected_launch: date | None
    launch_at: datetime  # the launch day's first working moment in the owner's calendar, as the planner has it
    projected_launch_at: datetime | None
    buffer_hours: float
    buffer_consumed_pct: float
    work_done_pct: float
    now: datetime
    bars: list[Bar]  # in plan order: by start, a milestone after the work ending with it
    dependencies: list[tuple[int, int]]  # (predecessor, successor) task ids, both among `bars`
    fever: list[FeverPoint]  # the plan's history, oldest first
    current: FeverPoint | None  # the plan as it stands; None for a campaign without a plan
    unscheduled: list[tuple[str, str]]  # (ref, title) of open tasks the plan gave no dates

    @property
    def planned(self) -> bool:
        return self.current is not None

    @property
    def slipping(self) -> bool:
        return self.projected_launch is not None and self.projected_launch > self.launch_date

    @property
    def critical_count(self) -> int:
        return sum(1 for bar in self.bars if bar.critical)

    @property
    def late_count(self) -> int:
        return sum(1 for bar in self.bars if bar.late)

    @property
    def buffer_days(self) -> float:
        return self.buffer_hours / HOURS_PER_DAY

    @property
    def buffer_left_pct(self) -> float:
        return max(0.0, 100.0 - self.buffer_consumed_pct)


async def campaign_timeline(*, db: AsyncSession, campaign_id: int, now: datetime) -> TimelineView:
    """The campaign's timeline as of `now` (aware); `NotFound` for a campaign that does not exist."""
    row = (await db.execute(
        select(Campaign, Timeline).outerjoin(Timeline, Timeline.campaign_id == Campaign.id)
        .where(Campaign.id == campaign_id).options(joinedload(Campaign.owner))
    )).first()
    if row is None:
        raise NotFound(f"There is no campaign {format_ref(RefKind.CAMPAIGN, campaign_id)}.")
    campaign, timeline = row
    day_start = campaign_calendar(campaign.owner).day_start
    zone = ZoneInfo(campaign.owner.timezone)
    projected_launch = timeline.projected_launch if timeline is not None else None
    task_rows = (await db.execute(
        select(Task, TeamMember.name).outerjoin(TeamMember, TeamMember.id == Task.assignee_id)
        .where(Task.campaign_id == campaign_id, Task.status != TaskStatus.CANCELLED)
    )).all()
    bars, unscheduled = [], []
    for task, assignee in task_rows:
        bar = _bar(task, assignee, now)
        if bar is not None:
            bars.append(bar)
        elif task.status not in CLOSED:
            unscheduled.append((format_ref(RefKind.TASK, task.id), task.title))
    bars.sort(key=lambda bar: (bar.start, bar.end, bar.milestone, bar.task_id))
    shown = {bar.task_id for bar in bars}
    links = (await db.execute(
        select(TaskDependency.predecessor_id, TaskDependency.successor_id)
        .join(Task, Task.id == TaskDependency.successor_id).where(Task.campaign_id == campaign_id)
        .order_by(TaskDependency.successor_id, TaskDependency.predecessor_id)
    )).all()
    snapshots = (await db.execute(
        select(TimelineSnapshot.at, TimelineSnapshot.progress_pct, TimelineSnapshot.buffer_consumed_pct,
               TimelineSnapshot.reason)
        .where(TimelineSnapshot.campaign_id == campaign_id)
        .order_by(TimelineSnapshot.at.desc(), TimelineSnapshot.id.desc()).limit(FEVER_HISTORY)
    )).all()
    fever = [FeverPoint(at=at, work_done_pct=done, buffer_consumed_pct=consumed, reason=reason)
             for at, done, consumed, reason in reversed(snapshots)]
    current = (FeverPoint(at=timeline.computed_at, work_done_pct=timeline.progress_pct,
                          buffer_consumed_pct=timeline.buffer_consumed_pct, reason="now")
               if timeline is not None else None)
    return TimelineView(
        campaign_id=campaign.id, ref=format_ref(RefKind.CAMPAIGN, campaign.id), name=campaign.name,
        status=campaign.status, owner=campaign.owner.name, owner_timezone=campaign.owner.timezone,
        launch_date=campaign.launch_date, projected_launch=projected_launch,
        launch_at=datetime.combine(campaign.launch_date, day_start, tzinfo=zone),
        projected_launch_at=(datetime.combine(projected_launch, day_start, tzinfo=zone)
                             if projected_launch is not None else None),
        buffer_hours=timeline.buffer_hours if timeline is not None else 0.0,
        buffer_consumed_pct=timeline.buffer_consumed_pct if timeline is not None else 0.0,
        work_done_pct=timeline.progress_pct if timeline is not None else 0.0,
        now=now, bars=bars,
        dependencies=[(before, after) for before, after in links if before in shown and after in shown],
        fever=fever, current=current, unscheduled=unscheduled,
    )


def _bar(task: Task, assignee: str | None, now: datetime) -> Bar | None:
    """The task's bar, or None for one the plan has not dated."""
    due = task.due_at
    if task.status is TaskStatus.DONE:
        end = task.completed_at or due
        if end is None:
            return None
        start = min(task.start_at or end, end)
    else:
        if due is None:
            return None
        end = due
        start = min(task.start_at or due, due)
    if task.is_milestone:
        start = end
    is_open = task.status not in CLOSED
    projected = task.earliest_finish_at if is_open else None
    slips = projected is not None and projected > end + LATE_TOLERANCE
    # Negative float: it runs later than its own due date or than the launch needs, even where the
    # planner had to move the due date itself out to what is possible (a plan too short for its work).
    behind = task.float_hours is not None and task.float_hours < -1e-6
    late = is_open and (end < now or slips or behind)
    return Bar(
        task_id=task.id, ref=format_ref(RefKind.TASK, task.id), title=task.title, start=start, end=end,
        status=task.status, assignee=assignee, critical=is_open and task.on_critical_path,
        milestone=task.is_milestone, late=late, projected_end=projected if slips else None,
    )
