"""The approval workflow: request a stage, approve, reject, delegate, resubmit.

Every change first locks the campaign's row (SELECT ... FOR UPDATE; on SQLite, BEGIN IMMEDIATE already
lets one writer in at a time), so the stages of one campaign move one transition at a time and the stage
that comes next opens exactly once. A decision is also a conditional UPDATE on (id, pending, round):
a double click or a retried request changes no row the second time and reports `changed=False`.

Nothing here talks to Slack: the messages a change owes people (the requests of the stages it opened,
updates of the copies already sent, the owner's news) are outbox rows written in its transaction
(`services.approval_notices`), handed to delivery after the commit. Each function returns a `Change`
saying what happened, for the entry point's reply. Stage states are read in `services.approval_stages`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from models import Approval, ApprovalRule, ApprovalStatus, Campaign, CampaignStatus, TeamMember, Timeline
from services import approval_notices, audit, authz, plan_alerts, plans, signoffs, webhooks
from services.approval_stages import (
    CampaignStages,
    StageState,
    TemplateStage,
    all_signed_off,
    approval_ref,
    campaign_approvals,
    campaign_stages,
    forget_messages,
    group_stages,
    stage_outcome,
)
from services.campaign_content import ContentErrors, campaign_content
from services.campaigns import lock_campaign
from services.errors import InvalidInput, NotAllowed, NotFound
from services.refs import RefKind, format_ref
from services.tasks import Context  # who acts, when, the team's holidays: the same for every change

MAX_APPROVERS = signoffs.MAX_APPROVERS
MAX_REASON = 1000
MAX_STAGE_NAME = 100
CLOSED_CAMPAIGN = (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED)

__all__ = ["Change", "Context", "approve", "check_decidable", "delegate", "get_approval", "reject",
           "request_stage", "resubmit", "skip_stage"]


@dataclass(frozen=True)
class Change:
    """What a call did, for the entry point to tell people about."""

    campaign_id: int
    stage: str
    changed: bool = True
    opened: tuple[str, ...] = ()  # stages whose requests go out now, in running order
    outcome: StageState | None = None  # PASSED, REJECTED or SKIPPED when this change settled the stage
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
    """Ask for a sign-off stage. Without approvers, a template stage goes to the members with its role.

    Refused (`ContentErrors`, listing them) while the campaign's content checks find errors about the stage."""
    campaign = await _owners_change(db, ctx, campaign_id, "request approvals")
    ref = format_ref(RefKind.CAMPAIGN, campaign.id)
    name = _clean_stage_name(stage_name)
    stages = await campaign_stages(db, campaign.id)
    template = _template_stage(stages, name)
    name = template.name if template else name
    if template is not None and template.skipped:
        raise InvalidInput(f'"{name}" was skipped ({template.skipped}); it needs no sign-off.')
    clash = next((row for row in stages.rows if row.stage.casefold() == name.casefold()), None)
    if clash is not None:
        raise InvalidInput(f'{ref} already has the stage "{clash.stage}" ({approval_ref(clash.id)}). '
                           f"A rejected stage comes back with `/approval resubmit {approval_ref(clash.id)}`.")
    # Approvers sign off on what they can read: content errors are fixed first (a template stage would be held).
    errors = (await campaign_content(db, campaign.id)).errors(template.name if template else None)
    if errors:
        raise ContentErrors(campaign.id, name, errors)
    people = list({member.id: member for member in approvers}.values()) or await _by_role(db, ref, name, template)
    if len(people) > MAX_APPROVERS:
        raise InvalidInput(f"A stage takes at most {MAX_APPROVERS} approvers; split it into stages.")
    before = stages.open_names()
    deadline = _end_of_day(due, campaign, ctx) if due else None
    order = _order(template, stages.rows, before)
    new_rows = [
        Approval(campaign_id=campaign.id, stage=name, stage_order=order, approver_id=person.id,
                 rule=rule or (template.rule if template else ApprovalRule.ALL), deadline=deadline,
                 requested_by_id=ctx.actor.member.id, status=ApprovalStatus.PENDING, round=1)
        for person in people
    ]
    db.add_all(new_rows)
    await db.flush()
    for row, person in zip(new_rows, people, strict=True):
        _audit(db, ctx, row, "approval.requested", approver=person.slack_user_id, rule=row.rule.value)
    campaign.approved_at = None  # one more stage to pass: the campaign is not signed off any more
    opened = await _open_ready(db, ctx, campaign, before)
    if opened:
        await _replan(db, ctx, campaign, f'"{name}" opened')
    return Change(campaign.id, name, opened=opened)


async def check_decidable(*, db: AsyncSession, ctx: Context, approval_id: int) -> None:
    """Raise what a decision would run into (not yours, already decided, waiting), before opening a modal."""
    approval, _, stages = await _load_for_decision(db, ctx, approval_id, lock=False)
    if approval.status is not ApprovalStatus.PENDING:
        raise InvalidInput(await _already_decided(db, approval))
    _require_open(approval, stages)


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
    approval, campaign, stages = await _load_for_decision(db, ctx, approval_id)
    if approval.status is not ApprovalStatus.PENDING:
        return Change(campaign.id, approval.stage, changed=False, note=await _already_decided(db, approval))
    _require_open(approval, stages)
    ref = approval_ref(approval.id)
    if to.id == ctx.actor.member.id:
        raise InvalidInput("You can't delegate to yourself; pick someone else.")
    if to.id == approval.delegated_to_id:
        raise InvalidInput(f"{ref} is already delegated to {to.name}.")
    if to.id != approval.approver_id and any(row.approver_id == to.id for row in stages.rows if row.stage == approval.stage):
        raise InvalidInput(f'{to.name} already approves "{approval.stage}" in their own right; pick someone else.')
    previous = approval.delegated_to.slack_user_id if approval.delegated_to else None
    approval.delegated_to_id = None if to.id == approval.approver_id else to.id  # back to the approver: undo
    _audit(db, ctx, approval, "approval.delegated", approver=approval.approver.slack_user_id,
           to=to.slack_user_id, previous=previous)
    await db.flush()
    if approval.delegated_to_id is not None:
        await approval_notices.request_delegate(db=db, campaign=campaign, approval=approval, to=to, now=ctx.now)
    await approval_notices.refresh_copies(db=db, campaign_id=campaign.id, stage=approval.stage, now=ctx.now)
    return Change(campaign.id, approval.stage)


async def resubmit(
    *, db: AsyncSession, ctx: Context, campaign_id: int, stage_name: str, due: date | None = None
) -> Change:
    """Reopen a rejected stage for a new round: every approval back to pending, new requests go out."""
    campaign = await _owners_change(db, ctx, campaign_id, "resubmit a stage")
    stages = await campaign_stages(db, campaign.id)
    groups = group_stages(stages.rows)
    wanted = " ".join(stage_name.split()).casefold()
    stage = next((name for name in groups if name.casefold() == wanted), None)
    if stage is None:
        known = ", ".join(f'"{name}"' for name in groups) or "none yet"
        raise NotFound(f"{format_ref(RefKind.CAMPAIGN, campaign.id)} has no stage by that name (stages: {known}).")
    state = stages.states[stage].state
    if state is not StageState.REJECTED:
        raise InvalidInput(f'"{stage}" is {state.value}; only a rejected stage can be resubmitted.')
    before = stages.open_names()
    deadline = _end_of_day(due, campaign, ctx) if due else None
    for row in groups[stage]:
        row.round += 1
        row.status, row.decided_at, row.decided_by_id, row.comments = ApprovalStatus.PENDING, None, None, None
        if deadline is not None:
            row.deadline = deadline
        elif row.deadline is not None and row.deadline <= ctx.now:
            row.deadline = None  # a template stage gets a fresh one when it opens; a custom one goes without
        _audit(db, ctx, row, "approval.resubmitted", round=row.round)
    await forget_messages(db, campaign.id, stage)
    await db.flush()
    opened = await _open_ready(db, ctx, campaign, before)
    await _replan(db, ctx, campaign, f'"{stage}" resubmitted')
    return Change(campaign.id, stage, opened=opened)


async def _decide(
    db: AsyncSession, ctx: Context, approval_id: int, status: ApprovalStatus, comments: str | None
) -> Change:
    approval, campaign, stages = await _load_for_decision(db, ctx, approval_id)
    if approval.status is not ApprovalStatus.PENDING:
        # The same answer from the same person again is a double click or a retry: nothing to say.
        repeated = approval.decided_by_id == ctx.actor.member.id and approval.status is status
        note = None if repeated else await _already_decided(db, approval)
        return Change(campaign.id, approval.stage, changed=False, note=note)
    _require_open(approval, stages)
    before = stages.open_names()
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
    if outcome is not None:
        for row in stage_rows:
            if row.status is ApprovalStatus.PENDING:  # `any` passed, or someone rejected: no more answers needed
                row.status = ApprovalStatus.CANCELLED
        audit.record(db=db, actor=ctx.actor.member.slack_user_id, action=f"approval.stage_{outcome.value}",
                     entity_type="campaign", entity_id=campaign.id, stage=approval.stage, round=approval.round)
        await db.flush()
    await webhooks.emit(db=db, event=webhooks.Event.APPROVAL_DECIDED, campaign=campaign, now=ctx.now, data={
        "approval": {"id": approval.id, "ref": approval_ref(approval.id), "stage": approval.stage, "round": approval.round},
        "decision": status.value,
        "stage_outcome": outcome.value if outcome else None, "by": ctx.actor.member.slack_user_id})
    opened = await _open_ready(db, ctx, campaign, before)  # a pass may let the next stages open
    approved = outcome is StageState.PASSED and await _mark_if_signed_off(db, ctx, campaign)
    await approval_notices.refresh_copies(db=db, campaign_id=campaign.id, stage=approval.stage, now=ctx.now)
    if outcome is not None:
        await approval_notices.tell_owner(db=db, campaign=campaign, now=ctx.now, outcome=approval_notices.StageOutcome(
            campaign_id=campaign.id, campaign_name=campaign.name, stage=approval.stage, round=approval.round,
            outcome=outcome, decided_by=ctx.actor.member.slack_user_id, approval_id=approval.id,
            reason=comments if outcome is StageState.REJECTED else None, campaign_approved=approved, opened=opened))
        await _replan(db, ctx, campaign, f'"{approval.stage}" {outcome.value}')
    return Change(campaign.id, approval.stage, opened=opened, outcome=outcome, campaign_approved=approved)


async def skip_stage(
    *, db: AsyncSession, ctx: Context, campaign_id: int, stage_name: str, reason: str = ""
) -> Change:
    """Take a template stage out of the campaign's sign-off; the stages after it stop waiting for it."""
    campaign = await _owners_change(db, ctx, campaign_id, "skip a stage")
    ref = format_ref(RefKind.CAMPAIGN, campaign.id)
    stages = await campaign_stages(db, campaign.id)
    spec = _template_stage(stages, _clean_stage_name(stage_name))
    if spec is None:
        known = ", ".join(f'"{stage.name}"' for stage in stages.template) or "none"
        raise NotFound(f"{ref} has no template stage by that name (template stages: {known}). "
                       "A stage asked for with `/approval request` is not skipped: decide it.")
    state = stages.states[spec.name].state
    if state in (StageState.PASSED, StageState.SKIPPED):
        raise InvalidInput(f'"{spec.name}" is already {state.value}.')
    why = " ".join(reason.replace("\x00", "").split())[:MAX_REASON]
    skipped = f"skipped by {ctx.actor.member.name}" + (f": {why}" if why else "")
    timeline = await db.scalar(select(Timeline).where(Timeline.campaign_id == campaign.id))
    assert timeline is not None  # a template stage lives in the timeline
    # A new list, so the JSON column is seen as changed.
    timeline.approval_stages = [{**item, "skipped": skipped} if item.get("name") == spec.name else item
                                for item in timeline.approval_stages]
    for row in stages.rows:
        if row.stage == spec.name and row.status is ApprovalStatus.PENDING:
            row.status = ApprovalStatus.CANCELLED
    audit.record(db=db, actor=ctx.actor.member.slack_user_id, action="approval.stage_skipped",
                 entity_type="campaign", entity_id=campaign.id, stage=spec.name, reason=why or None)
    opened = await _open_ready(db, ctx, campaign, stages.open_names())
    approved = await _mark_if_signed_off(db, ctx, campaign)
    await approval_notices.refresh_copies(db=db, campaign_id=campaign.id, stage=spec.name, now=ctx.now)
    if ctx.actor.member.id != campaign.owner_id:  # an admin skipped it: the owner did not see the reply
        round_ = max((row.round for row in stages.rows if row.stage == spec.name), default=0)
        await approval_notices.tell_owner(db=db, campaign=campaign, now=ctx.now, outcome=approval_notices.StageOutcome(
            campaign_id=campaign.id, campaign_name=campaign.name, stage=spec.name, round=round_,
            outcome=StageState.SKIPPED, decided_by=ctx.actor.member.slack_user_id, reason=why or None,
            campaign_approved=approved, opened=opened))
    await _replan(db, ctx, campaign, f'"{spec.name}" skipped')
    return Change(campaign.id, spec.name, opened=opened, outcome=StageState.SKIPPED, campaign_approved=approved)


async def _mark_if_signed_off(db: AsyncSession, ctx: Context, campaign: Campaign) -> bool:
    """Mark the campaign approved when every stage, template and ad hoc, has passed or been skipped."""
    if campaign.approved_at is not None or not all_signed_off((await campaign_stages(db, campaign.id)).states):
        return False
    campaign.approved_at = ctx.now
    audit.record(db=db, actor=ctx.actor.member.slack_user_id, action="campaign.approved",
                 entity_type="campaign", entity_id=campaign.id)
    return True


async def _load_for_decision(
    db: AsyncSession, ctx: Context, approval_id: int, *, lock: bool = True
) -> tuple[Approval, Campaign, CampaignStages]:
    found = await get_approval(db=db, approval_id=approval_id)
    campaign = await _lock(db, found.campaign_id, lock=lock)
    stages = await campaign_stages(db, campaign.id)  # read after the lock: what the last writer left
    approval = next(row for row in stages.rows if row.id == approval_id)
    if not authz.can_decide(ctx.actor, approval):
        who = approval.approver.name + (f" or {approval.delegated_to.name}" if approval.delegated_to else "")
        raise NotAllowed(f"{approval_ref(approval.id)} is not yours to decide: it waits for {who}.")
    return approval, campaign, stages


def _require_open(approval: Approval, stages: CampaignStages) -> None:
    status = stages.states[approval.stage]
    if status.state is StageState.WAITING and status.waits_for_task:
        raise InvalidInput(f'"{approval.stage}" opens when {status.waits_for_task} is done.')
    if status.state is StageState.WAITING:
        raise InvalidInput(f'"{approval.stage}" waits for "{status.waits_for}" to pass first.')


async def _already_decided(db: AsyncSession, approval: Approval) -> str:
    ref = approval_ref(approval.id)
    if approval.status is ApprovalStatus.CANCELLED or approval.decided_by_id is None:
        return f'{ref} is no longer needed: "{approval.stage}" is already decided.'
    decider = await db.get(TeamMember, approval.decided_by_id)
    return f"{ref} was already {approval.status.value} by {decider.name if decider else 'someone'}."


async def _owners_change(db: AsyncSession, ctx: Context, campaign_id: int, doing: str) -> Campaign:
    """Lock the campaign for a change to its sign-off that only its owner or an admin may make."""
    campaign = await _lock(db, campaign_id)
    authz.require(authz.can_request_approval(ctx.actor, campaign), f"Only the campaign owner or an admin can {doing}.")
    if campaign.status in CLOSED_CAMPAIGN:
        raise InvalidInput(f"{format_ref(RefKind.CAMPAIGN, campaign.id)} is {campaign.status.value}; "
                           "it needs no more sign-offs.")
    return campaign


async def _lock(db: AsyncSession, campaign_id: int, *, lock: bool = True) -> Campaign:
    if lock:
        return await lock_campaign(db, campaign_id)
    campaign = await db.scalar(select(Campaign).where(Campaign.id == campaign_id).options(joinedload(Campaign.owner)))
    if campaign is None:
        raise NotFound(f"There is no campaign {format_ref(RefKind.CAMPAIGN, campaign_id)}.")
    return campaign


async def _open_ready(db: AsyncSession, ctx: Context, campaign: Campaign, before: set[str]) -> tuple[str, ...]:
    return await signoffs.open_ready(db=db, campaign=campaign, before=before, now=ctx.now, holidays=ctx.holidays,
                                     actor_slack_id=ctx.actor.member.slack_user_id)


async def _replan(db: AsyncSession, ctx: Context, campaign: Campaign, because: str) -> None:
    """A sign-off moved: the work that waits for it moves too (earlier when it passed in time, later when it
    came late), and the owner hears what the slip costs, as after a late task."""
    plan = await plans.replan(db=db, campaign=campaign, now=ctx.now, reason=because, holidays=ctx.holidays)
    await plan_alerts.write(db=db, plan=plan, because=because, now=ctx.now)


def _order(template: TemplateStage | None, rows: Sequence[Approval], open_now: set[str]) -> int:
    """Template stages keep the template's order, others go after every stage asked for so far.

    A stage never jumps ahead of one already open (its approvers have the buttons): it runs beside it.
    """
    order = template.order if template else max((row.stage_order for row in rows), default=0) + 1
    open_orders = [row.stage_order for row in rows if row.stage in open_now]
    return max(order, min(open_orders)) if open_orders else order


def _template_stage(stages: CampaignStages, name: str) -> TemplateStage | None:
    wanted = " ".join(name.split()).casefold()
    return next((spec for spec in stages.template if " ".join(spec.name.split()).casefold() == wanted), None)


async def _by_role(db: AsyncSession, ref: str, name: str, template: TemplateStage | None) -> list[TeamMember]:
    role = template.approver_role if template else ""
    if not role:
        raise InvalidInput(f'Who should approve "{name}"? Mention them: `/approval request {ref} "{name}" @dana @lee`.')
    found = await signoffs.members_with_role(db, role)
    if not found:
        raise InvalidInput(f'Nobody on the team has the role "{role}" that "{name}" asks for. Mention the approvers, '
                           f"or give someone the role: `/team add @dana role={role}`.")
    return found


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
