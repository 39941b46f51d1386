"""One campaign on the dashboard: its tasks with assignees and dates, its sign-off stages with their audit
trail, its assets with what the content checks find, and what happened lately, from the audit log.

Eight reads: the campaign with its plan's numbers, its tasks, its stages (`stages_of`: rows, template
stages and their states), its assets and content rules (`campaign_content`), the recent audit lines of the campaign, its tasks and its approvals, the
audit lines about sign-offs (for the stages' trails), and the names of the people those lines mention.
The audit log keeps Slack ids; a line by someone who is not a member (a job: "system") shows the id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Approval, AuditEntry, Campaign, Task, TeamMember
from services.approval_stages import StageState, Vote, approval_ref, group_stages, stages_of
from services.campaign_content import asset_ref, campaign_content
from services.content_checks import Finding, url_problem
from services.dashboard import (
    TASK_OPTIONS,
    CampaignCard,
    Person,
    TaskCard,
    campaign_card,
    campaign_ref,
    cards,
    local,
    person,
    task_card,
)
from services.errors import NotFound
from services.refs import RefKind, format_ref

ACTIVITY_SHOWN = 40
TRAIL_READ = 500  # sign-off lines read for the trails: a campaign has a handful of stages and rounds
NOTE_LENGTH = 300

# How an audit action reads after the person's name, with what it was about ({subject}: a task, a stage).
# An action not listed reads as its own words, followed by the subject.
ACTION_WORDS = {
    "campaign.created": "created the campaign",
    "campaign.launched": "launched the campaign",
    "campaign.paused": "paused the campaign",
    "campaign.resumed": "resumed the campaign",
    "campaign.completed": "completed the campaign",
    "campaign.cancelled": "cancelled the campaign",
    "campaign.channel_set": "set the campaign's channel",
    "campaign.escalation_set": "changed who hears about late work",
    "campaign.approved": "completed the campaign's sign-off",
    "task.created": "added {subject}",
    "task.started": "started {subject}",
    "task.completed": "finished {subject}",
    "task.blocked": "marked {subject} blocked",
    "task.due_changed": "moved the due date of {subject}",
    "task.reestimated": "re-estimated {subject}",
    "task.assigned": "assigned {subject}",
    "task.commented": "commented on {subject}",
    "task.snoozed": "snoozed reminders for {subject}",
    "approval.requested": "asked for sign-off on {subject}",
    "approval.approved": "approved {subject}",
    "approval.rejected": "rejected {subject}",
    "approval.delegated": "delegated {subject}",
    "approval.resubmitted": "resubmitted {subject}",
    "approval.stage_passed": "closed {subject}: passed",
    "approval.stage_rejected": "closed {subject}: rejected",
    "approval.stage_skipped": "skipped {subject}",
}


@dataclass(frozen=True)
class Activity:
    at: datetime  # in the reader's time zone
    actor: Person
    action: str  # what they did, in words that follow their name, the subject included
    subject: str  # the task (ref and title), the stage, or the campaign itself
    note: str | None  # a reason given, or whom they asked or handed it to


@dataclass(frozen=True)
class StageDetail:
    name: str
    state: StageState
    waits_for: str | None  # the earlier stage, or the task (a ref) whose finish opens it
    skipped: str | None
    role: str | None  # who a template stage asks for
    round: int | None
    deadline: datetime | None
    votes: list[Vote]  # decided_at in the reader's zone
    trail: list[Activity]  # oldest first


@dataclass(frozen=True)
class AssetDetail:
    ref: str
    title: str
    kind: str
    url: str | None  # only a plain http(s) address, so the page links nothing else (`javascript:` and the like)
    task: str | None  # the task (its ref) it is the deliverable of
    subject: str | None
    preheader: str | None
    findings: list[Finding]


@dataclass(frozen=True)
class CampaignDetail:
    campaign: CampaignCard
    description: str | None
    critical_path: list[str]  # task refs in order
    tasks: list[TaskCard]  # in plan order: by due time
    stages: list[StageDetail]
    activity: list[Activity]  # newest first
    assets: list[AssetDetail] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # about the campaign as a whole (a required asset)
    errors: int = 0  # every content error, and every warning, of the campaign and its assets
    warnings: int = 0


async def campaign_detail(*, db: AsyncSession, campaign_id: int, zone: ZoneInfo, now: datetime) -> CampaignDetail:
    campaign = (await db.execute(cards().add_columns(Campaign.description).where(Campaign.id == campaign_id))).first()
    if campaign is None:
        raise NotFound(f"There is no campaign {campaign_ref(campaign_id)}.")
    tasks = list(await db.scalars(
        select(Task).where(Task.campaign_id == campaign_id).options(*TASK_OPTIONS)
        .order_by(Task.due_at.is_(None), Task.due_at, Task.is_milestone, Task.start_at, Task.id)))
    stages = (await stages_of(db, [campaign_id]))[campaign_id]
    recent = await _audit_lines(db, _about_campaign(campaign_id), newest_first=True, limit=ACTIVITY_SHOWN)
    signoffs = await _audit_lines(db, _about_signoffs(campaign_id), newest_first=False, limit=TRAIL_READ)
    names = await _names(db, _people_in([*recent, *signoffs]))
    titles = {task.id: task.title for task in tasks}
    stage_of_approval = {row.id: row.stage for row in stages.rows}
    trails: dict[str, list[Activity]] = {}
    for entry in signoffs:
        stage = str(entry.details.get("stage") or stage_of_approval.get(entry.entity_id, ""))
        trails.setdefault(stage, []).append(_activity(entry, names, titles, zone))
    groups = group_stages(stages.rows)
    stage_details = []
    for name, status in stages.states.items():
        rows = groups.get(name, [])
        spec = stages.spec(name)
        stage_details.append(StageDetail(
            name=name, state=status.state, waits_for=status.waits_for or status.waits_for_task,
            skipped=status.skipped, role=spec.approver_role if spec else None,
            round=rows[0].round if rows else None, deadline=local(rows[0].deadline, zone) if rows else None,
            votes=[_vote(row, zone) for row in rows], trail=trails.get(name, []),
        ))
    content = await campaign_content(db, campaign_id)
    assets = [AssetDetail(
        ref=asset_ref(asset.id), title=asset.name, kind=asset.kind,
        url=asset.url if asset.url and not url_problem(asset.url) else None,
        task=format_ref(RefKind.TASK, asset.task_id) if asset.task_id else None, subject=asset.subject,
        preheader=asset.preheader, findings=[f for f in content.findings if f.asset == asset_ref(asset.id)],
    ) for asset in content.assets]
    critical = [format_ref(RefKind.TASK, task.id) for task in sorted(
        (task for task in tasks if task.on_critical_path), key=lambda task: (task.due_at is None, task.due_at))]
    return CampaignDetail(
        campaign=campaign_card(campaign), description=campaign.description, critical_path=critical,
        tasks=[task_card(task, zone=zone, now=now) for task in tasks], stages=stage_details,
        activity=[_activity(entry, names, titles, zone) for entry in recent], assets=assets,
        findings=[finding for finding in content.findings if finding.asset is None],
        errors=sum(finding.is_error for finding in content.findings),
        warnings=sum(not finding.is_error for finding in content.findings),
    )


def _about_campaign(campaign_id: int) -> Any:
    """Audit lines about the campaign, its tasks or its approvals."""
    return or_(
        and_(AuditEntry.entity_type == "campaign", AuditEntry.entity_id == campaign_id),
        and_(AuditEntry.entity_type == "task",
             AuditEntry.entity_id.in_(select(Task.id).where(Task.campaign_id == campaign_id))),
        and_(AuditEntry.entity_type == "approval",
             AuditEntry.entity_id.in_(select(Approval.id).where(Approval.campaign_id == campaign_id))),
    )


def _about_signoffs(campaign_id: int) -> Any:
    """Audit lines of the campaign's approvals, and its stages' outcomes (written on the campaign)."""
    return or_(
        and_(AuditEntry.entity_type == "approval",
             AuditEntry.entity_id.in_(select(Approval.id).where(Approval.campaign_id == campaign_id))),
        and_(AuditEntry.entity_type == "campaign", AuditEntry.entity_id == campaign_id,
             AuditEntry.action.like("approval.stage%")),
    )


async def _audit_lines(db: AsyncSession, where: Any, *, newest_first: bool, limit: int) -> list[AuditEntry]:
    order = (AuditEntry.at.desc(), AuditEntry.id.desc()) if newest_first else (AuditEntry.at, AuditEntry.id)
    return list(await db.scalars(select(AuditEntry).where(where).order_by(*order).limit(limit)))


def _people_in(entries: Iterable[AuditEntry]) -> set[str]:
    """Slack ids an audit line names: who acted, and whom they asked or handed an approval to."""
    found = set()
    for entry in entries:
        found.add(entry.actor)
        for key in ("approver", "to"):
            value = entry.details.get(key)
            if isinstance(value, str):
                found.add(value)
    return found


async def _names(db: AsyncSession, slack_ids: set[str]) -> dict[str, str]:
    if not slack_ids:
        return {}
    rows = await db.execute(select(TeamMember.slack_user_id, TeamMember.name)
                            .where(TeamMember.slack_user_id.in_(sorted(slack_ids))))
    return {slack_id: name for slack_id, name in rows}


def _activity(entry: AuditEntry, names: dict[str, str], titles: dict[int, str], zone: ZoneInfo) -> Activity:
    details = entry.details if isinstance(entry.details, dict) else {}
    if entry.entity_type == "task":
        ref = format_ref(RefKind.TASK, entry.entity_id)
        subject = f"{ref} {titles[entry.entity_id]}" if entry.entity_id in titles else ref
    elif entry.entity_type == "approval" or details.get("stage"):
        subject = str(details.get("stage") or approval_ref(entry.entity_id))
    else:
        subject = "the campaign"
    words = ACTION_WORDS.get(entry.action) or (entry.action.partition(".")[2] or entry.action).replace("_", " ")
    action = words.replace("{subject}", subject)
    if "{subject}" not in words and subject != "the campaign":
        action = f"{action}: {subject}"
    return Activity(at=entry.at.astimezone(zone), actor=_who(entry.actor, names), action=action, subject=subject,
                    note=_note(details, names))


def _note(details: dict[str, Any], names: dict[str, str]) -> str | None:
    reason = details.get("reason")
    if isinstance(reason, str) and reason.strip():
        text = " ".join(reason.split())
        return text if len(text) <= NOTE_LENGTH else text[: NOTE_LENGTH - 1] + "…"
    for key, words in (("to", "to"), ("approver", "from")):
        value = details.get(key)
        if isinstance(value, str):
            return f"{words} {_who(value, names).name}"
    return None


def _who(slack_id: str, names: dict[str, str]) -> Person:
    return Person(slack_user_id=slack_id, name=names.get(slack_id, slack_id))


def _vote(row: Approval, zone: ZoneInfo) -> Vote:
    decided_by = None
    if row.decided_by_id is not None:
        by_delegate = row.delegated_to is not None and row.decided_by_id == row.delegated_to_id
        decided_by = person(row.delegated_to if by_delegate and row.delegated_to else row.approver)
    return Vote(
        approval_id=row.id, approver=person(row.approver),
        delegate=person(row.delegated_to) if row.delegated_to is not None else None, status=row.status,
        decided_by=decided_by, decided_at=local(row.decided_at, zone), comments=row.comments,
    )

