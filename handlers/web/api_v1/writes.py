"""The API's changes: create a campaign or a task, move a campaign, update and comment on a task, decide
an approval. Each is one transaction (`work.changing`) through the same services, and the same
`services.authz` rules, as the Slack command that does it; a refusal there is a refusal here.
"""

from __future__ import annotations

import re

from aiohttp import web
from pydantic import BaseModel

from handlers.web.api_v1 import schemas as s
from handlers.web.api_v1.errors import ApiError, parsed
from handlers.web.api_v1.registry import Answer, Call, route
from handlers.web.api_v1.work import ApiWork, changing
from models import ApprovalRule, TeamMember
from services import api_idempotency, api_queries, approvals, campaigns, staffing, tasks, team
from services.errors import DomainError
from services.fields import InvalidField
from services.planning.templates import parse_duration
from services.refs import RefKind, format_ref, parse_ref

IDEMPOTENCY_HEADER = "Idempotency-Key"


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if len(key) > api_idempotency.MAX_KEY or not re.fullmatch(s.IDEMPOTENCY_KEY_PATTERN, key):
        raise ApiError(422, "invalid", f"`{IDEMPOTENCY_HEADER}` is 1 to {api_idempotency.MAX_KEY} printable ASCII characters.",
                       fields={IDEMPOTENCY_HEADER: f"1 to {api_idempotency.MAX_KEY} printable ASCII characters"})
    return key


async def _member(work: ApiWork, slack_user_id: str, field: str) -> TeamMember:
    """Someone already on the team (as `/campaign new owner=` asks)."""
    if slack_user_id == work.member.slack_user_id:
        return work.member
    found = await team.find_member(db=work.db, slack_user_id=slack_user_id)
    if found is None or not found.is_active:
        raise InvalidField(field, f"{slack_user_id} is not on the team.")
    return found


@route("POST", "/campaigns", "Create a campaign and its plan from a template", response=s.CampaignOut,
       body=s.CampaignCreate, scope="write", status=201, tag="campaigns", headers=(IDEMPOTENCY_HEADER,))
async def create_campaign(call: Call) -> Answer:
    new: s.CampaignCreate = call.body
    key = _idempotency_key(call.request)
    claim = (api_idempotency.claim_of(token_id=call.caller.token_id, key=key, request=new.model_dump_json())
             if key else None)

    async def body(work: ApiWork) -> tuple[s.CampaignOut, bool]:
        made = await api_idempotency.claim(db=work.db, claim=claim, now=work.now) if claim is not None else None
        if made is not None:
            return s.from_campaign(await campaigns.get_campaign(db=work.db, campaign_id=made)), True
        try:
            template = work.deps.templates.resolve(new.template)
        except DomainError as error:
            raise InvalidField("template", str(error)) from None
        owner = await _member(work, new.owner, "owner") if new.owner else work.member
        plan = await campaigns.create_campaign(db=work.db, name=new.name, template=template,
                                               launch_date=new.launch_date, owner=owner, now=work.now,
                                               holidays=work.holidays, created_by=work.member, announce=True)
        if claim is not None:
            await api_idempotency.record(db=work.db, claim=claim, campaign_id=plan.campaign.id)
        return s.from_campaign(plan.campaign), False

    return _created(*await changing(call, body))


def _created(made: BaseModel, replayed: bool) -> Answer:
    """201 with what a create made; a retried create (same Idempotency-Key) says it was a replay."""
    return Answer(made, status=201, headers={"Idempotent-Replayed": "true"} if replayed else {})


@route("POST", "/campaigns/{ref}/lifecycle", "Launch, pause, resume, complete or cancel a campaign",
       response=s.CampaignOut, body=s.LifecycleMove, ref_kind=RefKind.CAMPAIGN, scope="write", tag="campaigns")
async def move_campaign(call: Call) -> s.CampaignOut:
    move: s.LifecycleMove = call.body
    assert call.ref_id is not None
    campaign_id = call.ref_id

    async def body(work: ApiWork) -> s.CampaignOut:
        campaign = await campaigns.get_campaign(db=work.db, campaign_id=campaign_id)
        change = await campaigns.change_status(db=work.db, campaign=campaign, move=move.action, actor=work.actor,
                                               hand_off_to_agent=work.deps.settings.marketing_agent_url is not None)
        return s.from_campaign(change.campaign)

    return await changing(call, body)


def task_ref(text: str) -> int:
    return parse_ref(text, RefKind.TASK)


def campaign_ref(text: str) -> int:
    return parse_ref(text, RefKind.CAMPAIGN)


def _task_refs(refs: list[str], field: str) -> str:
    for ref in refs:
        parsed(field, task_ref, ref)
    return ", ".join(refs)


@route("POST", "/tasks", "Add a task to a campaign (its team may) and re-plan", response=s.TaskOut,
       body=s.TaskCreate, scope="write", status=201, tag="tasks", headers=(IDEMPOTENCY_HEADER,))
async def create_task(call: Call) -> Answer:
    new: s.TaskCreate = call.body
    key = _idempotency_key(call.request)
    # Kept the way a Slack form's submission is (`form_submissions`), per token, the key hashed.
    claim_id = f"api:{call.caller.token_id}:{api_idempotency.digest(key)}" if key else None
    campaign_id = parsed("campaign", campaign_ref, new.campaign)
    after, before = _task_refs(new.after, "after"), _task_refs(new.before, "before")

    async def body(work: ApiWork) -> tuple[s.TaskOut, bool]:
        assignee = await _member(work, new.assignee, "assignee") if new.assignee else None
        created = await tasks.create_task(
            db=work.db, ctx=work.task_context(), submission_id=claim_id,
            new=tasks.NewTask(campaign_id=campaign_id, title=new.title, description=new.description,
                              estimate=new.estimate, due=new.due, assignee=assignee, priority=new.priority,
                              after=after, before=before))
        return s.from_task(created.task, created.task.assignee), created.repeated

    return _created(*await changing(call, body))


@route("PATCH", "/tasks/{ref}", "Change a task: assignee, estimate, due date, status (start, done, block)",
       response=s.TaskOut, body=s.TaskUpdate, ref_kind=RefKind.TASK, scope="write", tag="tasks")
async def update_task(call: Call) -> s.TaskOut:
    change: s.TaskUpdate = call.body
    assert call.ref_id is not None
    task_id = call.ref_id
    if not change.model_fields_set:
        raise ApiError(422, "invalid", "Say what to change.", fields={"body": "Give at least one field."})
    if change.status == "blocked" and not change.reason:
        raise ApiError(422, "invalid", "`reason`: say what it is waiting for.", fields={"reason": "Required to block."})
    hours = None
    if change.estimate is not None:
        try:
            hours = parse_duration(change.estimate)
        except ValueError as error:
            raise InvalidField("estimate", str(error)) from None

    async def body(work: ApiWork) -> s.TaskOut:
        task = await tasks.get_task(db=work.db, task_id=task_id)
        ctx = work.task_context()
        if change.assignee is not None:
            member = await _member(work, change.assignee, "assignee")
            await staffing.assign_to(db=work.db, task=task, member=member, actor=work.actor)
        if hours is not None:
            await tasks.reestimate(db=work.db, task=task, hours=hours, ctx=ctx)
        if change.due is not None:
            await tasks.set_due(db=work.db, task=task, due=change.due, ctx=ctx)
        if change.status == "in_progress":
            await tasks.start(db=work.db, task=task, ctx=ctx)
        elif change.status == "done":
            try:
                await tasks.complete(db=work.db, task=task, ctx=ctx, anyway=change.anyway)
            except tasks.DeliverableMissing as missing:
                raise ApiError(409, "deliverable_missing", f"{format_ref(RefKind.TASK, task_id)} hands over "
                               f"{missing.what}, and none is attached (in Slack: `/campaign asset add`). Send "
                               f'`"anyway": true` to finish it without.') from None
        elif change.status == "blocked":
            await tasks.block(db=work.db, task=task, reason=change.reason or "", ctx=ctx)
        await work.db.flush()
        await work.db.refresh(task, ["assignee"])
        return s.from_task(task, task.assignee)

    return await changing(call, body)


@route("POST", "/tasks/{ref}/comments", "Comment on a task (the campaign's team may)", response=s.CommentOut,
       body=s.CommentCreate, ref_kind=RefKind.TASK, scope="write", status=201, tag="tasks")
async def comment_on_task(call: Call) -> s.CommentOut:
    new: s.CommentCreate = call.body
    assert call.ref_id is not None
    task_id = call.ref_id

    async def body(work: ApiWork) -> s.CommentOut:
        task = await tasks.get_task(db=work.db, task_id=task_id)
        comment = await tasks.add_comment(db=work.db, task=task, body=new.body, ctx=work.task_context())
        await work.db.refresh(comment, ["created_at"])
        return s.from_comment(comment, task, work.member)

    return await changing(call, body)


@route("POST", "/approvals/{ref}/decision", "Approve or reject an approval (its approver or delegate may)",
       response=s.DecisionOut, body=s.Decision, ref_kind=RefKind.APPROVAL, scope="write", tag="approvals")
async def decide(call: Call) -> s.DecisionOut:
    decision: s.Decision = call.body
    assert call.ref_id is not None
    approval_id = call.ref_id
    if decision.decision == "reject" and not decision.reason:
        raise ApiError(422, "invalid", "`reason`: say why, so the owner knows what to change.",
                       fields={"reason": "Required to reject."})

    async def body(work: ApiWork) -> s.DecisionOut:
        ctx = work.task_context()
        if decision.decision == "approve":
            change = await approvals.approve(db=work.db, ctx=ctx, approval_id=approval_id)
        else:
            change = await approvals.reject(db=work.db, ctx=ctx, approval_id=approval_id, reason=decision.reason)
        return s.DecisionOut(approval=format_ref(RefKind.APPROVAL, approval_id), stage=change.stage,
                             changed=change.changed, outcome=change.outcome.value if change.outcome else None,
                             campaign_approved=change.campaign_approved, note=change.note)

    return await changing(call, body)


@route("POST", "/approvals", "Request a sign-off stage for a campaign (its owner may)", response=s.StageRequested,
       body=s.ApprovalRequest, scope="write", status=201, tag="approvals")
async def request_approval(call: Call) -> s.StageRequested:
    new: s.ApprovalRequest = call.body
    campaign_id = parsed("campaign", campaign_ref, new.campaign)

    async def body(work: ApiWork) -> s.StageRequested:
        # As `/approval request`, but only members already on the team (Slack would add a newcomer, with
        # the profile it fetches from Slack first; the API has no Slack to ask).
        approvers = [await _member(work, slack_user_id, "approvers") for slack_user_id in dict.fromkeys(new.approvers)]
        change = await approvals.request_stage(
            db=work.db, ctx=work.task_context(), campaign_id=campaign_id, stage_name=new.stage, approvers=approvers,
            rule=ApprovalRule(new.rule) if new.rule else None, due=new.deadline)
        campaign = await campaigns.get_campaign(db=work.db, campaign_id=change.campaign_id)
        rows = await api_queries.stage_approvals(db=work.db, campaign_id=change.campaign_id, stage=change.stage)
        return s.StageRequested(campaign=format_ref(RefKind.CAMPAIGN, change.campaign_id), stage=change.stage,
                                approvals=[s.from_approval(row, campaign) for row in rows], opened=list(change.opened))

    return await changing(call, body)
