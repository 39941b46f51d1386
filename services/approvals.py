"""The approval workflow: request a stage, approve, reject, delegate, resubmit.

Every change first locks the campaign's row (SELECT ... FOR UPDATE; on SQLite, BEGIN IMMEDIATE already
lets one writer in at a time), so the stages of one campaign move one transition at a time and the stage
that comes next opens exactly once. A decision is also a conditional UPDATE on (id, pending, round):
a double click or a retried request changes no row the second time and reports `changed=False`.

Nothing here talks to Slack: each function returns a `Change` saying what happened, and the entry point
posts or updates the messages after the commit. Stage states are read in `services.approval_stages`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from models import Approval, ApprovalRule, ApprovalStatus, Campaign, CampaignStatus, TeamMember
from services import audit, authz, plans
from services.approval_stages import (
    StageState,
    approval_ref,
    campaign_approvals,
    forget_messages,
    group_stages,
    open_stages,
    stage_outcome,
    stage_states,
)
from services.errors import InvalidInput, NotAllowed, NotFound
from services.refs import RefKind, format_ref
from services.tasks import Context  # who acts, when, the team's holidays: the same for every change

MAX_APPROVERS = 10
MAX_REASON = 1000
MAX_STAGE_NAME = 100
CLOSED_CAMPAIGN = (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED)

__all__ = ["Change", "Context", "approve", "check_decidable", "delegate", "get_approval", "reject",
           "request_stage", "resubmit"]


@dataclass(frozen=True)
class Change:
    """What a call did, for the entry point to tell people about."""

    campaign_id: int
    stage: str
    changed: bool = True
    opened: tuple[str, ...] = ()  # stages whose requests go out now, in running order
    outcome: StageState | None = None  # PASSED or REJECTED when this change decided the stage
    campaign_approved: bool = False  # every stage has passed
    note: str | None = None  # when nothing changed: why, for the person who clicked (None: say nothing)


async def get_approval(*, db: AsyncSession, approval_id: int) -> Approval:
    approval = await db.get(Approval, approval_id)
    if approval is None:
        raise NotFound(f"There is no approval {approval_ref(approval_id)}.")
    return approval


async def request_stage(
    *, db: AsyncSession, ctx: Context, campaign_id: int, stage_name: str, approvers: Sequence[TeamMember],
    rule: ApprovalRule | None = None, due: date | None = None,
) -> Change:
    """Ask for a sign-off stage. Without approvers, a template stage goes to the members with its role."""
    campaign = await _lock(db, campaign_id)
    ref = format_ref(RefKind.CAMPAIGN, campaign.id)
    authz.require(authz.can_request_approval(ctx.actor, campaign), "Only the campaign owner or an admin can request approvals.")
    if campaign.status in CLOSED_CAMPAIGN:
        raise InvalidInput(f"{ref} is {campaign.status.value}; it needs no more sign-offs.")
    name = _clean_stage_name(stage_name)
    template = _template_stage(campaign, name)
    name = template["name"] if template else name
    rows = await campaign_approvals(db, campaign.id)
    clash = next((row for row in rows if row.stage.casefold() == name.casefold()), None)
    if clash is not None:
        raise InvalidInput(f'{ref} already has the stage "{clash.stage}" ({approval_ref(clash.id)}). '
                           f"A rejected stage comes back with `/approval resubmit {approval_ref(clash.id)}`.")
    people = list({member.id: member for member in approvers}.values()) or await _by_role(db, ref, name, template)
    if len(people) > MAX_APPROVERS:
        raise InvalidInput(f"A stage takes at most {MAX_APPROVERS} approvers; split it into stages.")
    before = open_stages(rows)
    deadline = _end_of_day(due, campaign, ctx) if due else None
    order = _order(template, rows, before)
    new_rows = [
        Approval(campaign_id=campaign.id, stage=name, stage_order=order, approver_id=person.id,
                 rule=rule or ApprovalRule(template["rule"] if template else "all"), deadline=deadline,
                 requested_by_id=ctx.actor.member.id, status=ApprovalStatus.PENDING, round=1)
        for person in people
    ]
    db.add_all(new_rows)
    await db.flush()
    for row, person in zip(new_rows, people, strict=True):
        _audit(db, ctx, row, "approval.requested", approver=person.slack_user_id, rule=row.rule.value)
    campaign.approved_at = None  # one more stage to pass: the campaign is not signed off any more
    return Change(campaign.id, name, opened=await _open_new_stages(db, ctx, campaign, before))


async def check_decidable(*, db: AsyncSession, ctx: Context, approval_id: int) -> None:
    """Raise what a decision would run into (not yours, already decided, waiting), before opening a modal."""
    approval, _, rows = await _load_for_decision(db, ctx, approval_id, lock=False)
    if approval.status is not ApprovalStatus.PENDING:
        raise InvalidInput(await _already_decided(db, approval))
    _require_open(approval, rows)


async def approve(*, db: AsyncSession, ctx: Context, approval_id: int) -> Change:
    return await _decide(db, ctx, approval_id, ApprovalStatus.APPROVED, None)


async def reject(*, db: AsyncSession, ctx: Context, approval_id: int, reason: str) -> Change:
    clean = "\n".join(line.rstrip() for line in reason.replace("\x00", "").strip().splitlines())
    if not clean:
        raise InvalidInput("Say why you reject it, so the owner knows what to change.")
    if len(clean) > MAX_REASON:
        raise InvalidInput(f"Keep the reason under {MAX_REASON + 1} characters.")
    return await _decide(db, ctx, approval_id, ApprovalStatus.REJECTED, clean)


async def delegate(*, db: AsyncSession, ctx: Context, approval_id: int, to: TeamMember) -> Change:
    """Hand an approval to someone else; the approver keeps the right to decide it too."""
    approval, campaign, rows = await _load_for_decision(db, ctx, approval_id)
    if approval.status is not ApprovalStatus.PENDING:
        return Change(campaign.id, approval.stage, changed=False, note=await _already_decided(db, approval))
    _require_open(approval, rows)
    ref = approval_ref(approval.id)
    if to.id == ctx.actor.member.id:
        raise InvalidInput("You can't delegate to yourself; pick someone else.")
    if to.id == approval.delegated_to_id:
        raise InvalidInput(f"{ref} is already delegated to {to.name}.")
    if to.id != approval.approver_id and any(row.approver_id == to.id for row in rows if row.stage == approval.stage):
        raise InvalidInput(f'{to.name} already approves "{approval.stage}" in their own right; pick someone else.')
    previous = approval.delegated_to.slack_user_id if approval.delegated_to else None
    approval.delegated_to_id = None if to.id == approval.approver_id else to.id  # back to the approver: undo
    _audit(db, ctx, approval, "approval.delegated", approver=approval.approver.slack_user_id,
           to=to.slack_user_id, previous=previous)
    await db.flush()
    return Change(campaign.id, approval.stage)


async def resubmit(
    *, db: AsyncSession, ctx: Context, campaign_id: int, stage_name: str, due: date | None = None
) -> Change:
    """Reopen a rejected stage for a new round: every approval back to pending, new requests go out."""
    campaign = await _lock(db, campaign_id)
    authz.require(authz.can_request_approval(ctx.actor, campaign), "Only the campaign owner or an admin can resubmit a stage.")
    rows = await campaign_approvals(db, campaign.id)
    stages = group_stages(rows)
    wanted = " ".join(stage_name.split()).casefold()
    stage = next((name for name in stages if name.casefold() == wanted), None)
    if stage is None:
        known = ", ".join(f'"{name}"' for name in stages) or "none yet"
        raise NotFound(f"{format_ref(RefKind.CAMPAIGN, campaign.id)} has no stage by that name (stages: {known}).")
    state = stage_states(rows)[stage][0]
    if state is not StageState.REJECTED:
        raise InvalidInput(f'"{stage}" is {state.value}; only a rejected stage can be resubmitted.')
    before = open_stages(rows)
    deadline = _end_of_day(due, campaign, ctx) if due else None
    for row in stages[stage]:
        row.round += 1
        row.status, row.decided_at, row.decided_by_id, row.comments = ApprovalStatus.PENDING, None, None, None
        if deadline is not None:
            row.deadline = deadline
        elif row.deadline is not None and row.deadline <= ctx.now:
            row.deadline = None  # a template stage gets a fresh one when it opens; a custom one goes without
        _audit(db, ctx, row, "approval.resubmitted", round=row.round)
    await forget_messages(db, campaign.id, stage)
    await db.flush()
    return Change(campaign.id, stage, opened=await _open_new_stages(db, ctx, campaign, before))


async def _decide(
    db: AsyncSession, ctx: Context, approval_id: int, status: ApprovalStatus, comments: str | None
) -> Change:
    approval, campaign, rows = await _load_for_decision(db, ctx, approval_id)
    if approval.status is not ApprovalStatus.PENDING:
        # The same answer from the same person again is a double click or a retry: nothing to say.
        repeated = approval.decided_by_id == ctx.actor.member.id and approval.status is status
        note = None if repeated else await _already_decided(db, approval)
        return Change(campaign.id, approval.stage, changed=False, note=note)
    _require_open(approval, rows)
    before = open_stages(rows)
    result = await db.execute(
        update(Approval)
        .where(Approval.id == approval.id, Approval.status == ApprovalStatus.PENDING, Approval.round == approval.round)
        .values(status=status, decided_at=ctx.now, decided_by_id=ctx.actor.member.id, comments=comments)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return Change(campaign.id, approval.stage, changed=False)
    on_behalf = approval.approver.slack_user_id if approval.approver_id != ctx.actor.member.id else None
    _audit(db, ctx, approval, f"approval.{status.value}", round=approval.round, reason=comments, on_behalf_of=on_behalf)
    stage_rows = [row for row in await campaign_approvals(db, campaign.id) if row.stage == approval.stage]
    outcome = stage_outcome(stage_rows)
    approved = False
    if outcome is not None:
        for row in stage_rows:
            if row.status is ApprovalStatus.PENDING:  # `any` passed, or someone rejected: no more answers needed
                row.status = ApprovalStatus.CANCELLED
        audit.record(db=db, actor=ctx.actor.member.slack_user_id, action=f"approval.stage_{outcome.value}",
                     entity_type="campaign", entity_id=campaign.id, stage=approval.stage, round=approval.round)
        await db.flush()
    if outcome is StageState.PASSED:
        states = stage_states(await campaign_approvals(db, campaign.id)).values()
        if all(state is StageState.PASSED for state, _ in states):
            campaign.approved_at, approved = ctx.now, True
            audit.record(db=db, actor=ctx.actor.member.slack_user_id, action="campaign.approved",
                         entity_type="campaign", entity_id=campaign.id)
    opened = await _open_new_stages(db, ctx, campaign, before)
    return Change(campaign.id, approval.stage, opened=opened, outcome=outcome, campaign_approved=approved)


async def _load_for_decision(
    db: AsyncSession, ctx: Context, approval_id: int, *, lock: bool = True
) -> tuple[Approval, Campaign, list[Approval]]:
    found = await get_approval(db=db, approval_id=approval_id)
    campaign = await _lock(db, found.campaign_id, lock=lock)
    rows = await campaign_approvals(db, campaign.id)  # read after the lock: what the last writer left
    approval = next(row for row in rows if row.id == approval_id)
    if not authz.can_decide(ctx.actor, approval):
        who = approval.approver.name + (f" or {approval.delegated_to.name}" if approval.delegated_to else "")
        raise NotAllowed(f"{approval_ref(approval.id)} is not yours to decide: it waits for {who}.")
    return approval, campaign, rows


def _require_open(approval: Approval, rows: Sequence[Approval]) -> None:
    state, waits_for = stage_states(rows)[approval.stage]
    if state is StageState.WAITING:
        raise InvalidInput(f'"{approval.stage}" waits for "{waits_for}" to pass first.')


async def _already_decided(db: AsyncSession, approval: Approval) -> str:
    ref = approval_ref(approval.id)
    if approval.status is ApprovalStatus.CANCELLED or approval.decided_by_id is None:
        return f'{ref} is no longer needed: "{approval.stage}" is already decided.'
    decider = await db.get(TeamMember, approval.decided_by_id)
    return f"{ref} was already {approval.status.value} by {decider.name if decider else 'someone'}."


async def _lock(db: AsyncSession, campaign_id: int, *, lock: bool = True) -> Campaign:
    query = (select(Campaign).where(Campaign.id == campaign_id)
             .options(selectinload(Campaign.owner), selectinload(Campaign.timeline))
             .execution_options(populate_existing=True))
    campaign = await db.scalar(query.with_for_update(of=Campaign) if lock else query)
    if campaign is None:
        raise NotFound(f"There is no campaign {format_ref(RefKind.CAMPAIGN, campaign_id)}.")
    return campaign


async def _open_new_stages(db: AsyncSession, ctx: Context, campaign: Campaign, before: set[str]) -> tuple[str, ...]:
    """The stages open now that were not before; a template stage's time to decide starts as it opens."""
    await db.flush()
    rows = await campaign_approvals(db, campaign.id)
    opened = tuple(name for name in open_stages(rows) - before)
    order = list(group_stages(rows))
    for name in sorted(opened, key=order.index):
        template = _template_stage(campaign, name)
        hours = float(template.get("allowed_hours") or 0) if template else 0.0
        for row in rows:
            if row.stage == name and row.deadline is None and hours > 0:
                row.deadline = plans.campaign_calendar(campaign.owner, ctx.holidays).add_working_hours(ctx.now, hours)
    await db.flush()
    return tuple(sorted(opened, key=order.index))


def _order(template: dict[str, Any] | None, rows: Sequence[Approval], open_now: set[str]) -> int:
    """Template stages keep the template's order, others go after every stage asked for so far.

    A stage never jumps ahead of one already open (its approvers have the buttons): it runs beside it.
    """
    order = int(template.get("order") or 1) if template else max((row.stage_order for row in rows), default=0) + 1
    open_orders = [row.stage_order for row in rows if row.stage in open_now]
    return max(order, min(open_orders)) if open_orders else order


def _template_stage(campaign: Campaign, name: str) -> dict[str, Any] | None:
    wanted = " ".join(name.split()).casefold()
    stages = campaign.timeline.approval_stages if campaign.timeline else []
    return next((stage for stage in stages if " ".join(str(stage.get("name", "")).split()).casefold() == wanted), None)


async def _by_role(db: AsyncSession, ref: str, name: str, template: dict[str, Any] | None) -> list[TeamMember]:
    role = " ".join(str((template or {}).get("approver_role") or "").split())
    if not role:
        raise InvalidInput(f'Who should approve "{name}"? Mention them: `/approval request {ref} "{name}" @dana @lee`.')
    members = await db.scalars(select(TeamMember).where(TeamMember.is_active.is_(True), TeamMember.role.is_not(None))
                               .order_by(TeamMember.id))
    found = [member for member in members if " ".join((member.role or "").split()).casefold() == role.casefold()]
    if not found:
        raise InvalidInput(f'Nobody on the team has the role "{role}" that "{name}" asks for. Mention the approvers, '
                           f"or give someone the role: `/team add @dana role={role}`.")
    return found[:MAX_APPROVERS]


def _clean_stage_name(text: str) -> str:
    name = " ".join(text.replace("\x00", "").split())
    if not name:
        raise InvalidInput('Name the stage: `/approval request CM-12 "Legal review" @dana`.')
    if len(name) > MAX_STAGE_NAME:
        raise InvalidInput(f"A stage name is at most {MAX_STAGE_NAME} characters.")
    return name


def _end_of_day(due: date, campaign: Campaign, ctx: Context) -> datetime:
    if due < ctx.now.astimezone(ZoneInfo(ctx.actor.member.timezone)).date():
        raise InvalidInput(f"{due.isoformat()} is in the past; pick today or later.")
    return datetime.combine(due, time(17, 0), tzinfo=ZoneInfo(campaign.owner.timezone)).astimezone(UTC)


def _audit(db: AsyncSession, ctx: Context, approval: Approval, action: str, **details: object) -> None:
    audit.record(db=db, actor=ctx.actor.member.slack_user_id, action=action, entity_type="approval",
                 entity_id=approval.id, campaign_id=approval.campaign_id, stage=approval.stage, **details)
