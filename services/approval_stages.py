"""Approval stages as people see them: which stage is open, waiting, passed or rejected, and who said what.

A stage is the approvals of one campaign that share a stage name: one row per approver, all in the
same round. Stages run by `stage_order`: a stage is open while it is undecided and every stage with a
lower order has passed; otherwise it waits. A campaign has a handful of rows, so states are computed
here in Python rather than in SQL.

`StageView` is a plain, comparable snapshot (no ORM objects): the entry point renders every Slack copy
of a stage's request from it after the transaction, and compares two snapshots to know whether the
copies it just updated are still current.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from models import (
    Approval,
    ApprovalMessage,
    ApprovalRule,
    ApprovalStatus,
    Asset,
    AssetStatus,
    Campaign,
    TeamMember,
)
from models.upsert import insert_ignore
from services.errors import NotFound
from services.refs import RefKind, format_ref

ASSETS_SHOWN = 10


class StageState(StrEnum):
    WAITING = "waiting"  # an earlier stage has not passed yet
    OPEN = "open"  # the approvers have the request and decide now
    PASSED = "passed"
    REJECTED = "rejected"


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


def stage_states(rows: Sequence[Approval]) -> dict[str, tuple[StageState, str | None]]:
    """Each stage's state and, for a waiting stage, the earliest stage it waits for."""
    stages = group_stages(rows)
    outcomes = {name: stage_outcome(stage_rows) for name, stage_rows in stages.items()}
    states: dict[str, tuple[StageState, str | None]] = {}
    for name, stage_rows in stages.items():
        outcome = outcomes[name]
        if outcome is not None:
            states[name] = (outcome, None)
            continue
        order = stage_rows[0].stage_order
        blocking = [other for other, other_rows in stages.items()
                    if other_rows[0].stage_order < order and outcomes[other] is not StageState.PASSED]
        states[name] = (StageState.WAITING, blocking[0]) if blocking else (StageState.OPEN, None)
    return states


def open_stages(rows: Sequence[Approval]) -> set[str]:
    return {name for name, (state, _) in stage_states(rows).items() if state is StageState.OPEN}


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
    waits_for: str | None
    votes: tuple[Vote, ...]
    assets: tuple[AssetLink, ...]
    campaign_approved_at: datetime | None

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
        .options(selectinload(Approval.approver), selectinload(Approval.delegated_to))
        .order_by(Approval.stage_order, Approval.id)
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


async def load_stage(db: AsyncSession, campaign_id: int, stage: str) -> StageView:
    campaign = await db.scalar(
        select(Campaign).where(Campaign.id == campaign_id).options(selectinload(Campaign.owner))
        .execution_options(populate_existing=True)
    )
    if campaign is None:
        raise NotFound(f"There is no campaign {format_ref(RefKind.CAMPAIGN, campaign_id)}.")
    rows = await campaign_approvals(db, campaign_id)
    stage_rows = [row for row in rows if row.stage == stage]
    if not stage_rows:
        raise NotFound(f"{format_ref(RefKind.CAMPAIGN, campaign_id)} has no approval stage with that name.")
    state, waits_for = stage_states(rows)[stage]
    deciders = {row.decided_by_id for row in stage_rows if row.decided_by_id is not None}
    members = {member.id: member for member in await db.scalars(select(TeamMember).where(TeamMember.id.in_(deciders)))}
    assets = await db.scalars(
        select(Asset).where(Asset.campaign_id == campaign_id, Asset.status != AssetStatus.ARCHIVED)
        .order_by(Asset.id).limit(ASSETS_SHOWN)
    )
    first = stage_rows[0]
    return StageView(
        campaign_id=campaign.id, campaign_name=campaign.name, channel_id=campaign.channel_id,
        owner=_person(campaign.owner), stage=stage, order=first.stage_order, rule=first.rule, round=first.round,
        deadline=first.deadline, state=state, waits_for=waits_for,
        votes=tuple(
            Vote(approval_id=row.id, approver=_person(row.approver),
                 delegate=_person(row.delegated_to) if row.delegated_to else None, status=row.status,
                 decided_by=_person(members[row.decided_by_id]) if row.decided_by_id in members else None,
                 decided_at=row.decided_at, comments=row.comments)
            for row in stage_rows
        ),
        assets=tuple(AssetLink(name=asset.name, kind=asset.kind, url=asset.url) for asset in assets),
        campaign_approved_at=campaign.approved_at,
    )


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
    found: list[tuple[int, StageView]] = []
    views: dict[tuple[int, str], StageView] = {}
    for approval in mine.all():
        key = (approval.campaign_id, approval.stage)
        if key not in views:
            views[key] = await load_stage(db, *key)
        if views[key].state is StageState.OPEN:
            found.append((approval.id, views[key]))
            if len(found) == limit:
                break
    return found


@dataclass(frozen=True)
class MessageRef:
    """One Slack copy of a stage's request; `approval_id` is None for the campaign channel's post."""

    channel: str
    ts: str
    approval_id: int | None


async def stage_messages(db: AsyncSession, campaign_id: int, stage: str) -> list[MessageRef]:
    rows = await db.scalars(
        select(ApprovalMessage).where(ApprovalMessage.campaign_id == campaign_id, ApprovalMessage.stage == stage)
        .order_by(ApprovalMessage.id)
    )
    return [MessageRef(channel=row.channel, ts=row.ts, approval_id=row.approval_id) for row in rows]


async def record_message(db: AsyncSession, campaign_id: int, stage: str, message: MessageRef) -> None:
    await insert_ignore(db, ApprovalMessage, {"campaign_id": campaign_id, "stage": stage, "channel": message.channel,
                                              "ts": message.ts, "approval_id": message.approval_id},
                        conflict=["channel", "ts"])


async def forget_messages(db: AsyncSession, campaign_id: int, stage: str) -> None:
    """A resubmitted stage gets new messages; the old ones stay in Slack as the record of that round."""
    await db.execute(
        delete(ApprovalMessage).where(ApprovalMessage.campaign_id == campaign_id, ApprovalMessage.stage == stage)
    )
