"""Approval messages through the outbox: the requests, the in-place updates of their copies, the owner's news.

Every approval message is an outbox row written in the transaction of the change that causes it, so a
Slack outage delays it instead of losing it, and it goes the way the person chose, in their working hours,
paced with everything else. Three kinds:

- REQUEST: a stage's request, one row per approver (and delegate) per round, plus one for the campaign's
  channel. Written where a stage opens (`signoffs.open_ready`: a request, a decision, a skip, a resubmit,
  a task done) and when an approval is delegated. Its key names the approval, the round and the person,
  so the same change retried writes nothing twice. It keeps the approver's quiet hours unless the deadline
  is near (`quiet_hours.delivery_time`). It is rendered when it goes out, from the stage as it is then, and
  the delivery job records its Slack copy (`approval_messages`) in the transaction that marks it sent.
- COPY_UPDATE: `chat.update` of one recorded copy after its stage moved. Coalesced per copy: while the
  copy's last update row is still pending, a newer change writes nothing, because that row renders the
  stage as it is when it goes out. A row a worker holds already (locked, or claimed) may have read the
  stage before this change: then a new row is written, and it waits for the one in flight (`held_back`), so
  the copy's updates land in order and the last one shows the latest state.
- OUTCOME: the owner hears that a stage passed, was rejected or was skipped: what happened, as it happened.

Locks (PostgreSQL; SQLite lets one writer in at a time): every writer here holds the campaign's row lock
(`campaigns.lock_campaign`), and the job's record step takes a share lock on it, so "which copies exist"
and "what the stage looks like" never race between a decision and a copy being recorded. A decision
never waits for a delivery's rows: it skips rows a worker has locked (SKIP LOCKED) and writes no key that
could already exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Approval,
    ApprovalMessage,
    ApprovalStatus,
    Campaign,
    Notification,
    NotificationChannel,
    NotificationStatus,
    TeamMember,
)
from models.upsert import insert_ignore
from services import notifications
from services.approval_stages import StageState, StageView, load_stages
from services.kinds import Kind
from services.notifications import Draft
from services.refs import RefKind, format_ref

# Short names for the three kinds (`services.kinds.Kind`), as this module's callers know them.
KINDS = frozenset({Kind.APPROVAL_REQUEST, Kind.APPROVAL_COPY_UPDATE, Kind.APPROVAL_OUTCOME})
RENDERED_FROM_STAGE = frozenset({Kind.APPROVAL_REQUEST, Kind.APPROVAL_COPY_UPDATE})  # read the stage at delivery, not from the payload
HOLD_BACK = timedelta(seconds=1)  # a copy's update waits this long, again and again, for the one before it


@dataclass(frozen=True)
class RequestNotice:
    """The payload of a Kind.APPROVAL_REQUEST row: which stage and round, and whose copy (None: the channel's)."""

    campaign_id: int
    campaign_name: str
    stage: str
    round: int
    approval_id: int | None
    deadline: datetime | None = None

    def payload(self) -> dict[str, Any]:
        ref = format_ref(RefKind.CAMPAIGN, self.campaign_id)
        return {"campaign_id": self.campaign_id, "campaign_name": self.campaign_name, "stage": self.stage,
                "round": self.round, "approval_id": self.approval_id,
                "deadline": self.deadline.isoformat() if self.deadline else None,
                # What the in-app inbox shows (the renderers escape it).
                "summary": f'{ref} {self.campaign_name}: your sign-off on "{self.stage}" is requested',
                "text": "Decide on your Home tab in Slack, or with `/approval mine`."}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> RequestNotice:
        deadline = payload.get("deadline")
        return cls(campaign_id=int(payload["campaign_id"]), campaign_name=str(payload.get("campaign_name") or ""),
                   stage=str(payload["stage"]), round=int(payload.get("round") or 1),
                   approval_id=_int(payload.get("approval_id")),
                   deadline=datetime.fromisoformat(deadline) if isinstance(deadline, str) else None)


@dataclass(frozen=True)
class CopyUpdate:
    """The payload of a Kind.APPROVAL_COPY_UPDATE row: the recorded copy to bring up to date, and the update before it."""

    copy_id: int
    campaign_id: int
    stage: str
    approval_id: int | None
    channel: str
    ts: str
    after: int | None = None  # the copy's previous update row, which must land first

    def payload(self) -> dict[str, Any]:
        return {"copy_id": self.copy_id, "campaign_id": self.campaign_id, "stage": self.stage,
                "approval_id": self.approval_id, "channel": self.channel, "ts": self.ts, "after": self.after,
                "summary": f'"{self.stage}" moved on'}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CopyUpdate:
        return cls(copy_id=int(payload["copy_id"]), campaign_id=int(payload["campaign_id"]),
                   stage=str(payload["stage"]), approval_id=_int(payload.get("approval_id")),
                   channel=str(payload["channel"]), ts=str(payload["ts"]), after=_int(payload.get("after")))


@dataclass(frozen=True)
class StageOutcome:
    """The payload of an Kind.APPROVAL_OUTCOME row: what happened to a stage, for its campaign's owner."""

    campaign_id: int
    campaign_name: str
    stage: str
    round: int
    outcome: StageState  # PASSED, REJECTED or SKIPPED
    decided_by: str | None = None  # the Slack id of who decided (or skipped)
    reason: str | None = None  # why it was rejected or skipped, as typed
    approval_id: int | None = None  # the approval decided: `/approval resubmit AP-n` names it
    campaign_approved: bool = False  # this was the last sign-off
    opened: tuple[str, ...] = ()  # stages open now because of it

    def payload(self) -> dict[str, Any]:
        ref = format_ref(RefKind.CAMPAIGN, self.campaign_id)
        return {"campaign_id": self.campaign_id, "campaign_name": self.campaign_name, "stage": self.stage,
                "round": self.round, "outcome": self.outcome.value, "decided_by": self.decided_by,
                "reason": self.reason, "approval_id": self.approval_id, "campaign_approved": self.campaign_approved,
                "opened": list(self.opened),
                "summary": f'{ref} {self.campaign_name}: "{self.stage}" {self.outcome.value}'}

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> StageOutcome:
        return cls(campaign_id=int(payload["campaign_id"]), campaign_name=str(payload.get("campaign_name") or ""),
                   stage=str(payload["stage"]), round=int(payload.get("round") or 1),
                   outcome=StageState(str(payload["outcome"])), decided_by=payload.get("decided_by") or None,
                   reason=payload.get("reason") or None, approval_id=_int(payload.get("approval_id")),
                   campaign_approved=bool(payload.get("campaign_approved")),
                   opened=tuple(str(name) for name in payload.get("opened") or ()))


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# ------------------------------------------------------------------ written with the change


def request_key(approval_id: int, round_: int, member_id: int) -> str:
    return f"approval-request:{approval_id}:r{round_}:to:{member_id}"


async def request_stages(
    *, db: AsyncSession, campaign: Campaign, rows: Sequence[Approval], stages: Iterable[str], now: datetime
) -> list[int]:
    """The requests of stages that just opened: each pending approval's approver and delegate, and the
    campaign's channel. `rows`: the campaign's approvals, people loaded (`approval_stages.campaign_stages`)."""
    drafts = []
    for stage in stages:
        stage_rows = [row for row in rows if row.stage == stage]
        for row in stage_rows:
            if row.status is ApprovalStatus.PENDING:
                people = [row.approver] + ([row.delegated_to] if row.delegated_to is not None else [])
                drafts += [_request(campaign, row, person) for person in people]
        if stage_rows and campaign.channel_id:
            first = stage_rows[0]
            notice = RequestNotice(campaign.id, campaign.name, stage, first.round, None, first.deadline)
            drafts.append(Draft(dedupe_key=f"approval-request:{first.id}:r{first.round}:channel", kind=Kind.APPROVAL_REQUEST,
                                payload=notice.payload(), recipient_channel=campaign.channel_id,
                                campaign_id=campaign.id, channel=NotificationChannel.SLACK))
    return await _write_new(db, drafts, now)


async def request_delegate(*, db: AsyncSession, campaign: Campaign, approval: Approval, to: TeamMember,
                           now: datetime) -> list[int]:
    """The request for the person an approval was just delegated to (nothing if they had it this round)."""
    return await _write_new(db, [_request(campaign, approval, to)], now)


def _request(campaign: Campaign, approval: Approval, person: TeamMember) -> Draft:
    notice = RequestNotice(campaign.id, campaign.name, approval.stage, approval.round, approval.id, approval.deadline)
    return Draft(dedupe_key=request_key(approval.id, approval.round, person.id), kind=Kind.APPROVAL_REQUEST,
                 payload=notice.payload(), recipient_id=person.id, campaign_id=campaign.id,
                 quiet_hours=True, deadline=approval.deadline)


async def _write_new(db: AsyncSession, drafts: Sequence[Draft], now: datetime) -> list[int]:
    """Write the drafts whose keys are new. Asking first (rather than leaving it to ON CONFLICT) keeps a
    change from waiting on an existing row a worker is updating while the change holds the campaign lock."""
    if not drafts:
        return []
    keys = [draft.dedupe_key for draft in drafts]
    known = set(await db.scalars(select(Notification.dedupe_key).where(Notification.dedupe_key.in_(keys))))
    return await notifications.notify_many(db=db, drafts=[d for d in drafts if d.dedupe_key not in known], now=now)


async def refresh_copies(*, db: AsyncSession, campaign_id: int, stage: str, now: datetime,
                         only: Iterable[int] | None = None) -> list[int]:
    """Bring every recorded copy of the stage (or the copies `only`) up to date: one open row per copy."""
    query = select(ApprovalMessage).where(ApprovalMessage.campaign_id == campaign_id, ApprovalMessage.stage == stage)
    if only is not None:
        query = query.where(ApprovalMessage.id.in_(list(only)))
    copies = list(await db.scalars(query.order_by(ApprovalMessage.id)))
    waiting = [copy.update_id for copy in copies if copy.update_id is not None]
    # Still pending and nobody holds it: it will render this change too. Locked until this transaction
    # ends, so a worker cannot claim it in between and render the stage as it was before.
    still_open = set(await db.scalars(
        select(Notification.id).where(Notification.id.in_(waiting), Notification.status == NotificationStatus.PENDING)
        .with_for_update(skip_locked=True)
    )) if waiting else set()
    stale = [copy for copy in copies if copy.update_id is None or copy.update_id not in still_open]
    drafts = {copy.id: Draft(
        dedupe_key=f"approval-copy:{copy.id}:after:{copy.update_id or 0}", kind=Kind.APPROVAL_COPY_UPDATE,
        payload=CopyUpdate(copy.id, campaign_id, stage, copy.approval_id, copy.channel, copy.ts,
                           after=copy.update_id).payload(),
        recipient_channel=copy.channel, campaign_id=campaign_id, channel=NotificationChannel.SLACK,
    ) for copy in stale}
    if not drafts:
        return []
    written = await notifications.notify_many(db=db, drafts=list(drafts.values()), now=now)
    ids = dict((await db.execute(select(Notification.dedupe_key, Notification.id).where(
        Notification.dedupe_key.in_([draft.dedupe_key for draft in drafts.values()])))).all())
    for copy in stale:
        copy.update_id = ids.get(drafts[copy.id].dedupe_key, copy.update_id)
    await db.flush()
    return written


async def tell_owner(*, db: AsyncSession, campaign: Campaign, outcome: StageOutcome, now: datetime) -> list[int]:
    """The owner's news of a stage, in their working hours and the way they chose."""
    key = (f"approval-outcome:{campaign.id}:r{outcome.round}:{outcome.outcome.value}:"
           f"{outcome.approval_id or 0}:{outcome.stage.casefold()}")
    draft = Draft(dedupe_key=key, kind=Kind.APPROVAL_OUTCOME, payload=outcome.payload(), recipient_id=campaign.owner_id,
                  campaign_id=campaign.id, quiet_hours=True)
    return await _write_new(db, [draft], now)


@dataclass(frozen=True)
class Told:
    """How one approver hears of a request: the way (slack, email, in_app), and when if not at once."""

    slack_user_id: str
    channel: NotificationChannel
    held_until: datetime | None  # the end of their quiet hours


async def how_told(*, db: AsyncSession, campaign_id: int, stage: str) -> list[Told]:
    """The requests of the stage's current round as written: what the requester's reply can promise."""
    rows = [row for row in await db.scalars(
        select(Approval).where(Approval.campaign_id == campaign_id, Approval.stage == stage).order_by(Approval.id)
    ) if row.status is ApprovalStatus.PENDING]
    people = {row.approver_id for row in rows} | {row.delegated_to_id for row in rows if row.delegated_to_id}
    keys = {request_key(row.id, row.round, person): person for row in rows
            for person in (row.approver_id, row.delegated_to_id) if person is not None}
    if not keys:
        return []
    ids = dict((await db.execute(select(TeamMember.id, TeamMember.slack_user_id)
                                 .where(TeamMember.id.in_(people)))).all())
    found = await db.execute(select(Notification.dedupe_key, Notification.channel, Notification.scheduled_for,
                                    Notification.created_at)
                             .where(Notification.dedupe_key.in_(list(keys))).order_by(Notification.id))
    return [Told(ids[keys[key]], channel, at if at > written else None)
            for key, channel, at, written in found if keys[key] in ids]


# ------------------------------------------------------------------ read and recorded by the delivery job


async def stages_at_delivery(*, db: AsyncSession, rows: Sequence[Notification]) -> dict[int, StageView]:
    """The stage each request or copy update shows, as it is now (by notification id). In the claim's
    transaction, so a late delivery shows the latest state. A row whose stage is gone is left out."""
    wanted = {row.id: (row.campaign_id or 0, str(row.payload.get("stage") or ""))
              for row in rows if row.kind in RENDERED_FROM_STAGE}
    if not wanted:
        return {}
    views = await load_stages(db, list(dict.fromkeys(wanted.values())))
    return {nid: views[key] for nid, key in wanted.items() if key in views}


async def held_back(*, db: AsyncSession, rows: Sequence[Notification], now: datetime) -> dict[int, datetime]:
    """Copy updates whose copy's previous update is still going out, with when to try again: in order, or
    the older one could land last and leave the copy showing a state already gone."""
    after = {row.id: CopyUpdate.from_payload(row.payload).after for row in rows if row.kind == Kind.APPROVAL_COPY_UPDATE}
    earlier = {previous for previous in after.values() if previous is not None}
    if not earlier:
        return {}
    busy = set(await db.scalars(select(Notification.id).where(
        Notification.id.in_(earlier), Notification.status == NotificationStatus.CLAIMED,
        Notification.claimed_until > now)))
    return {nid: now + HOLD_BACK for nid, previous in after.items() if previous in busy}


async def moot(*, db: AsyncSession, rows: Sequence[Notification]) -> dict[int, str]:
    """Requests nobody needs any more (decided, resubmitted, delegated elsewhere) and updates of copies
    that were forgotten (a resubmitted stage's old messages stay as they were)."""
    requests = {row.id: RequestNotice.from_payload(row.payload) for row in rows if row.kind == Kind.APPROVAL_REQUEST}
    approval_ids = {notice.approval_id for notice in requests.values() if notice.approval_id is not None}
    approvals = ({row.id: row for row in await db.scalars(select(Approval).where(Approval.id.in_(approval_ids)))}
                 if approval_ids else {})
    copy_ids = {CopyUpdate.from_payload(row.payload).copy_id for row in rows if row.kind == Kind.APPROVAL_COPY_UPDATE}
    copies = set(await db.scalars(select(ApprovalMessage.id).where(ApprovalMessage.id.in_(copy_ids)))) if copy_ids else set()
    reasons = {}
    for row in rows:
        if row.kind == Kind.APPROVAL_COPY_UPDATE and CopyUpdate.from_payload(row.payload).copy_id not in copies:
            reasons[row.id] = "copy forgotten"
        elif row.id in requests and requests[row.id].approval_id is not None:
            reason = _request_reason(requests[row.id], approvals.get(requests[row.id].approval_id or 0), row.recipient_id)
            if reason:
                reasons[row.id] = reason
    return reasons


def _request_reason(notice: RequestNotice, approval: Approval | None, recipient_id: int | None) -> str | None:
    if approval is None:
        return "approval deleted"
    if approval.status is not ApprovalStatus.PENDING:
        return f"approval {approval.status.value}"
    if approval.round != notice.round:
        return "stage resubmitted"
    if recipient_id not in (approval.approver_id, approval.delegated_to_id):
        return "delegated to someone else"
    return None


@dataclass(frozen=True)
class SentCopy:
    """A request that went out as a Slack message: where it is, and the stage it showed."""

    notification_id: int
    payload: dict[str, Any]
    channel: str
    ts: str
    shown: StageView


async def record_copies(*, db: AsyncSession, sent: Sequence[SentCopy], now: datetime) -> list[int]:
    """Remember each copy for later updates, in the transaction that marks its request sent; a copy whose
    stage moved while it was on its way gets an update at once (the change could not see it yet).
    Returns the ids of the update rows written."""
    if not sent:
        return []
    campaign_ids = sorted({RequestNotice.from_payload(copy.payload).campaign_id for copy in sent})
    # Shared with other deliveries, exclusive of a change to the campaign: see the module's doc.
    await db.execute(select(Campaign.id).where(Campaign.id.in_(campaign_ids)).order_by(Campaign.id)
                     .with_for_update(read=True))
    notices = [(copy, RequestNotice.from_payload(copy.payload)) for copy in sent]
    views = await load_stages(db, list({(notice.campaign_id, notice.stage) for _, notice in notices}))
    moved: dict[tuple[int, str], list[tuple[str, str]]] = {}
    for copy, notice in notices:
        view = views.get((notice.campaign_id, notice.stage))
        if view is None or view.round != notice.round:
            continue  # resubmitted meanwhile: this round's copies are no longer kept current
        # Unless recorded already: a record retried after a commit whose answer was lost.
        await insert_ignore(db, ApprovalMessage, {"campaign_id": notice.campaign_id, "stage": notice.stage,
                                                  "approval_id": notice.approval_id, "channel": copy.channel,
                                                  "ts": copy.ts}, conflict=["channel", "ts"])
        if view != copy.shown:
            moved.setdefault((notice.campaign_id, notice.stage), []).append((copy.channel, copy.ts))
    written = []
    for (campaign_id, stage), places in moved.items():
        ids = [message_id for message_id, channel, ts in await db.execute(
            select(ApprovalMessage.id, ApprovalMessage.channel, ApprovalMessage.ts)
            .where(ApprovalMessage.campaign_id == campaign_id, ApprovalMessage.stage == stage))
            if (channel, ts) in places]
        written += await refresh_copies(db=db, campaign_id=campaign_id, stage=stage, now=now, only=ids)
    return written
