"""What the sweep owes people at `now`: task reminders, escalations, approval chases, morning digests.

Every notification has a dedupe key naming its slot, so the sweep is idempotent: running it again at the
same or a later `now` writes only slots that became due since. Catching up after downtime sends the
*current* slot of each kind, not every slot missed:

- before the due date, only the latest reminder whose moment has passed (at due-1h both the 24h and the
  2h reminder are "due"; only the 2h one is written; a 24h one already sent stays sent);
- "due now" only on the assignee's local due day; later local days get one "overdue" each, so a sweep
  at due+3 days writes today's overdue reminder and nothing for the days it missed;
- escalations are one per task/approval and level, written once their threshold has passed.

Reminders to the assignee respect snooze, mute and quiet hours (`services.quiet_hours`). Escalations
are urgent: they go at once, through mute, and a snooze (the assignee's "not now") does not hide
lateness from the owner. Keys of pre-due reminders carry the due date, so moving it re-arms them;
escalation keys (given by the outbox contract) do not.

Set-based: one query each for campaigns+tasks, approvals, the people involved and the keys already
written, then one multi-row insert-or-ignore (`notify_many`) for the notifications that are actually new.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Approval,
    ApprovalStatus,
    Campaign,
    CampaignStatus,
    Notification,
    NotificationChannel,
    Task,
    TaskStatus,
    TeamMember,
    Urgency,
)
from models.upsert import one_of
from services.approval_stages import stages_of
from services.kinds import Kind
from services.notifications import Draft, channel_for, notify_many
from services.quiet_hours import IMMEDIATE, has_hours, next_delivery_time, out_of_office, windows_on, zone
from services.refs import RefKind, format_ref
from services.team import muted_campaign_ids

LIVE_CAMPAIGNS = (CampaignStatus.ACTIVE, CampaignStatus.PLANNING)
CLOSED_TASKS = (TaskStatus.DONE, TaskStatus.CANCELLED)
DEFAULT_POLICY: dict[str, Any] = {
    "reminder_offsets_hours": [24, 2],
    "task_grace_hours": 24,
    "critical_grace_hours": 4,
    "approval_reminder_hours": 24,
}
# Two more keys have no fixed default: approval_grace_hours falls back to the task grace, and
# contact_after_hours (level 2 of late work, counted from level 1) to the grace that applied to the task.
DIGEST_AT = time(9, 0)
KEY_CHUNK = 500  # ids in one IN list (the weekly posts written per sweep: see status_reports)
MAX_WRITES = 1000  # a backlog is written over several sweeps, so no sweep holds the write lock for long


@dataclass(frozen=True)
class Policy:
    offsets: tuple[float, ...]
    task_grace: timedelta
    critical_grace: timedelta
    approval_reminder: timedelta
    approval_grace: timedelta
    contact_after: timedelta | None = None  # None: as long as the grace that applied (task or critical)

    @classmethod
    def of(cls, overrides: dict[str, Any] | None) -> Policy:
        merged = DEFAULT_POLICY | {k: v for k, v in (overrides or {}).items() if v is not None}

        def hours(name: str, fallback: Any) -> timedelta:
            try:
                return timedelta(hours=max(0.0, float(merged.get(name, fallback))))
            except (TypeError, ValueError, OverflowError):
                return timedelta(hours=float(fallback))

        try:
            offsets = tuple(sorted({float(x) for x in merged["reminder_offsets_hours"] if float(x) > 0}))
        except (TypeError, ValueError, OverflowError):
            offsets = tuple(float(x) for x in sorted(DEFAULT_POLICY["reminder_offsets_hours"]))
        task_grace = hours("task_grace_hours", DEFAULT_POLICY["task_grace_hours"])
        return cls(
            offsets=offsets,
            task_grace=task_grace,
            critical_grace=hours("critical_grace_hours", DEFAULT_POLICY["critical_grace_hours"]),
            approval_reminder=hours("approval_reminder_hours", DEFAULT_POLICY["approval_reminder_hours"]),
            # Not in the documented defaults: approvals fall back to the task grace.
            approval_grace=hours("approval_grace_hours", task_grace.total_seconds() / 3600),
            contact_after=_optional_hours(merged.get("contact_after_hours")),
        )

    def contact_delay(self, grace: timedelta) -> timedelta:
        """How long after the owner's escalation (at due + `grace`) the escalation contact hears of it."""
        return grace if self.contact_after is None else self.contact_after

    @property
    def lookahead(self) -> timedelta:
        return timedelta(hours=max(self.offsets, default=0.0))


def _optional_hours(value: Any) -> timedelta | None:
    """A stored number of hours, or None when it is missing or unreadable (the fallback then applies)."""
    try:
        return None if value is None else timedelta(hours=max(0.0, float(value)))
    except (TypeError, ValueError, OverflowError):
        return None


@dataclass
class Recipient:
    """Someone the sweep may write to: the member columns it reads (satisfies quiet_hours.HasHours)."""

    id: int
    slack_user_id: str
    timezone: str
    weekly_availability: dict[str, Any]
    out_of_office_from: date | None
    out_of_office_until: date | None
    is_active: bool
    muted: frozenset[int]
    channel: NotificationChannel = NotificationChannel.SLACK  # from notify_via (services.notifications)

    @classmethod
    def from_row(cls, r: Any) -> Recipient:
        """From a row selected with RECIPIENT_COLUMNS."""
        return cls(r.id, r.slack_user_id, r.timezone, r.weekly_availability or {}, r.out_of_office_from,
                   r.out_of_office_until, r.is_active, muted_campaign_ids(r.muted_campaigns),
                   channel_for(r.notify_via, r.email))


RECIPIENT_COLUMNS = (TeamMember.id, TeamMember.slack_user_id, TeamMember.timezone,
                     TeamMember.weekly_availability, TeamMember.out_of_office_from, TeamMember.out_of_office_until,
                     TeamMember.is_active, TeamMember.muted_campaigns, TeamMember.notify_via, TeamMember.email)


@dataclass
class Pending:
    """A notification the rules want; written only if its key is new."""

    key: str
    kind: Kind
    recipient_id: int
    campaign_id: int | None  # None for a digest: it spans campaigns
    urgency: Urgency
    payload: dict[str, Any]


@dataclass
class _Camp:
    id: int
    name: str
    owner_id: int
    contact_id: int | None
    policy: Policy


@dataclass
class _Digest:
    due_today: int = 0
    overdue: int = 0
    approvals: int = 0


async def due_notifications(*, db: AsyncSession, now: datetime, max_writes: int = MAX_WRITES) -> int:
    """Write every notification due at `now` that is not written yet; returns how many rows are new.

    At most `max_writes` per call (escalations first), so a huge backlog never holds the write lock for
    long: the next sweep writes the rest, since nothing written is ever looked at twice.
    """
    campaigns = await _campaigns(db)
    if not campaigns:
        return 0
    lookahead = max(max(c.policy.lookahead for c in campaigns.values()), timedelta(hours=24))
    tasks = (await db.execute(
        select(Task.id, Task.campaign_id, Task.title, Task.assignee_id, Task.due_at, Task.status,
               Task.on_critical_path, Task.snoozed_until)
        .join(Campaign, Campaign.id == Task.campaign_id)
        .where(Campaign.status.in_(LIVE_CAMPAIGNS), Task.status.not_in(CLOSED_TASKS),
               Task.assignee_id.is_not(None), Task.due_at.is_not(None), Task.due_at <= now + lookahead)
    )).all()
    approvals = (await db.execute(
        select(Approval.id, Approval.campaign_id, Approval.stage, Approval.approver_id, Approval.delegated_to_id,
               Approval.deadline)
        .join(Campaign, Campaign.id == Approval.campaign_id)
        .where(Campaign.status.in_(LIVE_CAMPAIGNS), Approval.status == ApprovalStatus.PENDING)
    )).all()

    ids = {t.assignee_id for t in tasks} | {a.delegated_to_id or a.approver_id for a in approvals}
    ids |= {c.owner_id for c in campaigns.values()} | {c.contact_id for c in campaigns.values() if c.contact_id}
    people = await _people(db, ids)

    wanted: list[Pending] = []
    digests: dict[int, _Digest] = defaultdict(_Digest)
    # `.get`: a campaign that went live between the queries (read committed) waits for the next sweep.
    for task in tasks:
        if camp := campaigns.get(task.campaign_id):
            wanted.extend(_task_rules(task, camp, people, now, digests))
    stages = await stages_of(db, sorted({approval.campaign_id for approval in approvals}))
    for approval in approvals:  # a stage still waiting (for its task, or an earlier stage) reminds nobody
        camp = campaigns.get(approval.campaign_id)
        if camp and approval.stage in stages[approval.campaign_id].open_names():
            wanted.extend(_approval_rules(approval, camp, people, now, digests))
    wanted.extend(_digest_rules(digests, people, now))

    fresh = await _not_written(db, wanted)
    # One order for every sweeper (no lock-order deadlocks between concurrent inserts); urgent first.
    fresh.sort(key=lambda p: (p.urgency not in IMMEDIATE, p.key))
    drafts = [
        Draft(dedupe_key=item.key, kind=item.kind, payload=item.payload, recipient_id=item.recipient_id,
              campaign_id=item.campaign_id, urgency=item.urgency, channel=people[item.recipient_id].channel,
              scheduled_for=next_delivery_time(people[item.recipient_id], now, item.urgency))
        for item in fresh[:max_writes]
    ]
    return len(await notify_many(db=db, drafts=drafts, now=now))


async def _campaigns(db: AsyncSession) -> dict[int, _Camp]:
    rows = (await db.execute(
        select(Campaign.id, Campaign.name, Campaign.owner_id, Campaign.escalation_contact_id,
               Campaign.escalation_policy)
        .where(Campaign.status.in_(LIVE_CAMPAIGNS))
    )).all()
    return {r.id: _Camp(r.id, r.name, r.owner_id, r.escalation_contact_id, Policy.of(r.escalation_policy))
            for r in rows}


async def _people(db: AsyncSession, ids: Iterable[int | None]) -> dict[int, Recipient]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = (await db.execute(select(*RECIPIENT_COLUMNS).where(one_of(db, TeamMember.id, wanted)))).all()
    return {r.id: Recipient.from_row(r) for r in rows}


async def existing_keys(db: AsyncSession, keys: Collection[str]) -> set[str]:
    """Those of `keys` already in the outbox, in one query however many (a steady-state sweep wants
    thousands, nearly all written before)."""
    if not keys:
        return set()
    return set(await db.scalars(select(Notification.dedupe_key).where(one_of(db, Notification.dedupe_key, keys))))


async def _not_written(db: AsyncSession, wanted: Sequence[Pending]) -> list[Pending]:
    """Drop the keys already in the outbox, so a steady-state sweep inserts nothing."""
    by_key = {p.key: p for p in wanted}
    for key in await existing_keys(db, by_key.keys()):
        by_key.pop(key, None)
    return list(by_key.values())


def _task_rules(task: Any, camp: _Camp, people: dict[int, Recipient], now: datetime,
                digests: dict[int, _Digest]) -> list[Pending]:
    assignee = people.get(task.assignee_id)
    if assignee is None:
        return []
    due: datetime = task.due_at
    ref, due_iso = format_ref(RefKind.TASK, task.id), due.isoformat()
    policy = camp.policy
    out: list[Pending] = []

    def pending(key: str, kind: Kind, recipient: int, urgency: Urgency, reason: str, **extra: Any) -> Pending:
        payload = {"kind": kind.value, "task": ref, "task_id": task.id, "title": task.title,
                   "campaign": format_ref(RefKind.CAMPAIGN, camp.id), "campaign_id": camp.id,
                   "campaign_name": camp.name, "due": due_iso, "reason": reason,
                   "assignee_id": task.assignee_id, **extra}
        return Pending(key, kind, recipient, camp.id, urgency, payload)

    quiet = (task.snoozed_until is not None and task.snoozed_until > now) or camp.id in assignee.muted
    if assignee.is_active and not quiet:
        tz = zone(assignee.timezone)
        today, due_day = now.astimezone(tz).date(), due.astimezone(tz).date()
        if now < due:
            passed = [h for h in policy.offsets if now >= due - timedelta(hours=h)]
            if passed:  # only the latest slot: an older one that was missed is superseded
                hours = min(passed)
                label = f"{hours:g}h"
                out.append(pending(f"reminder:{ref}:due:{label}:{due_iso}", Kind.TASK_REMINDER, assignee.id,
                                   Urgency.NORMAL, "due_soon", offset_hours=hours))
        elif today <= due_day:
            out.append(pending(f"reminder:{ref}:due-now:{due_iso}", Kind.TASK_REMINDER, assignee.id,
                               Urgency.NORMAL, "due_now"))
        else:
            out.append(pending(f"reminder:{ref}:overdue:{today.isoformat()}", Kind.TASK_OVERDUE, assignee.id,
                               Urgency.NORMAL, "overdue", days_overdue=(today - due_day).days))
        digest = digests[assignee.id]
        if due < now:
            digest.overdue += 1
        elif due_day == today:
            digest.due_today += 1

    critical = bool(task.on_critical_path) or task.status == TaskStatus.BLOCKED
    grace = policy.critical_grace if critical else policy.task_grace
    reason = "critical_overdue" if critical else "overdue"
    if now > due + grace and camp.owner_id in people and people[camp.owner_id].is_active:
        out.append(pending(f"escalation:{ref}:owner", Kind.TASK_ESCALATION, camp.owner_id, Urgency.HIGH, reason,
                           level=1, grace_hours=grace.total_seconds() / 3600))
    contact = camp.contact_id
    if (now > due + grace + policy.contact_delay(grace) and contact is not None and contact != camp.owner_id
            and contact in people and people[contact].is_active):
        out.append(pending(f"escalation:{ref}:contact", Kind.TASK_ESCALATION, contact, Urgency.HIGH, reason,
                           level=2, grace_hours=grace.total_seconds() / 3600))
    return out


def _approval_rules(approval: Any, camp: _Camp, people: dict[int, Recipient], now: datetime,
                    digests: dict[int, _Digest]) -> list[Pending]:
    recipient = people.get(approval.delegated_to_id or approval.approver_id)
    if recipient is not None and recipient.is_active and camp.id not in recipient.muted:
        digests[recipient.id].approvals += 1
    deadline: datetime | None = approval.deadline
    if deadline is None:
        return []
    ref, deadline_iso = format_ref(RefKind.APPROVAL, approval.id), deadline.isoformat()
    policy = camp.policy
    out: list[Pending] = []

    def pending(key: str, kind: Kind, to: int, urgency: Urgency, reason: str, **extra: Any) -> Pending:
        payload = {"kind": kind.value, "approval": ref, "approval_id": approval.id, "stage": approval.stage,
                   "title": approval.stage, "campaign": format_ref(RefKind.CAMPAIGN, camp.id),
                   "campaign_id": camp.id, "campaign_name": camp.name, "deadline": deadline_iso,
                   "due": deadline_iso, "reason": reason, "approver_id": approval.approver_id,
                   "delegated_to_id": approval.delegated_to_id, **extra}
        return Pending(key, kind, to, camp.id, urgency, payload)

    if (recipient is not None and recipient.is_active and camp.id not in recipient.muted
            and deadline - policy.approval_reminder <= now < deadline):
        out.append(pending(f"reminder:{ref}:deadline:{deadline_iso}", Kind.APPROVAL_REMINDER, recipient.id,
                           Urgency.NORMAL, "deadline_soon"))
    owner = people.get(camp.owner_id)
    if now >= deadline and owner is not None and owner.is_active:
        out.append(pending(f"escalation:{ref}:level-1", Kind.APPROVAL_ESCALATION, owner.id, Urgency.HIGH,
                           "deadline_passed", level=1))
    contact = people.get(camp.contact_id) if camp.contact_id else None
    if (now >= deadline + policy.approval_grace and contact is not None and contact.is_active
            and contact.id != camp.owner_id):
        out.append(pending(f"escalation:{ref}:level-2", Kind.APPROVAL_ESCALATION, contact.id, Urgency.HIGH,
                           "deadline_passed_grace", level=2))
    return out


def _digest_rules(digests: dict[int, _Digest], people: dict[int, Recipient], now: datetime) -> list[Pending]:
    """A morning summary per person on a working day, once their local clock passes 09:00."""
    out: list[Pending] = []
    for member_id, digest in digests.items():
        person = people.get(member_id)
        if person is None or not person.is_active or not (digest.due_today or digest.overdue or digest.approvals):
            continue
        tz = zone(person.timezone)
        local = now.astimezone(tz)
        working = windows_on(person, local.date(), tz) if has_hours(person) else not out_of_office(person, local.date())
        if local.time() < DIGEST_AT or not working:
            continue  # before 09:00, a day off or out of office (no hours set: every day is a working day)
        out.append(Pending(
            f"digest:{person.slack_user_id}:{local.date().isoformat()}", Kind.DIGEST, person.id, None, Urgency.LOW,
            {"kind": Kind.DIGEST.value, "date": local.date().isoformat(), "due_today": digest.due_today,
             "overdue": digest.overdue, "approvals_waiting": digest.approvals},
        ))
    return out

