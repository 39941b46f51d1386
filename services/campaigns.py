"""Campaigns: create, find, list, move through their life (launch, pause, ...), set their channel.

Callers own the transaction.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from models import Approval, ApprovalStatus, Campaign, CampaignStatus, Task, TaskStatus, TeamMember, utcnow
from services import agent_handoff, audit, authz, campaign_created, signoffs, webhooks
from services.errors import InvalidInput, NotFound
from services.fields import InvalidField
from services.held_rows import note_held
from services.planning.templates import Template
from services.plans import PlanSummary, create_plan
from services.refs import RefKind, format_ref
from services.team import ACTIVE_TASK_STATUSES

MAX_NAME_LENGTH = 200
MAX_HORIZON_DAYS = 3 * 365
OPEN_STATUSES = (CampaignStatus.PLANNING, CampaignStatus.ACTIVE, CampaignStatus.PAUSED)
FINAL_STATUSES = (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED)


def campaign_ref(campaign: Campaign) -> str:
    return format_ref(RefKind.CAMPAIGN, campaign.id)


async def create_campaign(
    *,
    db: AsyncSession,
    name: str,
    template: Template,
    launch_date: date,
    owner: TeamMember,
    now: datetime,
    holidays: frozenset[date] = frozenset(),
    channel_id: str | None = None,
    created_by: TeamMember | None = None,
    announce: bool = False,
) -> PlanSummary:
    """Create the campaign and its plan from the template, working back from the launch date.

    `created_by` is who asked, when that is not the owner (a form lets people name another owner).
    `announce`: also write the "created" message to the outbox, in this transaction: to the campaign's
    channel, or without one to whoever asked (`services.campaign_created`). The typed command answers in
    its channel itself and leaves it off.
    """
    clean_name = clean_campaign_name(name)
    check_launch_date(launch_date, now.astimezone(ZoneInfo(owner.timezone)).date())
    campaign = Campaign(
        name=clean_name,
        template=template.name,
        launch_date=launch_date,
        owner_id=owner.id,
        channel_id=channel_id,
    )
    campaign.owner = owner
    db.add(campaign)
    await db.flush()
    audit.record(
        db=db,
        actor=(created_by or owner).slack_user_id,
        action="campaign.created",
        entity_type="campaign",
        entity_id=campaign.id,
        name=clean_name,
        template=template.name,
        launch_date=launch_date.isoformat(),
        **({"owner": owner.slack_user_id} if created_by is not None and created_by.id != owner.id else {}),
    )
    plan = await create_plan(db=db, campaign=campaign, template=template, now=now, holidays=holidays)
    await signoffs.warn_unstaffed(db=db, campaign=campaign, now=now)  # in time to name approvers
    if announce:
        await campaign_created.announce(db=db, plan=plan, template_title=template.title,
                                        requester=created_by or owner, now=now)
    return plan


# Built once: nearly every request runs one of these (building one costs about as much as running it).
CAMPAIGN_WITH_OWNER = select(Campaign).where(Campaign.id == bindparam("campaign_id")).options(joinedload(Campaign.owner))
CAMPAIGN_LOCKED = (CAMPAIGN_WITH_OWNER.with_for_update(of=Campaign)
                   .execution_options(populate_existing=True))  # what the last writer left
TASKS_AGAIN = (
    select(Task).where(Task.id.in_(bindparam("task_ids", expanding=True))).order_by(Task.id)
    .options(joinedload(Task.assignee), joinedload(Task.campaign).joinedload(Campaign.owner))
    .execution_options(populate_existing=True)
)


async def lock_campaign(db: AsyncSession, campaign_id: int) -> Campaign:
    """Take the campaign's row for the rest of the transaction, owner loaded and fresh from the database.

    Changes to one campaign's plan or sign-off stages go one at a time: each takes this lock first,
    before it touches tasks or approvals, so they queue here instead of deadlocking on the children.
    (SQLite has no row locks; its BEGIN IMMEDIATE already lets one writer in.)
    """
    campaign = await db.scalar(CAMPAIGN_LOCKED, {"campaign_id": campaign_id})
    if campaign is None:
        raise NotFound(f"There is no campaign {format_ref(RefKind.CAMPAIGN, campaign_id)}.")
    note_held(db, [campaign_id])
    return campaign


async def lock_with_tasks(db: AsyncSession, campaign_id: int, tasks: Sequence[Task]) -> Campaign:
    """`lock_campaign`, then read `tasks` (of that campaign, loaded before) again, as the last writer left them.

    A task loaded before the lock is stale when another change committed while this one waited: that
    change re-planned every task's dates, and may have moved this very task. Checks made on the stale copy
    would be wrong, and a re-plan would skip writing a date that equals the stale value but not the
    stored one, leaving a plan nobody computed.
    """
    campaign = await lock_campaign(db, campaign_id)
    if tasks:
        fresh = await db.scalars(TASKS_AGAIN, {"task_ids": [task.id for task in tasks]})
        fresh.all()  # populate_existing has refreshed the objects in place; the result itself is not needed
    return campaign


async def get_campaign(*, db: AsyncSession, campaign_id: int) -> Campaign:
    campaign = await db.scalar(CAMPAIGN_WITH_OWNER, {"campaign_id": campaign_id})
    if campaign is None:
        raise NotFound(f"There is no campaign {format_ref(RefKind.CAMPAIGN, campaign_id)}.")
    return campaign


@dataclass(frozen=True)
class CampaignPage:
    campaigns: Sequence[Campaign]
    total: int


async def list_campaigns(
    *,
    db: AsyncSession,
    statuses: Sequence[CampaignStatus] = OPEN_STATUSES,
    owner: TeamMember | None = None,
    limit: int = 20,
) -> CampaignPage:
    """Campaigns in the given states (and of one owner, if given), soonest launch first."""
    where: ColumnElement[bool] = Campaign.status.in_(statuses)
    if owner is not None:
        where = and_(where, Campaign.owner_id == owner.id)
    total = await db.scalar(select(func.count()).select_from(Campaign).where(where)) or 0
    rows = await db.scalars(
        select(Campaign)
        .where(where)
        .options(joinedload(Campaign.owner))
        .order_by(Campaign.launch_date, Campaign.id)
        .limit(limit)
    )
    return CampaignPage(campaigns=rows.all(), total=total)


def parse_status_filter(text: str) -> tuple[CampaignStatus, ...]:
    """`open` (default), `all`, or one status name."""
    word = text.strip().lower()
    if word in ("", "open"):
        return OPEN_STATUSES
    if word == "all":
        return tuple(CampaignStatus)
    try:
        return (CampaignStatus(word),)
    except ValueError:
        names = ", ".join(f"`{status.value}`" for status in CampaignStatus)
        raise InvalidInput(f"Unknown status. Use `open`, `all` or one of: {names}.") from None


def clean_campaign_name(name: str) -> str:
    # Collapse newlines and runs of spaces: a name is one line wherever it is shown.
    clean = " ".join(name.replace("\x00", "").split())
    if not clean:
        raise InvalidField("name", "The campaign needs a name.")
    if len(clean) > MAX_NAME_LENGTH:
        raise InvalidField("name", f"The name is {len(clean)} characters long; keep it under {MAX_NAME_LENGTH + 1}.")
    return clean


def check_launch_date(launch_date: date, today: date) -> None:
    """`today` in the owner's calendar: the plan runs on it."""
    if launch_date < today:
        raise InvalidField("launch_date", f"The launch date {launch_date.isoformat()} is in the past; pick today or later.")
    if launch_date > today + timedelta(days=MAX_HORIZON_DAYS):
        raise InvalidField("launch_date", f"The launch date {launch_date.isoformat()} is more than "
                                          f"{MAX_HORIZON_DAYS // 365} years away.")


# ---------------------------------------------------------------- lifecycle


class Move(enum.StrEnum):
    """What a person can do to a campaign's status; the values are the words they type."""

    LAUNCH = "launch"
    PAUSE = "pause"
    RESUME = "resume"
    COMPLETE = "complete"
    CANCEL = "cancel"


@dataclass(frozen=True)
class Transition:
    allowed_from: frozenset[CampaignStatus]
    to: CampaignStatus
    done: str  # the past tense, for the audit log and replies: "launched"


# planning -> active (launch) <-> paused (pause/resume); active|paused -> completed;
# planning|active|paused -> cancelled. Completed and cancelled are final.
LIFECYCLE: dict[Move, Transition] = {
    Move.LAUNCH: Transition(frozenset({CampaignStatus.PLANNING}), CampaignStatus.ACTIVE, "launched"),
    Move.PAUSE: Transition(frozenset({CampaignStatus.ACTIVE}), CampaignStatus.PAUSED, "paused"),
    Move.RESUME: Transition(frozenset({CampaignStatus.PAUSED}), CampaignStatus.ACTIVE, "resumed"),
    Move.COMPLETE: Transition(frozenset({CampaignStatus.ACTIVE, CampaignStatus.PAUSED}), CampaignStatus.COMPLETED,
                              "completed"),
    Move.CANCEL: Transition(frozenset(OPEN_STATUSES), CampaignStatus.CANCELLED, "cancelled"),
}


def refusal(status: CampaignStatus, move: Move, ref: str) -> str | None:
    """Why `move` is not possible from `status` (None when it is), saying what to do instead."""
    transition = LIFECYCLE[move]
    if status in transition.allowed_from:
        return None
    if status in FINAL_STATUSES:
        return f"{ref} is {status.value}; nothing can change."
    if status is transition.to:
        return f"{ref} is already {status.value}."
    if status is CampaignStatus.PAUSED:  # only `launch` is left: a paused campaign was launched already
        return f"{ref} is paused; resume it first: `/campaign resume {ref}`."
    return f"{ref} is still in planning; launch it first: `/campaign launch {ref}`."


@dataclass(frozen=True)
class StatusChange:
    campaign: Campaign
    move: Move
    previous: CampaignStatus
    open_tasks: int  # tasks still open at the move: a cancel cancels them, other moves leave them be


async def change_status(*, db: AsyncSession, campaign: Campaign, move: Move, actor: authz.Actor,
                        hand_off_to_agent: bool = False) -> StatusChange:
    """Move the campaign along its lifecycle (owner or admin). Cancelling cancels its open tasks.

    The move is one conditional UPDATE, so of two people (or one double click) moving the same campaign
    at once, the second finds it moved and is told why, instead of moving it twice.
    `hand_off_to_agent` (a marketing agent is configured): a launch is also handed to it, through the
    outbox in this transaction (`services.agent_handoff`), so the launch never waits on the agent.
    """
    authz.require_campaign_manager(actor, campaign, f"{move.value} this campaign")
    ref = campaign_ref(campaign)
    problem = refusal(campaign.status, move, ref)
    if problem:
        raise InvalidInput(problem)
    transition = LIFECYCLE[move]
    moved = await db.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.status.in_(transition.allowed_from))
        .values(status=transition.to)
        .execution_options(synchronize_session=False)
    )
    if not moved.rowcount:  # type: ignore[attr-defined]
        await db.refresh(campaign, ["status"])
        raise InvalidInput(refusal(campaign.status, move, ref) or f"{ref} just changed; try again.")
    previous = campaign.status
    campaign.status = transition.to
    open_tasks = (Task.campaign_id == campaign.id) & Task.status.in_(ACTIVE_TASK_STATUSES)
    if move is Move.CANCEL:
        cancelled = await db.execute(update(Task).where(open_tasks).values(status=TaskStatus.CANCELLED)
                                     .execution_options(synchronize_session=False))
        open_count = int(cancelled.rowcount or 0)  # type: ignore[attr-defined]
        # Nobody should be asked to sign off a campaign that will not happen.
        await db.execute(update(Approval).where(Approval.campaign_id == campaign.id,
                                                Approval.status == ApprovalStatus.PENDING)
                         .values(status=ApprovalStatus.CANCELLED).execution_options(synchronize_session=False))
    else:
        open_count = await db.scalar(select(func.count()).select_from(Task).where(open_tasks)) or 0
    audit.record(db=db, actor=actor.member.slack_user_id, action=f"campaign.{transition.done}",
                 entity_type="campaign", entity_id=campaign.id, previous=previous.value, status=transition.to.value,
                 open_tasks=open_count)
    if move is Move.LAUNCH:  # outgoing webhooks, in this transaction (`services.webhooks`)
        now = utcnow()
        await webhooks.emit(db=db, event=webhooks.Event.CAMPAIGN_LAUNCHED, campaign=campaign,
                            data={"by": actor.member.slack_user_id, "open_tasks": open_count}, now=now)
        if hand_off_to_agent:
            owner = actor.member
            if owner.id != campaign.owner_id:  # an admin launched it: the hand-off names the owner
                owner = await db.get_one(TeamMember, campaign.owner_id)
            await agent_handoff.launched(db=db, campaign=campaign, owner_slack_id=owner.slack_user_id, now=now)
    await db.flush()
    return StatusChange(campaign=campaign, move=move, previous=previous, open_tasks=open_count)


async def set_channel(*, db: AsyncSession, campaign: Campaign, channel_id: str | None, actor: authz.Actor) -> None:
    """Where the campaign's news is posted (owner or admin); None forgets the channel."""
    authz.require_campaign_manager(actor, campaign, "change its channel")
    if campaign.status in FINAL_STATUSES:
        raise InvalidInput(f"{campaign_ref(campaign)} is {campaign.status.value}; nothing can change.")
    previous, campaign.channel_id = campaign.channel_id, channel_id
    audit.record(db=db, actor=actor.member.slack_user_id, action="campaign.channel_set", entity_type="campaign",
                 entity_id=campaign.id, channel=channel_id, previous=previous)
