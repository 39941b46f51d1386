"""The API's request and response bodies: pydantic models that validate what comes in, shape what goes
out, and are the OpenAPI document's schemas (`openapi`), so the documentation cannot drift from the code.

Refs are the ones people type in Slack (CM-12, T-7, AP-3); people are named by their Slack user id.
`from_*` builders turn the services' rows into bodies; they read only what the services loaded.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator

from models import Approval, Campaign, CampaignStatus, Comment, Priority, Task, TaskStatus, TeamMember
from services.campaigns import Move
from services.dashboard_metrics import Metrics
from services.dashboard_schedule import Schedule
from services.plans import PlanSummary
from services.refs import RefKind, format_ref

MAX_PAGE = 100
DEFAULT_PAGE = 50
SLACK_ID_PATTERN = r"^[UW][A-Z0-9]{1,31}$"
SlackId = Annotated[str, Field(pattern=SLACK_ID_PATTERN, description="A Slack user id, e.g. U0ALICE")]


def ref_pattern(kind: RefKind) -> str:
    """The refs the API takes, as a JSON Schema pattern: `CM-12`, `cm12` or `12` (no quoting, no spaces).

    Narrower than what Slack accepts (`services.refs.parse_ref` also strips backticks people paste), so
    the document says exactly what passes; `registry` holds a path's ref to it before parsing.
    """
    letters = "".join(f"[{letter}{letter.lower()}]" for letter in kind.value)
    return rf"^(?:{letters}-?)?[0-9]{{1,12}}$"


CampaignRef = Annotated[str, Field(pattern=ref_pattern(RefKind.CAMPAIGN), description="A campaign ref, e.g. CM-12")]
# Printable ASCII without spaces at either end (HTTP would strip them): what a header can carry intact.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~](?:[ -~]{0,198}[!-~])?$"
HEADER_SCHEMAS: dict[str, dict[str, Any]] = {
    "Idempotency-Key": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN, "maxLength": 200,
                        "description": "Retrying a create with the same key (and the same body) makes it once"},
}


class Body(BaseModel):
    """Requests refuse fields they do not know: a typo is a 422, not a silently ignored change."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- people


class MemberRef(BaseModel):
    slack_user_id: str
    name: str


class Member(MemberRef):
    role: str | None
    skills: list[str]
    timezone: str
    max_concurrent_tasks: int
    open_tasks: int


class DateRange(BaseModel):
    start: date
    end: date


class ProfileOut(Member):
    weekly_hours: dict[str, list[list[str]]] | None = Field(
        description="Working hours by day (`mon`..`sun`), each a list of [start, end] local times")
    out_of_office: DateRange | None
    changed: list[str] = Field(description="The fields this request changed")


class ProfileUpdate(Body):
    """Any of these; a field left out stays as it is. `out_of_office: null` clears it."""

    skills: list[Annotated[str, Field(min_length=1, max_length=40)]] | None = Field(default=None, max_length=20)
    timezone: str | None = Field(default=None, min_length=1, max_length=64, examples=["Europe/Berlin"])
    weekly_hours: str | None = Field(default=None, min_length=1, max_length=200,
                                     description="As in Slack: `mon-fri 9-17` or `mon-thu 9-17, fri 9-13`")
    capacity: int | None = Field(default=None, ge=1, le=50, description="How many tasks at once")
    out_of_office: DateRange | None = None


def from_profile(member: TeamMember, open_tasks: int, changed: list[str]) -> ProfileOut:
    away = (DateRange(start=member.out_of_office_from, end=member.out_of_office_until)
            if member.out_of_office_from and member.out_of_office_until else None)
    return ProfileOut(**from_member(member, open_tasks).model_dump(), weekly_hours=member.weekly_availability or None,
                      out_of_office=away, changed=changed)


class TeamList(BaseModel):
    items: list[Member]


def member_ref(member: TeamMember | None) -> MemberRef | None:
    return None if member is None else MemberRef(slack_user_id=member.slack_user_id, name=member.name)


def from_member(member: TeamMember, open_tasks: int) -> Member:
    return Member(slack_user_id=member.slack_user_id, name=member.name, role=member.role,
                  skills=[str(skill) for skill in member.skills or []], timezone=member.timezone,
                  max_concurrent_tasks=member.max_concurrent_tasks, open_tasks=open_tasks)


# ---------------------------------------------------------------- campaigns


class CampaignOut(BaseModel):
    ref: str = Field(examples=["CM-12"])
    name: str
    template: str
    status: CampaignStatus
    launch_date: date
    owner: MemberRef
    channel_id: str | None


class CampaignPage(BaseModel):
    items: list[CampaignOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


def from_campaign(campaign: Campaign) -> CampaignOut:
    owner = member_ref(campaign.owner)
    assert owner is not None
    return CampaignOut(ref=format_ref(RefKind.CAMPAIGN, campaign.id), name=campaign.name, template=campaign.template,
                       status=campaign.status, launch_date=campaign.launch_date, owner=owner,
                       channel_id=campaign.channel_id)


class PlanTask(BaseModel):
    ref: str
    title: str
    status: TaskStatus
    due_at: datetime | None
    is_milestone: bool


class PlanOut(BaseModel):
    campaign: str = Field(description="The campaign's ref")
    launch_date: date
    projected_launch: date | None
    risk: Literal["on track", "at risk", "late"]
    buffer_hours: float
    buffer_left_pct: float
    progress_pct: float
    compressed_days: int
    critical_path: list[PlanTask]
    milestones: list[PlanTask]
    computed_at: datetime | None


def _plan_task(task: Task) -> PlanTask:
    return PlanTask(ref=format_ref(RefKind.TASK, task.id), title=task.title, status=task.status, due_at=task.due_at,
                    is_milestone=task.is_milestone)


def from_plan(plan: PlanSummary) -> PlanOut:
    timeline = plan.timeline
    return PlanOut(campaign=format_ref(RefKind.CAMPAIGN, plan.campaign.id), launch_date=plan.campaign.launch_date,
                   projected_launch=timeline.projected_launch, risk=plan.risk,  # type: ignore[arg-type]
                   buffer_hours=timeline.buffer_hours, buffer_left_pct=round(plan.buffer_left_pct, 1),
                   progress_pct=round(timeline.progress_pct, 1), compressed_days=timeline.compressed_days,
                   critical_path=[_plan_task(task) for task in plan.critical_path],
                   milestones=[_plan_task(task) for task in plan.milestones], computed_at=timeline.computed_at)


class CampaignCreate(Body):
    name: str = Field(min_length=1, max_length=200)
    template: str = Field(min_length=1, max_length=64, description="A template name, as `/campaign templates` lists")
    launch_date: date
    owner: SlackId | None = Field(default=None, description="Someone already on the team; you when left out")


class LifecycleMove(Body):
    action: Move


# ---------------------------------------------------------------- tasks


class TaskOut(BaseModel):
    ref: str = Field(examples=["T-7"])
    campaign: str
    title: str
    description: str | None
    status: TaskStatus
    priority: Priority
    assignee: MemberRef | None
    estimate_hours: float
    start_at: datetime | None
    due_at: datetime | None
    on_critical_path: bool
    is_milestone: bool
    blocked_reason: str | None
    completed_at: datetime | None


class TaskPage(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None


def from_task(task: Task, assignee: TeamMember | None) -> TaskOut:
    return TaskOut(ref=format_ref(RefKind.TASK, task.id), campaign=format_ref(RefKind.CAMPAIGN, task.campaign_id),
                   title=task.title, description=task.description, status=task.status, priority=task.priority,
                   assignee=member_ref(assignee), estimate_hours=task.duration_hours, start_at=task.start_at,
                   due_at=task.due_at, on_critical_path=task.on_critical_path, is_milestone=task.is_milestone,
                   blocked_reason=task.blocked_reason, completed_at=task.completed_at)


class TaskCreate(Body):
    campaign: CampaignRef
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=3000)
    estimate: str = Field(default="", max_length=20, description="`6h`, `1.5d`; a day when left out")
    due: date | None = None
    assignee: SlackId | None = None
    priority: Priority = Priority.NORMAL
    after: list[str] = Field(default_factory=list, max_length=20, description="Refs of tasks it waits for")
    before: list[str] = Field(default_factory=list, max_length=20, description="Refs of tasks that wait for it")


class TaskUpdate(Body):
    """Any of these, applied in this order in one transaction: assignee, estimate, due, status."""

    status: Literal["in_progress", "done", "blocked"] | None = None
    reason: str | None = Field(default=None, max_length=500, description="Required with status `blocked`")
    estimate: str | None = Field(default=None, max_length=20)
    due: date | None = None
    assignee: SlackId | None = None
    anyway: bool = Field(default=False, description="With status `done`: finish it even though the asset it hands "
                                                    "over is not attached (else a 409 says what is missing)")

    @field_validator("reason")
    @classmethod
    def _reason_not_blank(cls, value: str | None) -> str | None:
        return value or None


class CommentCreate(Body):
    body: str = Field(min_length=1, max_length=3000)


class CommentOut(BaseModel):
    id: int
    task: str
    author: MemberRef
    body: str
    created_at: datetime | None


def from_comment(comment: Comment, task: Task, author: TeamMember) -> CommentOut:
    ref = member_ref(author)
    assert ref is not None
    return CommentOut(id=comment.id, task=format_ref(RefKind.TASK, task.id), author=ref, body=comment.body,
                      created_at=comment.created_at)


# ---------------------------------------------------------------- approvals


class ApprovalOut(BaseModel):
    ref: str = Field(examples=["AP-3"])
    campaign: str
    campaign_name: str
    stage: str
    status: str
    deadline: datetime | None
    round: int


class ApprovalList(BaseModel):
    items: list[ApprovalOut]


def from_approval(approval: Approval, campaign: Campaign) -> ApprovalOut:
    return ApprovalOut(ref=format_ref(RefKind.APPROVAL, approval.id), campaign=format_ref(RefKind.CAMPAIGN, campaign.id),
                       campaign_name=campaign.name, stage=approval.stage, status=approval.status.value,
                       deadline=approval.deadline, round=approval.round)


class ApprovalRequest(Body):
    campaign: CampaignRef
    stage: str = Field(min_length=1, max_length=100, examples=["Legal review"])
    approvers: list[SlackId] = Field(default_factory=list, max_length=10,
                                     description="Members already on the team; left out: the template stage's role")
    rule: Literal["all", "any"] | None = Field(default=None, description="`all` approve, or `any` one; else the template's")
    deadline: date | None = Field(default=None, description="The end of this day in the campaign's time zone")


class StageRequested(BaseModel):
    campaign: str
    stage: str
    approvals: list[ApprovalOut] = Field(description="One per approver")
    opened: list[str] = Field(description="Stages whose requests go out now (a stage waits for the ones before it)")


class Decision(Body):
    decision: Literal["approve", "reject"]
    reason: str = Field(default="", max_length=1000, description="Required to reject")


class DecisionOut(BaseModel):
    approval: str
    stage: str
    changed: bool
    outcome: str | None
    campaign_approved: bool
    note: str | None


# ---------------------------------------------------------------- queries and cursors


def encode_cursor(after: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(after, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValueError("not a cursor this API gave out") from None
    if not isinstance(value, list):
        raise ValueError("not a cursor this API gave out")
    return value


class CampaignQuery(Query):
    status: Literal["open", "all", "planning", "active", "paused", "completed", "cancelled"] = "open"
    owner: SlackId | None = None
    template: str | None = Field(default=None, max_length=64)
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)


class TaskQuery(Query):
    campaign: CampaignRef | None = None
    assignee: SlackId | None = None
    status: TaskStatus | None = None
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE)


Zone = Annotated[str, Field(min_length=1, max_length=64, examples=["Europe/Berlin"],
                            description="An IANA time zone; UTC when left out")]


class WeekQuery(Query):
    start: date | None = Field(default=None, description="Any day of the week wanted; this week when left out")
    tz: Zone | None = None
    campaign: CampaignRef | None = Field(default=None, description="Only this campaign; every campaign when left out")


class MetricsQuery(Query):
    start: date | None = Field(default=None, description="The first day measured; 90 days ago when left out")
    end: date | None = Field(default=None, description="The last day measured (at most two years after `start`)")
    tz: Zone | None = None
    campaign: CampaignRef | None = Field(default=None, description="Only this campaign; every campaign when left out")


# The dashboard's own answers (`services.dashboard_schedule`, `services.dashboard_metrics`): the same
# facts the dashboard's week and metrics pages show, so the pages and the API cannot disagree.
class WeekOut(RootModel[Schedule]):
    pass


class MetricsOut(RootModel[Metrics]):
    pass


class ErrorOut(BaseModel):
    """Every refusal: a code to branch on, a sentence to show, and for 422 the message of each bad field."""

    error: str = Field(examples=["invalid"])
    detail: str
    fields: dict[str, str] | None = None
