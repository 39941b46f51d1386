"""Approval stages as people see them: which stage is open, waiting, passed or rejected, and who said what.

A stage is the approvals of one campaign that share a stage name: one row per approver, all in the
same round. Stages run by `stage_order`: a stage is open while it is undecided and every stage with a
lower order has passed; otherwise it waits. A campaign has a handful of rows, so states are computed
here in Python rather than in SQL.

A template stage that is due to open while the campaign's content checks find errors about it is HELD
instead (`_hold`): it gets no approvers until the assets are fixed (`services.campaign_content`). The checks
are read only for campaigns that have a stage due to open, so reading stages costs no more otherwise.

`StageView` is a plain, comparable snapshot (no ORM objects): the delivery job renders every Slack copy
of a stage's request from it when the copy goes out (`services.approval_notices`), and compares two
snapshots to know whether a copy it just posted still shows the stage as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import bindparam, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from models import (
    Approval,
    ApprovalMessage,
    ApprovalRule,
    ApprovalStatus,
    Campaign,
    Task,
    TaskStatus,
    TeamMember,
    Timeline,
)
from services.campaign_content import CampaignContent, asset_ref, content_of_campaigns
from services.content_checks import Finding
from services.errors import NotFound
from services.refs import RefKind, format_ref

ASSETS_SHOWN = 10
FINDINGS_SHOWN = 10


class StageState(StrEnum):
    WAITING = "waiting"  # its task is not done yet, or an earlier stage has not passed
    OPEN = "open"  # the approvers have the request and decide now
    PASSED = "passed"
    REJECTED = "rejected"
    SKIPPED = "skipped"  # the owner took it out, or the task it reviews was cancelled
    UNSTAFFED = "unstaffed"  # due to open, but nobody has the role it asks for: the owner names approvers
    HELD = "held"  # due to open, but the content checks found errors: the owner fixes the assets first


SETTLED = (StageState.PASSED, StageState.SKIPPED)  # what a later stage, and the campaign's sign-off, wait for


@dataclass(frozen=True)
class TemplateStage:
    """A stage the campaign's template asks for (`Timeline.approval_stages`), before and after it opens.

    It has no approval rows until it opens: when its `after_task` is done and every earlier stage has
    passed, its approvers are the active members with `approver_role`.
    """

    name: str
    order: int
    rule: ApprovalRule
    approver_role: str
    allowed_hours: float
    after_task: str | None  # a template task key
    skipped: str | None = None  # why it was taken out (the owner's words, or the cancelled task)

    @classmethod
    def from_stored(cls, stored: dict[str, Any]) -> TemplateStage:
        return cls(name=str(stored.get("name") or ""), order=int(stored.get("order") or 1),
                   rule=ApprovalRule(str(stored.get("rule") or "all")),
                   approver_role=" ".join(str(stored.get("approver_role") or "").split()),
                   allowed_hours=float(stored.get("allowed_hours") or 0), after_task=stored.get("after_task") or None,
                   skipped=stored.get("skipped") or None)


@dataclass(frozen=True)
class StageStatus:
    state: StageState
    waits_for: str | None = None  # the earlier stage a WAITING stage waits for
    waits_for_task: str | None = None  # or the task (a ref) whose finish opens it
    skipped: str | None = None  # why a SKIPPED stage was taken out
    errors: int = 0  # how many content errors hold a HELD stage


def approval_ref(approval_id: int) -> str:
    return format_ref(RefKind.APPROVAL, approval_id)


def stage_outcome(rows: Sequence[Approval]) -> StageState | None:
    """PASSED or REJECTED once the rule is met by the rows of one stage; None while undecided."""
    statuses = [row.status for row in rows]
    if ApprovalStatus.REJECTED in statuses:
        return StageState.REJECTED
    if rows and rows[0].rule is ApprovalRule.ANY and ApprovalStatus.APPROVED in statuses:
        return StageState.PASSED
    if rows and all(status is ApprovalStatus.APPROVED for status in statuses):
        return StageState.PASSED
    return None


def group_stages(rows: Sequence[Approval]) -> dict[str, list[Approval]]:
    """A campaign's approvals by stage name, stages in running order."""
    stages: dict[str, list[Approval]] = {}
    for row in sorted(rows, key=lambda row: (row.stage_order, row.stage, row.id)):
        stages.setdefault(row.stage, []).append(row)
    return stages


def stage_states(
    rows: Sequence[Approval], template: Sequence[TemplateStage] = (), gates: Mapping[str, str] | None = None,
) -> dict[str, StageStatus]:
    """Every stage of a campaign, in running order: those with approval rows and the template's own.

    `gates` maps a template stage to the task (its ref) that must be done before it opens. A stage is
    decided by its rows (or skipped); otherwise it waits for its task, then for every stage of a lower
    order to pass or be skipped (see `_holds_back`); then it is open, or unstaffed when it has no
    approvers yet.
    """
    stages = group_stages(rows)
    specs = {spec.name: spec for spec in template}
    orders = {name: stage_rows[0].stage_order for name, stage_rows in stages.items()}
    for spec in template:
        orders.setdefault(spec.name, spec.order)
    position = {spec.name: index for index, spec in enumerate(template)}  # the template's own order first
    running = sorted(orders, key=lambda name: (orders[name], position.get(name, len(position)), name))
    outcomes: dict[str, StageState | None] = {}
    for name in running:
        known = specs.get(name)
        skipped = known is not None and known.skipped is not None
        outcomes[name] = StageState.SKIPPED if skipped else stage_outcome(stages[name]) if name in stages else None
    states: dict[str, StageStatus] = {}
    for name in running:
        outcome = outcomes[name]
        if outcome is not None:
            states[name] = StageStatus(outcome, skipped=specs[name].skipped if outcome is StageState.SKIPPED else None)
        elif gates and name in gates:
            states[name] = StageStatus(StageState.WAITING, waits_for_task=gates[name])
        else:
            blocking = next((other for other in running if orders[other] < orders[name]
                             and outcomes[other] not in SETTLED and _holds_back(other, name, stages, specs)), None)
            if blocking is not None:
                states[name] = StageStatus(StageState.WAITING, waits_for=blocking)
            else:
                states[name] = StageStatus(StageState.OPEN if name in stages else StageState.UNSTAFFED)
    return states


def _holds_back(earlier: str, later: str, stages: Mapping[str, object], specs: Mapping[str, object]) -> bool:
    """An earlier stage holds a later one back once it was asked for (it has rows). A template stage not
    started yet holds back only the template's later stages: a stage someone asks for now runs now."""
    return earlier in stages or (earlier in specs and later in specs)


def all_signed_off(states: Mapping[str, StageStatus]) -> bool:
    """Every stage, template and ad hoc, has passed or been skipped, and at least one passed."""
    return (all(status.state in SETTLED for status in states.values())
            and any(status.state is StageState.PASSED for status in states.values()))


@dataclass(frozen=True)
class Person:
    slack_user_id: str
    name: str


@dataclass(frozen=True)
class Vote:
    """One approver's part of a stage."""

    approval_id: int
    approver: Person
    delegate: Person | None
    status: ApprovalStatus
    decided_by: Person | None
    decided_at: datetime | None
    comments: str | None

    @property
    def ref(self) -> str:
        return approval_ref(self.approval_id)

    def recipients(self) -> list[Person]:
        """Who gets this approval's request with the buttons: the approver and their delegate."""
        return [self.approver] if self.delegate is None else [self.approver, self.delegate]


@dataclass(frozen=True)
class AssetLink:
    name: str
    kind: str
    url: str | None
    ref: str = ""  # AS-4


@dataclass(frozen=True)
class StageView:
    campaign_id: int
    campaign_name: str
    channel_id: str | None
    owner: Person
    stage: str
    order: int
    rule: ApprovalRule
    round: int
    deadline: datetime | None
    state: StageState
    waits_for: str | None  # the earlier stage a waiting stage waits for
    votes: tuple[Vote, ...]
    assets: tuple[AssetLink, ...]
    campaign_approved_at: datetime | None
    waits_for_task: str | None = None  # or the task (a ref) whose finish opens it
    findings: tuple[Finding, ...] = ()  # the content checks' findings about this stage, errors first

    @property
    def campaign_ref(self) -> str:
        return format_ref(RefKind.CAMPAIGN, self.campaign_id)

    def vote(self, approval_id: int | None) -> Vote | None:
        return next((vote for vote in self.votes if vote.approval_id == approval_id), None)

    @property
    def approved(self) -> int:
        return sum(vote.status is ApprovalStatus.APPROVED for vote in self.votes)

    @property
    def still_needed(self) -> int:
        """Approvals still missing for the stage to pass."""
        needed = 1 if self.rule is ApprovalRule.ANY else len(self.votes)
        return max(0, needed - self.approved)

    @property
    def rejection(self) -> Vote | None:
        return next((vote for vote in self.votes if vote.status is ApprovalStatus.REJECTED), None)

    @property
    def decided_at(self) -> datetime | None:
        """When the stage passed or was rejected: its last decision."""
        if self.state not in (StageState.PASSED, StageState.REJECTED):
            return None
        return max((vote.decided_at for vote in self.votes if vote.decided_at), default=None)


async def campaign_approvals(db: AsyncSession, campaign_id: int) -> list[Approval]:
    """Every approval of a campaign, fresh from the database (a lock may just have been waited for)."""
    rows = await db.scalars(
        select(Approval).where(Approval.campaign_id == campaign_id)
        .options(joinedload(Approval.approver), joinedload(Approval.delegated_to))
        .order_by(Approval.stage_order, Approval.id)
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


@dataclass(frozen=True)
class CampaignStages:
    """A campaign's approval rows, its template's stages, and what each stage's state is now."""

    rows: list[Approval]
    template: tuple[TemplateStage, ...]
    states: dict[str, StageStatus]
    content: CampaignContent | None = None  # read when a stage was due to open (it decides HELD)

    def held_names(self) -> list[str]:
        return [name for name, status in self.states.items() if status.state is StageState.HELD]

    def open_names(self) -> set[str]:
        return {name for name, status in self.states.items() if status.state is StageState.OPEN}

    def spec(self, name: str) -> TemplateStage | None:
        return next((spec for spec in self.template if spec.name == name), None)


async def campaign_stages(
    db: AsyncSession, campaign_id: int, *, stored: Sequence[Any] | None = None
) -> CampaignStages:
    """Read every stage's state: the rows, the template's stages, and the tasks that open them.
    `stored`: the template's stages, where the caller has read the timeline already."""
    return (await stages_of(db, [campaign_id], stored=None if stored is None else {campaign_id: stored}))[campaign_id]


# Built once: every request that shows stages runs it (building it cost more than running it).
APPROVALS_OF = (
    select(Approval).where(Approval.campaign_id.in_(bindparam("campaign_ids", expanding=True)))
    .options(joinedload(Approval.approver), joinedload(Approval.delegated_to))
    .order_by(Approval.stage_order, Approval.id)
    .execution_options(populate_existing=True)  # a lock may just have been waited for
)


async def stages_of(
    db: AsyncSession, campaign_ids: Sequence[int], *, stored: Mapping[int, Sequence[Any]] | None = None,
    tasks: Mapping[int, Sequence[Task]] | None = None,
) -> dict[int, CampaignStages]:
    """`campaign_stages` for several campaigns in three queries (the App Home lists a few).

    `stored`: the template stages (`Timeline.approval_stages`) of campaigns whose timeline the caller
    has already read, so they are not read again. `tasks`: every task of each campaign, as the caller
    has just read them (a re-plan does), so the tasks that hold stages are looked up instead of read.
    """
    ids = list(dict.fromkeys(campaign_ids))
    if not ids:
        return {}
    rows: dict[int, list[Approval]] = {campaign_id: [] for campaign_id in ids}
    for row in await db.scalars(APPROVALS_OF, {"campaign_ids": ids}):
        rows[row.campaign_id].append(row)
    known = dict(stored or {})
    unread = [campaign_id for campaign_id in ids if campaign_id not in known]
    if unread:
        for campaign_id, stored_stages in await db.execute(
            select(Timeline.campaign_id, Timeline.approval_stages).where(Timeline.campaign_id.in_(unread))
        ):
            known[campaign_id] = stored_stages
    templates = {campaign_id: [TemplateStage.from_stored(item) for item in known.get(campaign_id) or []
                               if isinstance(item, dict) and item.get("name")] for campaign_id in ids}
    keys = {spec.after_task for specs in templates.values() for spec in specs if spec.after_task}
    after: dict[int, dict[str, tuple[int, TaskStatus]]] = {campaign_id: {} for campaign_id in ids}
    found: list[tuple[int, str | None, int, TaskStatus]] = []
    if keys and tasks is not None:
        found = [(task.campaign_id, task.template_key, task.id, task.status)
                 for campaign_id in ids for task in tasks.get(campaign_id, ()) if task.template_key in keys]
    elif keys:
        found = [(campaign_id, key, task_id, status) for campaign_id, key, task_id, status in await db.execute(
            select(Task.campaign_id, Task.template_key, Task.id, Task.status)
            .where(Task.campaign_id.in_(ids), Task.template_key.in_(keys)))]
    for campaign_id, key, task_id, status in found:
        if key is not None:
            after[campaign_id][key] = (task_id, status)
    assembled = {campaign_id: _assemble(rows[campaign_id], templates[campaign_id], after[campaign_id])
                 for campaign_id in ids}
    await _hold(db, assembled)
    return assembled


async def _hold(db: AsyncSession, assembled: dict[int, CampaignStages]) -> None:
    """Hold each stage that is due to open (UNSTAFFED: no approvers yet) while content errors are about it.

    Only campaigns with such a stage are read (one query for their assets, one for their rules)."""
    due = [campaign_id for campaign_id, stages in assembled.items()
           if any(status.state is StageState.UNSTAFFED for status in stages.states.values())]
    if not due:
        return
    contents = await content_of_campaigns(db, due)
    for campaign_id in due:
        assembled[campaign_id] = hold(assembled[campaign_id], contents[campaign_id])


def hold(stages: CampaignStages, content: CampaignContent) -> CampaignStages:
    """The stages with those that are due to open and have content errors about them HELD."""
    states = dict(stages.states)
    for name, status in stages.states.items():
        if status.state is StageState.UNSTAFFED:
            errors = content.errors(name)
            if errors:
                states[name] = StageStatus(StageState.HELD, errors=len(errors))
    return replace(stages, states=states, content=content)


def _assemble(
    rows: list[Approval], template: list[TemplateStage], after: Mapping[str, tuple[int, TaskStatus]]
) -> CampaignStages:
    """Gate each template stage on its task: waiting while the task is open, skipped if it was cancelled."""
    decided = {name for name, stage_rows in group_stages(rows).items() if stage_outcome(stage_rows) is not None}
    gates: dict[str, str] = {}
    for position, spec in enumerate(template):
        if spec.after_task is None or spec.after_task not in after or spec.skipped:
            continue
        task_id, status = after[spec.after_task]
        ref = format_ref(RefKind.TASK, task_id)
        if status is TaskStatus.CANCELLED and spec.name not in decided:
            template[position] = replace(spec, skipped=f"{ref} was cancelled")
        elif status is not TaskStatus.DONE and status is not TaskStatus.CANCELLED:
            gates[spec.name] = ref
    return CampaignStages(rows=rows, template=tuple(template), states=stage_states(rows, template, gates))


@dataclass(frozen=True)
class StageLine:
    """One stage of a campaign as `/campaign show` and the App Home list it."""

    name: str
    status: StageStatus
    deadline: datetime | None
    decided: tuple[tuple[str, ApprovalStatus], ...]  # who has answered this round, and how
    reason: str | None  # why it was rejected
    role: str | None  # the role a template stage asks for (said when nobody has it)


def stage_lines(stages: CampaignStages) -> list[StageLine]:
    groups = group_stages(stages.rows)
    lines = []
    for name, status in stages.states.items():
        rows = groups.get(name, [])
        answered = [row for row in rows if row.status in (ApprovalStatus.APPROVED, ApprovalStatus.REJECTED)]
        rejection = next((row for row in answered if row.status is ApprovalStatus.REJECTED), None)
        spec = stages.spec(name)
        lines.append(StageLine(
            name=name, status=status, deadline=rows[0].deadline if rows else None,
            decided=tuple((_decider_name(row), row.status) for row in answered),
            reason=rejection.comments if rejection else None, role=spec.approver_role if spec else None,
        ))
    return lines


def _decider_name(row: Approval) -> str:
    if row.delegated_to is not None and row.decided_by_id == row.delegated_to_id:
        return row.delegated_to.name
    return row.approver.name


async def load_stage(db: AsyncSession, campaign_id: int, stage: str) -> StageView:
    view = (await load_stages(db, [(campaign_id, stage)])).get((campaign_id, stage))
    if view is None:
        campaign = await db.scalar(select(Campaign.id).where(Campaign.id == campaign_id))
        if campaign is None:
            raise NotFound(f"There is no campaign {format_ref(RefKind.CAMPAIGN, campaign_id)}.")
        raise NotFound(f"{format_ref(RefKind.CAMPAIGN, campaign_id)} has no approval stage with that name.")
    return view


async def load_stages(db: AsyncSession, keys: Sequence[tuple[int, str]]) -> dict[tuple[int, str], StageView]:
    """The views of several stages, by (campaign id, stage name), in a fixed number of queries however
    many there are (`/approval mine` shows every stage waiting for a person). Unknown keys are left out."""
    campaign_ids = list(dict.fromkeys(campaign_id for campaign_id, _ in keys))
    if not campaign_ids:
        return {}
    campaigns = {campaign.id: campaign for campaign in await db.scalars(
        select(Campaign).where(Campaign.id.in_(campaign_ids)).options(joinedload(Campaign.owner))
        .execution_options(populate_existing=True)
    )}
    stages = await stages_of(db, list(campaigns))
    deciders = {row.decided_by_id for campaign_stages in stages.values() for row in campaign_stages.rows
                if row.decided_by_id is not None}
    members = {member.id: member for member in await db.scalars(select(TeamMember).where(TeamMember.id.in_(deciders)))}
    contents = await content_of_campaigns(db, list(campaigns))
    views = {}
    for campaign_id, stage in keys:
        campaign = campaigns.get(campaign_id)
        stage_rows = [row for row in stages[campaign_id].rows if row.stage == stage] if campaign else []
        if campaign is None or not stage_rows:
            continue
        status, first = stages[campaign_id].states[stage], stage_rows[0]
        views[(campaign_id, stage)] = StageView(
            campaign_id=campaign.id, campaign_name=campaign.name, channel_id=campaign.channel_id,
            owner=_person(campaign.owner), stage=stage, order=first.stage_order, rule=first.rule, round=first.round,
            deadline=first.deadline, state=status.state, waits_for=status.waits_for,
            waits_for_task=status.waits_for_task,
            votes=tuple(
                Vote(approval_id=row.id, approver=_person(row.approver),
                     delegate=_person(row.delegated_to) if row.delegated_to else None, status=row.status,
                     decided_by=_person(members[row.decided_by_id]) if row.decided_by_id in members else None,
                     decided_at=row.decided_at, comments=row.comments)
                for row in stage_rows
            ),
            assets=tuple(AssetLink(name=asset.name, kind=asset.kind, url=asset.url, ref=asset_ref(asset.id))
                         for asset in contents[campaign_id].assets[:ASSETS_SHOWN]),
            campaign_approved_at=campaign.approved_at,
            findings=tuple(finding for finding in contents[campaign_id].findings
                           if finding.applies_to(stage))[:FINDINGS_SHOWN],
        )
    return views


def _person(member: TeamMember) -> Person:
    return Person(slack_user_id=member.slack_user_id, name=member.name)


async def waiting_for(db: AsyncSession, member: TeamMember, limit: int = 20) -> list[tuple[int, StageView]]:
    """The approvals this person can decide now (as approver or delegate), in open stages, soonest due first."""
    mine = await db.scalars(
        select(Approval).where(
            Approval.status == ApprovalStatus.PENDING,
            or_(Approval.approver_id == member.id, Approval.delegated_to_id == member.id),
        ).order_by(Approval.deadline.is_(None), Approval.deadline, Approval.id)
    )
    approvals = mine.all()
    views = await load_stages(db, [(approval.campaign_id, approval.stage) for approval in approvals])
    found: list[tuple[int, StageView]] = []
    for approval in approvals:
        view = views.get((approval.campaign_id, approval.stage))
        if view is not None and view.state is StageState.OPEN:
            found.append((approval.id, view))
            if len(found) == limit:
                break
    return found


async def forget_messages(db: AsyncSession, campaign_id: int, stage: str) -> None:
    """A resubmitted stage gets new messages; the old ones stay in Slack as the record of that round."""
    await db.execute(
        delete(ApprovalMessage).where(ApprovalMessage.campaign_id == campaign_id, ApprovalMessage.stage == stage)
    )
