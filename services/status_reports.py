"""The weekly status post of each live campaign: Monday 09:00 in the owner's time zone.

One post per campaign and ISO week, keyed `status:<campaign id>:<ISO year>-W<week>` by the owner's local
date, to the campaign's channel or, without one, to the owner. The first is the first Monday 09:00 strictly
after the campaign was created: a campaign made on a Wednesday waits for next Monday instead of getting a
"weekly" status minutes after its creation (a catch-up is for a week the campaign lived through). Catch-up works like the digests: a sweep
later in the week (after downtime) writes that week's post once; weeks missed entirely are not sent,
since last week's numbers are stale once a new week has begun.

A channel is not a person: its post goes as soon as Monday 09:00 has passed. A post to the owner keeps
their quiet hours, mute and time off, and is dropped when their next working moment falls in the next
week (that week has a post of its own).

Once Mailjet has reported on a campaign's emails (`email_events`), the post carries their results too.

The payload is plain data computed here (the renderers in `blocks/` turn it into Slack or email). Risk
and buffer come from the plan as last computed (`PlanSummary`; the sweep re-plans stale campaigns just
before), so a campaign without a plan has no post. Set-based: one query for the candidates, one for the
keys already written, then a handful for all campaigns due a post together.

Given the dashboard's key and public URL, each post links its campaign's timeline: a campaign-scoped
dashboard link made by the app itself (`created_by` None, so only an admin can revoke it), issued in the
same transaction and in one INSERT for the whole batch, good for a week from the post's moment. A post
another sweep wrote first (the insert-or-ignore keeps that one) leaves its link unused: nobody holds its
token, and it expires with the week.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    ApprovalStatus,
    Campaign,
    Task,
    TaskStatus,
    TeamMember,
    Timeline,
    Urgency,
)
from services import email_events, links
from services.approval_stages import stages_of
from services.dashboard_links import LinkRequest, expiry, issue_many
from services.durations import HOURS_PER_DAY
from services.kinds import Kind
from services.notifications import Draft, notify_many
from services.plans import PlanSummary
from services.quiet_hours import next_delivery_time, zone
from services.refs import RefKind, format_ref
from services.reminders import (
    CLOSED_TASKS,
    DIGEST_AT,
    KEY_CHUNK,
    LIVE_CAMPAIGNS,
    RECIPIENT_COLUMNS,
    Recipient,
    existing_keys,
)

POST_AT = DIGEST_AT  # the same morning hour as the digests
WEEK = timedelta(days=7)
TIMELINE_LINK_DAYS = 7  # a week's post links the timeline until the next one does
TASKS_SHOWN = 5  # per list (overdue, due in the next 7 days)
APPROVALS_SHOWN = 3
OVERDUE, DUE_SOON = 0, 1  # task buckets, ints so both backends compare them alike


@dataclass
class _Due:
    """A campaign whose post for this week is owed and not written yet."""

    campaign_id: int
    key: str
    week: str
    owner: Recipient
    channel_id: str | None
    scheduled_for: datetime


async def weekly_status_posts(
    *, db: AsyncSession, now: datetime, max_writes: int = KEY_CHUNK, link_secret: bytes | None = None,
    public_url: str | None = None,
) -> int:
    """Write the status posts owed at `now`; returns how many rows are new.

    At most `max_writes` (and one IN list) per call: the next sweep writes the rest. With `link_secret`
    and `public_url` (the dashboard's key and where the app is reached), each post carries a link to its
    campaign's timeline; without them, none.
    """
    due = await _due(db, now)
    due = sorted(due, key=lambda d: d.key)[:max(0, min(max_writes, KEY_CHUNK))]
    if not due:
        return 0
    ids = [d.campaign_id for d in due]
    plans = {campaign.id: (campaign, timeline) for campaign, timeline in (await db.execute(
        select(Campaign, Timeline).join(Timeline, Timeline.campaign_id == Campaign.id).where(Campaign.id.in_(ids))
    )).all()}
    counts = await _task_counts(db, ids, now)
    tasks = await _open_tasks(db, ids, now)
    approvals = await _approvals(db, ids)
    emails = await email_events.results(db=db, campaign_ids=ids)  # over the campaign's life, one query
    due = [item for item in due if item.campaign_id in plans]  # else deleted between the queries
    timelines = await _timeline_links(db, due, now, link_secret, public_url)
    drafts = []
    for item in due:
        campaign, timeline = plans[item.campaign_id]
        payload = _payload(campaign, timeline, item, now, counts.get(campaign.id, (0, 0, 0)),
                           tasks[campaign.id], approvals.get(campaign.id, (0, [])))
        payload.update(timelines.get(item.key, {}))
        if campaign.id in emails:  # only once Mailjet has reported on its emails
            payload["email"] = emails[campaign.id].to_payload()
        to_owner = item.channel_id is None
        drafts.append(Draft(
            dedupe_key=item.key, kind=Kind.CAMPAIGN_STATUS, payload=payload, campaign_id=campaign.id, urgency=Urgency.NORMAL,
            recipient_id=item.owner.id if to_owner else None, recipient_channel=item.channel_id,
            channel=item.owner.channel if to_owner else None, scheduled_for=item.scheduled_for,
        ))
    # One multi-row insert-or-ignore for every post (at most KEY_CHUNK, one chunk of notify_many).
    return len(await notify_many(db=db, drafts=drafts, now=now))


async def _timeline_links(db: AsyncSession, due: Sequence[_Due], now: datetime, secret: bytes | None,
                          public_url: str | None) -> dict[str, dict[str, str]]:
    """Per post (by key): `timeline_url` and `timeline_expires`, from links issued in one INSERT."""
    if secret is None or not public_url or not due:
        return {}
    requests = [LinkRequest(scope=links.campaign_scope(item.campaign_id),
                            expires_at=expiry(max(now, item.scheduled_for), TIMELINE_LINK_DAYS),
                            label=f"Weekly status {format_ref(RefKind.CAMPAIGN, item.campaign_id)} {item.week}")
                for item in due]
    issued = await issue_many(db=db, requests=requests, now=now, secret=secret)
    return {item.key: {
        "timeline_url": f"{links.dashboard_url(public_url, link.token)}/campaigns/"
                        f"{format_ref(RefKind.CAMPAIGN, item.campaign_id)}/timeline",
        "timeline_expires": link.expires_at.isoformat(),
    } for item, link in zip(due, issued, strict=True)}


def week_key(campaign_id: int, local: datetime) -> tuple[str, str] | None:
    """(dedupe key, `2027-W11`) once the owner's local clock has passed Monday 09:00 of its ISO week."""
    if local.weekday() == 0 and local.time() < POST_AT:
        return None
    year, week, _ = local.isocalendar()
    label = f"{year}-W{week:02d}"
    return f"status:{campaign_id}:{label}", label


def week_start(local: datetime) -> datetime:
    """Monday 09:00 of `local`'s week, on the same clock: the moment that week's post is for."""
    monday = local.date() - timedelta(days=local.weekday())
    return datetime.combine(monday, POST_AT, tzinfo=local.tzinfo)


async def _due(db: AsyncSession, now: datetime) -> list[_Due]:
    rows = (await db.execute(
        select(Campaign.id.label("campaign_id"), Campaign.channel_id, Campaign.created_at, *RECIPIENT_COLUMNS)
        .join(TeamMember, TeamMember.id == Campaign.owner_id)
        .join(Timeline, Timeline.campaign_id == Campaign.id)
        .where(Campaign.status.in_(LIVE_CAMPAIGNS))
    )).all()
    wanted: dict[str, _Due] = {}
    for r in rows:
        tz = zone(r.timezone)
        local = now.astimezone(tz)
        slot = week_key(r.campaign_id, local)
        if slot is None or week_start(local) <= r.created_at:
            continue
        owner = Recipient.from_row(r)
        scheduled = now
        if r.channel_id is None:
            if not owner.is_active or r.campaign_id in owner.muted:
                continue
            scheduled = next_delivery_time(owner, now, Urgency.NORMAL)
            next_week = datetime.combine(local.date() + timedelta(days=7 - local.weekday()), time(0), tzinfo=tz)
            if scheduled >= next_week:
                continue  # off all week: next Monday's post says it better
        wanted[slot[0]] = _Due(r.campaign_id, slot[0], slot[1], owner, r.channel_id, scheduled)
    for key in await existing_keys(db, wanted.keys()):
        wanted.pop(key, None)
    return list(wanted.values())


async def _task_counts(db: AsyncSession, ids: Sequence[int], now: datetime) -> dict[int, tuple[int, int, int]]:
    """Per campaign: (tasks not cancelled, done, done in the last 7 days)."""
    def tally(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    done = Task.status == TaskStatus.DONE
    rows = await db.execute(
        select(Task.campaign_id, tally(Task.status != TaskStatus.CANCELLED), tally(done),
               tally(done & (Task.completed_at >= now - WEEK)))
        .where(Task.campaign_id.in_(ids)).group_by(Task.campaign_id)
    )
    return {cid: (int(total or 0), int(finished or 0), int(recent or 0)) for cid, total, finished, recent in rows}


async def _open_tasks(db: AsyncSession, ids: Sequence[int], now: datetime) -> dict[int, dict[int, Any]]:
    """Per campaign and bucket (overdue, due within 7 days): the first few open tasks by due date, and the total."""
    bucket = case((Task.due_at < now, OVERDUE), else_=DUE_SOON)
    partition = (Task.campaign_id, bucket)
    ranked = (
        select(Task.id, Task.campaign_id, Task.title, Task.due_at, Task.is_milestone,
               TeamMember.slack_user_id.label("assignee"), bucket.label("bucket"),
               func.row_number().over(partition_by=partition, order_by=(Task.due_at, Task.id)).label("position"),
               func.count().over(partition_by=partition).label("total"))
        .outerjoin(TeamMember, TeamMember.id == Task.assignee_id)
        .where(Task.campaign_id.in_(ids), Task.status.not_in(CLOSED_TASKS), Task.due_at.is_not(None),
               Task.due_at < now + WEEK)
        .subquery()
    )
    found: dict[int, dict[int, Any]] = defaultdict(lambda: {OVERDUE: (0, []), DUE_SOON: (0, [])})
    rows = await db.execute(select(ranked).where(ranked.c.position <= TASKS_SHOWN)
                            .order_by(ranked.c.campaign_id, ranked.c.bucket, ranked.c.position))
    for r in rows:
        total, shown = found[r.campaign_id][r.bucket]
        shown.append({"task": format_ref(RefKind.TASK, r.id), "task_id": r.id, "title": r.title,
                      "assignee": r.assignee, "due": r.due_at.isoformat(), "milestone": bool(r.is_milestone)})
        found[r.campaign_id][r.bucket] = (int(r.total), shown)
    return found


async def _approvals(db: AsyncSession, ids: Sequence[int]) -> dict[int, tuple[int, list[dict[str, Any]]]]:
    """Per campaign: pending approvals in stages open now (not those queued behind an earlier stage),
    oldest request first; the count and the first few. A campaign has a handful of rows, so all are loaded."""
    out: dict[int, tuple[int, list[dict[str, Any]]]] = {}
    for campaign_id, stages in (await stages_of(db, ids)).items():
        if not stages.rows:
            continue
        open_now = stages.open_names()  # the same rule as /approval mine: its task done, earlier stages passed
        waiting = sorted((a for a in stages.rows if a.stage in open_now and a.status is ApprovalStatus.PENDING),
                         key=lambda a: (a.created_at, a.id))
        out[campaign_id] = (len(waiting), [
            {"approval": format_ref(RefKind.APPROVAL, a.id), "stage": a.stage,
             "approver": (a.delegated_to or a.approver).slack_user_id, "requested": a.created_at.isoformat(),
             "deadline": a.deadline.isoformat() if a.deadline else None}
            for a in waiting[:APPROVALS_SHOWN]
        ])
    return out


def _payload(campaign: Campaign, timeline: Timeline, item: _Due, now: datetime, counts: tuple[int, int, int],
             tasks: dict[int, Any], approvals: tuple[int, list[dict[str, Any]]]) -> dict[str, Any]:
    # Risk and buffer read only the timeline (as on the Home tab), so the plan's tasks are not loaded.
    plan = PlanSummary(campaign=campaign, timeline=timeline, tasks=[])
    total, done, done_recently = counts
    tz = zone(item.owner.timezone)

    def with_day(entries: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
        # The owner's calendar day too, for readers that cannot localise an instant (email goes to the owner).
        return [{**e, f"{field}_day": datetime.fromisoformat(e[field]).astimezone(tz).date().isoformat()}
                for e in entries]

    (overdue_total, overdue), (soon_total, soon) = tasks[OVERDUE], tasks[DUE_SOON]
    return {
        "kind": Kind.CAMPAIGN_STATUS.value, "campaign": format_ref(RefKind.CAMPAIGN, campaign.id), "campaign_id": campaign.id,
        "campaign_name": campaign.name, "week": item.week, "as_of": now.astimezone(UTC).isoformat(),
        "status": str(campaign.status),
        "launch_date": campaign.launch_date.isoformat(),
        "projected_launch": timeline.projected_launch.isoformat() if timeline.projected_launch else None,
        # Two measures of progress: tasks counted, and the plan's own (work done, weighted by hours).
        "risk": plan.risk, "tasks_done": done, "tasks_total": total,
        "tasks_done_pct": round(done / total * 100) if total else 0, "progress_pct": timeline.progress_pct,
        "buffer_days": round(timeline.buffer_hours / HOURS_PER_DAY, 1), "buffer_left_pct": plan.buffer_left_pct,
        "buffer_left_days": round(timeline.buffer_hours * plan.buffer_left_pct / 100 / HOURS_PER_DAY, 1),
        "overdue_count": overdue_total, "overdue": with_day(overdue, "due"),
        "due_soon_count": soon_total, "due_soon": with_day(soon, "due"),
        "approvals_waiting": approvals[0], "oldest_approvals": with_day(approvals[1], "requested"),
        "done_last_7_days": done_recently,
    }
