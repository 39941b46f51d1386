"""Is a notification still worth sending? Checked when it is claimed, just before it goes out.

A reminder written at 18:00 and held for the recipient's morning can be moot by then: the task was
done overnight, the approval decided, the due date moved, the campaign paused, the reminder snoozed or
the campaign muted. Such a row is withdrawn (kept, with the reason, never sent) instead of telling
someone to do what is already done.

Escalations are urgent and go out within seconds of being written; they are withdrawn only when the
work itself is settled (done, cancelled, decided, campaign no longer live), never for a moved date: their
dedupe keys carry no date, so a withdrawn one could not be written again when the work is late anew.

Approval requests and copy updates have rules of their own (`services.approval_notices.moot`): a request
goes while its approval waits for that person this round, whatever the campaign's state or mutes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Approval,
    ApprovalStatus,
    Campaign,
    CampaignStatus,
    Notification,
    Task,
    TeamMember,
)
from services import approval_notices
from services.kinds import APPROVAL_REMINDER_KINDS, ESCALATIONS, TASK_KINDS, Kind
from services.reminders import CLOSED_TASKS, LIVE_CAMPAIGNS
from services.team import muted_campaign_ids

CAMPAIGN_KINDS = frozenset({Kind.CAMPAIGN_STATUS})


async def moot(*, db: AsyncSession, rows: Sequence[Notification], now: datetime) -> dict[int, str]:
    """The rows that should not go out any more, with why (notification id -> reason)."""
    reasons = await approval_notices.moot(db=db, rows=rows)
    reasons.update(await _reminders_moot(db=db, rows=rows, now=now))
    return reasons


async def _reminders_moot(*, db: AsyncSession, rows: Sequence[Notification], now: datetime) -> dict[int, str]:
    task_ids = {_id(row.payload, "task_id") for row in rows if row.kind in TASK_KINDS} - {None}
    approval_ids = {_id(row.payload, "approval_id") for row in rows if row.kind in APPROVAL_REMINDER_KINDS} - {None}
    campaign_ids = {row.campaign_id for row in rows if row.kind in TASK_KINDS | APPROVAL_REMINDER_KINDS | CAMPAIGN_KINDS}
    if not (task_ids or approval_ids or campaign_ids - {None}):
        return {}
    tasks = {t.id: t for t in await db.scalars(select(Task).where(Task.id.in_(task_ids)))} if task_ids else {}
    approvals = ({a.id: a for a in await db.scalars(select(Approval).where(Approval.id.in_(approval_ids)))}
                 if approval_ids else {})
    campaigns = dict((await db.execute(select(Campaign.id, Campaign.status)
                                       .where(Campaign.id.in_(campaign_ids - {None})))).all())
    recipients = {row.recipient_id for row in rows if row.recipient_id is not None and row.kind not in ESCALATIONS}
    muted = {m.id: muted_campaign_ids(m.muted_campaigns) for m in await db.execute(
        select(TeamMember.id, TeamMember.muted_campaigns).where(TeamMember.id.in_(recipients)))} if recipients else {}

    reasons = {}
    for row in rows:
        reason = _reason(row, tasks, approvals, campaigns, muted, now)
        if reason is not None:
            reasons[row.id] = reason
    return reasons


def _reason(row: Notification, tasks: dict[int, Task], approvals: dict[int, Approval],
            campaigns: dict[int, CampaignStatus], muted: dict[int, frozenset[int]], now: datetime) -> str | None:
    if row.kind not in TASK_KINDS | APPROVAL_REMINDER_KINDS | CAMPAIGN_KINDS:
        return None
    status = campaigns.get(row.campaign_id) if row.campaign_id is not None else None
    if row.campaign_id is not None and status is None:
        return "campaign deleted"
    if status is not None and status not in LIVE_CAMPAIGNS:
        return f"campaign {status.value}"
    reminder = row.kind not in ESCALATIONS
    if reminder and row.recipient_id is not None and row.campaign_id in muted.get(row.recipient_id, frozenset()):
        return "campaign muted"
    if row.kind in TASK_KINDS:
        return _task_reason(row, tasks.get(_id(row.payload, "task_id") or 0), reminder, now)
    if row.kind in APPROVAL_REMINDER_KINDS:
        return _approval_reason(row, approvals.get(_id(row.payload, "approval_id") or 0), reminder)
    return None


def _task_reason(row: Notification, task: Task | None, reminder: bool, now: datetime) -> str | None:
    if task is None:
        return "task deleted"
    if task.status in CLOSED_TASKS:
        return f"task {task.status.value}"
    if reminder:
        if task.snoozed_until is not None and task.snoozed_until > now:
            return "task snoozed"
        if task.due_at is None or task.due_at.isoformat() != row.payload.get("due"):
            return "due date changed"
    return None


def _approval_reason(row: Notification, approval: Approval | None, reminder: bool) -> str | None:
    if approval is None:
        return "approval deleted"
    if approval.status is not ApprovalStatus.PENDING:
        return f"approval {approval.status.value}"
    if reminder and (approval.deadline is None or approval.deadline.isoformat() != row.payload.get("deadline")):
        return "deadline changed"
    return None


def _id(payload: dict[str, Any], key: str) -> int | None:
    value = payload.get(key)
    return value if isinstance(value, int) else None
