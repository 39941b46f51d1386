"""The read-only dashboard's vocabulary: campaigns and tasks as cards, plain values that can be cached.

Every dashboard read (`dashboard_overview`, `dashboard_schedule`, `dashboard_campaigns`,
`dashboard_detail`, `dashboard_metrics`; query values are checked by `dashboard_params`) returns frozen dataclasses of plain values, never ORM objects: what a page shows is
rendered once and kept (the handlers cache it per link scope and change version), and the same values
become the JSON of `/api/dashboard/...`. Times are already in the reader's time zone.

`campaign_id` in every read is the link's scope: None opens every campaign, a number only that one.
A campaign's health is the plan's own verdict (`PlanSummary.risk`), the one the App Home shows.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.orm import joinedload

from models import Campaign, CampaignStatus, Task, TaskStatus, TeamMember, Timeline
from services.approval_stages import Person
from services.plans import CLOSED, PlanSummary, late_working_days
from services.refs import RefKind, format_ref

S = TypeVar("S", bound=Select)  # any select, whatever its columns


class Health(enum.StrEnum):
    """How a campaign's plan stands; the values are what URLs and CSS classes say."""

    LATE = "late"  # the projected launch is after the launch date
    AT_RISK = "at-risk"  # half the buffer is gone, or the plan had to be compressed
    ON_TRACK = "on-track"
    NO_PLAN = "no-plan"  # a campaign without a template plan

    @property
    def label(self) -> str:
        return self.value.replace("-", " ").capitalize()


HEALTH_ORDER = (Health.LATE, Health.AT_RISK, Health.ON_TRACK, Health.NO_PLAN)  # worst first, as people scan


@dataclass(frozen=True)
class CampaignCard:
    id: int
    ref: str
    name: str
    status: CampaignStatus
    template: str
    owner: Person
    launch_date: date
    projected_launch: date | None
    health: Health
    buffer_left_pct: float | None  # None without a plan
    progress_pct: float | None


@dataclass(frozen=True)
class TaskCard:
    id: int
    ref: str
    title: str
    status: TaskStatus
    milestone: bool
    campaign_id: int
    campaign_ref: str
    campaign_name: str
    assignee: Person | None
    start_at: datetime | None  # in the reader's time zone
    due_at: datetime | None
    completed_at: datetime | None
    critical: bool  # on the plan's critical path
    overdue: bool  # open and its due time has passed
    days_late: int  # working days the plan says it misses what the launch needs (0: in time)


def person(member: TeamMember) -> Person:
    return Person(slack_user_id=member.slack_user_id, name=member.name)


def campaign_ref(campaign_id: int) -> str:
    return format_ref(RefKind.CAMPAIGN, campaign_id)


def local(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    return moment.astimezone(zone) if moment is not None else None


# What a campaign card reads: a few columns of the campaign, its owner and its plan, not whole rows (a
# campaign and a member each carry JSON columns, and the overview reads every open campaign).
CARD_COLUMNS = (
    Campaign.id, Campaign.name, Campaign.status, Campaign.template, Campaign.launch_date,
    TeamMember.slack_user_id.label("owner_slack_id"), TeamMember.name.label("owner_name"),
    Timeline.id.label("timeline_id"), Timeline.projected_launch, Timeline.buffer_consumed_pct,
    Timeline.compressed_days, Timeline.progress_pct,
)


def cards() -> Select:
    """Campaign cards' columns, to narrow with `where` and order; each row becomes `campaign_card(row)`."""
    return (select(*CARD_COLUMNS).join(TeamMember, TeamMember.id == Campaign.owner_id)
            .outerjoin(Timeline, Timeline.campaign_id == Campaign.id))


def campaign_card(row: Any) -> CampaignCard:
    """The card of a row of `cards()`. The health is the plan's own verdict: `PlanSummary.risk` reads only
    the launch date and the timeline's projected launch, buffer consumed and compression, all in the row."""
    health, buffer_left, progress = Health.NO_PLAN, None, None
    if row.timeline_id is not None:
        plan = PlanSummary(campaign=cast(Campaign, row), timeline=cast(Timeline, row), tasks=[])
        health = Health(plan.risk.replace(" ", "-"))
        buffer_left, progress = round(plan.buffer_left_pct, 1), round(row.progress_pct, 1)
    return CampaignCard(
        id=row.id, ref=campaign_ref(row.id), name=row.name, status=row.status, template=row.template,
        owner=Person(slack_user_id=row.owner_slack_id, name=row.owner_name), launch_date=row.launch_date,
        projected_launch=row.projected_launch, health=health, buffer_left_pct=buffer_left, progress_pct=progress,
    )


# A task card needs its campaign's name and its assignee; `load_only` keeps the campaign row small.
TASK_OPTIONS = (
    joinedload(Task.assignee),
    joinedload(Task.campaign).load_only(Campaign.id, Campaign.name, Campaign.status),
)


def task_card(task: Task, *, zone: ZoneInfo, now: datetime) -> TaskCard:
    """The card of a task loaded with TASK_OPTIONS."""
    is_open = task.status not in CLOSED
    return TaskCard(
        id=task.id, ref=format_ref(RefKind.TASK, task.id), title=task.title, status=task.status,
        milestone=task.is_milestone, campaign_id=task.campaign_id, campaign_ref=campaign_ref(task.campaign_id),
        campaign_name=task.campaign.name, assignee=person(task.assignee) if task.assignee is not None else None,
        start_at=local(task.start_at, zone), due_at=local(task.due_at, zone),
        completed_at=local(task.completed_at, zone), critical=task.on_critical_path,
        overdue=is_open and task.due_at is not None and task.due_at < now, days_late=late_working_days(task),
    )


def within(statement: S, campaign_id: int | None, column: Any = Campaign.id) -> S:
    """The statement limited to the link's campaign (`column` is the campaign id it filters on)."""
    return statement if campaign_id is None else statement.where(column == campaign_id)


def by_health(found: list[CampaignCard]) -> dict[Health, list[CampaignCard]]:
    grouped: dict[Health, list[CampaignCard]] = {health: [] for health in HEALTH_ORDER}
    for card in found:
        grouped[card.health].append(card)
    return grouped

