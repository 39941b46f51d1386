"""The API's reads: campaigns, a campaign's plan, tasks, the team and the approvals waiting on the caller.

Everyone on the team reads everything here, as in Slack; each read is one reading unit of work.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from handlers.web.api_v1 import schemas as s
from handlers.web.api_v1.errors import ApiError
from handlers.web.api_v1.registry import Call, route
from handlers.web.api_v1.work import ApiWork, reading
from services import api_queries, campaigns, plans, tasks, team
from services import dashboard_params as params
from services.dashboard_metrics import metrics
from services.dashboard_schedule import CARDS_PER_DAY_IN_WEEK, WEEK_DAYS, schedule
from services.errors import DomainError
from services.refs import RefKind, format_ref, parse_ref


def _cursor(text: str | None, shape: str) -> list[object] | None:
    if text is None:
        return None
    try:
        after = s.decode_cursor(text)
        if shape == "campaign":
            date.fromisoformat(str(after[0]))
            int(str(after[1]))
        else:
            int(str(after[0]))
    except (ValueError, IndexError):
        raise ApiError(422, "invalid", "`cursor`: not a cursor this API gave out.",
                       fields={"cursor": "Not a cursor this API gave out; start again without it."}) from None
    return after


async def _member_id(work: ApiWork, slack_user_id: str | None) -> int | None:
    """The member with that Slack id; -1 (matches nothing) for someone not on the team."""
    if slack_user_id is None:
        return None
    member = await team.find_member(db=work.db, slack_user_id=slack_user_id)
    return member.id if member is not None else -1


@route("GET", "/campaigns", "List campaigns, soonest launch first", response=s.CampaignPage, query=s.CampaignQuery,
       tag="campaigns")
async def list_campaigns(call: Call) -> s.CampaignPage:
    query: s.CampaignQuery = call.query
    after = _cursor(query.cursor, "campaign")
    statuses = campaigns.parse_status_filter(query.status)

    async def body(work: ApiWork) -> s.CampaignPage:
        page = await api_queries.campaign_page(
            db=work.db, statuses=statuses, owner_id=await _member_id(work, query.owner), template=query.template,
            after=(date.fromisoformat(str(after[0])), int(str(after[1]))) if after else None, limit=query.limit)
        cursor = s.encode_cursor([page.next_after[0].isoformat(), page.next_after[1]]) if page.next_after else None
        return s.CampaignPage(items=[s.from_campaign(c) for c in page.campaigns], next_cursor=cursor)

    return await reading(call, body)


@route("GET", "/campaigns/{ref}", "One campaign", response=s.CampaignOut, ref_kind=RefKind.CAMPAIGN, tag="campaigns")
async def show_campaign(call: Call) -> s.CampaignOut:
    assert call.ref_id is not None
    campaign_id = call.ref_id

    async def body(work: ApiWork) -> s.CampaignOut:
        return s.from_campaign(await campaigns.get_campaign(db=work.db, campaign_id=campaign_id))

    return await reading(call, body)


@route("GET", "/campaigns/{ref}/plan", "A campaign's plan: critical path, buffer, projected launch",
       response=s.PlanOut, ref_kind=RefKind.CAMPAIGN, tag="campaigns")
async def show_plan(call: Call) -> s.PlanOut:
    assert call.ref_id is not None
    campaign_id = call.ref_id

    async def body(work: ApiWork) -> s.PlanOut:
        campaign = await campaigns.get_campaign(db=work.db, campaign_id=campaign_id)
        plan = await plans.load_plan(db=work.db, campaign=campaign)
        if plan is None:
            raise ApiError(404, "not_found", f"{format_ref(RefKind.CAMPAIGN, campaign_id)} has no plan yet.")
        return s.from_plan(plan)

    return await reading(call, body)


@route("GET", "/tasks", "List tasks, oldest first", response=s.TaskPage, query=s.TaskQuery, tag="tasks")
async def list_tasks(call: Call) -> s.TaskPage:
    query: s.TaskQuery = call.query
    after = _cursor(query.cursor, "task")
    campaign_id = _campaign_filter(query.campaign)

    async def body(work: ApiWork) -> s.TaskPage:
        page = await api_queries.task_page(
            db=work.db, campaign_id=campaign_id, assignee_id=await _member_id(work, query.assignee),
            status=query.status, after=int(str(after[0])) if after else None, limit=query.limit)
        cursor = s.encode_cursor([page.next_after]) if page.next_after is not None else None
        return s.TaskPage(items=[s.from_task(t, t.assignee) for t in page.tasks], next_cursor=cursor)

    return await reading(call, body)


@route("GET", "/tasks/{ref}", "One task", response=s.TaskOut, ref_kind=RefKind.TASK, tag="tasks")
async def show_task(call: Call) -> s.TaskOut:
    assert call.ref_id is not None
    task_id = call.ref_id

    async def body(work: ApiWork) -> s.TaskOut:
        task = await tasks.get_task(db=work.db, task_id=task_id)
        return s.from_task(task, task.assignee)

    return await reading(call, body)


@route("GET", "/team", "The team: active members and their open tasks", response=s.TeamList, tag="team")
async def list_team(call: Call) -> s.TeamList:
    async def body(work: ApiWork) -> s.TeamList:
        loads = await team.list_members(db=work.db)
        return s.TeamList(items=[s.from_member(load.member, load.active_tasks) for load in loads])

    return await reading(call, body)


@route("GET", "/approvals/mine", "Approvals waiting on the token's member", response=s.ApprovalList, tag="approvals")
async def my_approvals(call: Call) -> s.ApprovalList:
    member_id = call.caller.member.id

    async def body(work: ApiWork) -> s.ApprovalList:
        rows = await api_queries.approvals_waiting_on(db=work.db, member_id=member_id)
        return s.ApprovalList(items=[s.from_approval(approval, campaign) for approval, campaign in rows])

    return await reading(call, body)




def _campaign_filter(ref: str | None) -> int | None:
    if ref is None:
        return None
    try:
        return parse_ref(ref, RefKind.CAMPAIGN)
    except DomainError as error:
        raise ApiError(422, "invalid", f"`campaign`: {error}", fields={"campaign": str(error)}) from None


def _zone(text: str | None) -> ZoneInfo:
    try:
        return params.parse_zone(text)
    except DomainError as error:
        raise ApiError(422, "invalid", f"`tz`: {error}", fields={"tz": str(error)}) from None


@route("GET", "/schedule", "A week's schedule: launches, milestones and tasks due, day by day", response=s.WeekOut,
       query=s.WeekQuery, tag="plans")
async def week_schedule(call: Call) -> s.WeekOut:
    query: s.WeekQuery = call.query
    zone = _zone(query.tz)
    campaign_id = _campaign_filter(query.campaign)
    now = datetime.now(UTC)
    first = params.monday_of(query.start or now.astimezone(zone).date())

    async def body(work: ApiWork) -> s.WeekOut:
        return s.WeekOut(await schedule(db=work.db, campaign_id=campaign_id, first=first, days=WEEK_DAYS, zone=zone,
                                        now=now, per_day=CARDS_PER_DAY_IN_WEEK))

    return await reading(call, body)


@route("GET", "/metrics", "Completion, on-time rate, approval turnaround and buffer health over a span of days",
       response=s.MetricsOut, query=s.MetricsQuery, tag="plans")
async def campaign_metrics(call: Call) -> s.MetricsOut:
    query: s.MetricsQuery = call.query
    zone = _zone(query.tz)
    campaign_id = _campaign_filter(query.campaign)
    now = datetime.now(UTC)
    try:
        first, last = params.parse_range(query.start.isoformat() if query.start else None,
                                         query.end.isoformat() if query.end else None,
                                         today=now.astimezone(zone).date(), names=("start", "end"))
    except DomainError as error:
        raise ApiError(422, "invalid", str(error), fields={"start": str(error)}) from None

    async def body(work: ApiWork) -> s.MetricsOut:
        return s.MetricsOut(await metrics(db=work.db, campaign_id=campaign_id, first=first, last=last, zone=zone,
                                          now=now))

    return await reading(call, body)
