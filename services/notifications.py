"""The outbox: notifications written in the same transaction as the change that causes them.

A row is unique by its dedupe key (`reminder:T-42:due:24h`, `escalation:AP-7:level-1`, ...), so writing
the same notification twice is a no-op. Delivery claims a row with a conditional UPDATE and a lease:
a claim that loses sends nothing, and a lease that runs out (a worker died mid-send) frees the row
for the sweep to hand out again.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Notification, NotificationChannel, NotificationStatus, TeamMember, Urgency
from models.upsert import insert_ignore_many
from services import quiet_hours
from services.kinds import Kind

LEASE = timedelta(minutes=2)
MAX_KEY = 255
WRITTEN = "outbox_written"  # key in the session's `info`: ids of the rows written through it
INSERT_CHUNK = 500  # rows per multi-row INSERT: 14 columns stay far below SQLite's 32,766 parameters
T = TypeVar("T")


@dataclass(frozen=True)
class Draft:
    """One notification to write: `channel` None means the way the member chose (`TeamMember.notify_via`).

    `quiet_hours`: hold it until the member's working hours (`services.quiet_hours.delivery_time`), unless
    `deadline` would then be near; only for a member, and only when `scheduled_for` is not given.
    """

    dedupe_key: str
    kind: Kind
    payload: dict[str, Any]
    recipient_id: int | None = None
    recipient_channel: str | None = None
    campaign_id: int | None = None
    urgency: Urgency = Urgency.NORMAL
    channel: NotificationChannel | None = None
    scheduled_for: datetime | None = None
    quiet_hours: bool = False
    deadline: datetime | None = None

    def __post_init__(self) -> None:
        if (self.recipient_id is None) == (self.recipient_channel is None):
            raise ValueError("a notification goes to exactly one member or one channel")


async def notify(
    *,
    db: AsyncSession,
    dedupe_key: str,
    kind: Kind,
    payload: dict[str, Any],
    recipient_id: int | None = None,
    recipient_channel: str | None = None,
    campaign_id: int | None = None,
    urgency: Urgency = Urgency.NORMAL,
    channel: NotificationChannel | None = None,
    scheduled_for: datetime | None = None,
    quiet_hours: bool = False,
    deadline: datetime | None = None,
    now: datetime,
) -> int | None:
    """Write a notification unless its key exists; returns the new row's id, or None for a repeat."""
    draft = Draft(dedupe_key=dedupe_key, kind=kind, payload=payload, recipient_id=recipient_id,
                  recipient_channel=recipient_channel, campaign_id=campaign_id, urgency=urgency, channel=channel,
                  scheduled_for=scheduled_for, quiet_hours=quiet_hours, deadline=deadline)
    written = await notify_many(db=db, drafts=[draft], now=now)
    return written[0] if written else None


async def notify_many(*, db: AsyncSession, drafts: Sequence[Draft], now: datetime) -> list[int]:
    """Write many notifications in a few statements; returns the ids of the rows that are new.

    One query reads every recipient's preference, then multi-row INSERT ... ON CONFLICT DO NOTHING
    RETURNING writes them: a bulk writer (the sweep after downtime, a broadcast) pays per chunk, not per row.
    """
    by_key: dict[str, Draft] = {}
    for draft in drafts:  # the first of a repeated key wins, as against a row already stored
        by_key.setdefault(draft.dedupe_key[:MAX_KEY], draft)
    unique = list(by_key.values())
    if not unique:
        return []
    members = {d.recipient_id for d in unique if d.recipient_id is not None and d.channel is None}
    preferences: dict[int, NotificationChannel] = {}
    for some in _chunks(sorted(members), INSERT_CHUNK):
        for member_id, notify_via, email in await db.execute(
            select(TeamMember.id, TeamMember.notify_via, TeamMember.email).where(TeamMember.id.in_(some))
        ):
            preferences[member_id] = channel_for(notify_via, email)
    held = await _quiet_hours_times(db, unique, now)
    rows = [{
        "dedupe_key": d.dedupe_key[:MAX_KEY], "kind": str(d.kind), "payload": d.payload, "recipient_id": d.recipient_id,
        "recipient_channel": d.recipient_channel, "campaign_id": d.campaign_id, "urgency": d.urgency,
        "channel": d.channel or preferences.get(d.recipient_id or 0, NotificationChannel.SLACK),
        "scheduled_for": d.scheduled_for or held.get(d.dedupe_key[:MAX_KEY], now), "status": NotificationStatus.PENDING, "retries": 0,
        "created_at": now, "updated_at": now,
    } for d in unique]
    written: list[int] = []
    for chunk in _chunks(rows, INSERT_CHUNK):
        written.extend(await insert_ignore_many(db, Notification, list(chunk), conflict=["dedupe_key"],
                                                returning=Notification.id))
    note_written(db, written)
    return written


def note_written(db: AsyncSession, notification_ids: Sequence[int]) -> None:
    """Rows this session wrote or armed again, for the unit of work to hand out after its commit."""
    db.info.setdefault(WRITTEN, []).extend(notification_ids)


async def _quiet_hours_times(db: AsyncSession, drafts: Sequence[Draft], now: datetime) -> dict[str, datetime]:
    """When each draft that keeps quiet hours may go out (by dedupe key); one query for their members."""
    wanted = [d for d in drafts if d.quiet_hours and d.recipient_id is not None and d.scheduled_for is None]
    if not wanted:
        return {}
    members: dict[int, Any] = {}
    for some in _chunks(sorted({d.recipient_id for d in wanted if d.recipient_id is not None}), INSERT_CHUNK):
        for member in await db.execute(
            select(TeamMember.id, TeamMember.timezone, TeamMember.weekly_availability,
                   TeamMember.out_of_office_from, TeamMember.out_of_office_until).where(TeamMember.id.in_(some))
        ):
            members[member.id] = member
    return {d.dedupe_key[:MAX_KEY]: quiet_hours.delivery_time(members[d.recipient_id], now, d.urgency,
                                                               deadline=d.deadline)
            for d in wanted if d.recipient_id in members}


def written_in(db: AsyncSession) -> list[int]:
    """The notifications this session wrote: the unit of work hands them to delivery after its commit
    (the sweep would find them too, but a minute later)."""
    return list(db.info.get(WRITTEN, ()))


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def channel_for(notify_via: str | None, email: str | None) -> NotificationChannel:
    """A member's preference as an outbox channel: email needs an address (else Slack); unknown is Slack.

    Whether email is configured at all (`SMTP_URL`) is decided at delivery, which falls back to Slack.
    """
    try:
        chosen = NotificationChannel(notify_via or "slack")
    except ValueError:
        return NotificationChannel.SLACK
    if chosen is NotificationChannel.EMAIL and not (email and "@" in email):
        return NotificationChannel.SLACK
    return chosen


def _claimable(now: datetime) -> Any:
    return (
        (Notification.scheduled_for <= now)
        & or_(
            Notification.status == NotificationStatus.PENDING,
            (Notification.status == NotificationStatus.CLAIMED) & (Notification.claimed_until < now),
        )
    )


async def claim(*, db: AsyncSession, notification_id: int, now: datetime, lease: timedelta = LEASE) -> Notification | None:
    """Take the row for delivery if it is due and nobody holds it; None means: send nothing."""
    rows = await claim_many(db=db, notification_ids=[notification_id], now=now, lease=lease)
    return rows[0] if rows else None


async def claim_many(*, db: AsyncSession, notification_ids: Sequence[int], now: datetime, lease: timedelta = LEASE,
                     channels: Collection[NotificationChannel] | None = None,
                     any_channel: Collection[str] = ()) -> list[Notification]:
    """Take those of the rows that are due and free, in one conditional UPDATE; the others are not ours.

    `channels` limits the claim to rows going out that way (no Slack token: in-app and email only);
    rows of the kinds in `any_channel` (those that never go through Slack, such as webhooks) are taken
    whatever their channel column says.
    """
    if not notification_ids:
        return []
    only: ColumnElement[bool] = true()
    if channels is not None:
        only = Notification.channel.in_(list(channels)) | Notification.kind.in_([str(kind) for kind in any_channel])
    taken = (await db.scalars(
        update(Notification)
        .where(Notification.id.in_(set(notification_ids)), _claimable(now), only)
        .values(status=NotificationStatus.CLAIMED, claimed_until=now + lease, updated_at=now)
        .returning(Notification.id)
        .execution_options(synchronize_session=False)
    )).all()
    if not taken:
        return []
    rows = await db.scalars(
        select(Notification).where(Notification.id.in_(taken)).order_by(Notification.scheduled_for, Notification.id)
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def due_ids(*, db: AsyncSession, now: datetime, limit: int = 500) -> Sequence[int]:
    """Rows that should go out now: pending and due, or claimed by a worker whose lease ran out."""
    rows = await db.scalars(
        select(Notification.id).where(_claimable(now)).order_by(Notification.scheduled_for, Notification.id).limit(limit)
    )
    return rows.all()


async def mark_sent(*, db: AsyncSession, notification: Notification, now: datetime, slack_channel: str | None,
                    slack_ts: str | None) -> None:
    notification.status = NotificationStatus.SENT
    notification.sent_at = now
    notification.claimed_until = None
    notification.slack_channel, notification.slack_ts = slack_channel, slack_ts


async def mark_sent_many(*, db: AsyncSession, sent: Sequence[tuple[int, str | None, str | None]],
                         now: datetime) -> None:
    """Record many deliveries at once: (notification id, Slack channel, Slack ts) each."""
    if sent:
        await db.execute(update(Notification), [
            {"id": nid, "status": NotificationStatus.SENT, "sent_at": now, "claimed_until": None,
             "slack_channel": channel, "slack_ts": ts, "updated_at": now}
            for nid, channel, ts in sent
        ])


async def retry_later(*, db: AsyncSession, notification: Notification, at: datetime, error: str,
                      counts: bool) -> None:
    """Give the row back for another try at `at`. `counts`: a failure, against the attempt budget that
    `services.delivery` keeps; a rate limit or a pacing slot is a wait, not a failure."""
    notification.last_error = error[:1000]
    notification.claimed_until = None
    if counts:
        notification.retries += 1
    notification.status = NotificationStatus.PENDING
    notification.scheduled_for = at


async def withdraw(*, db: AsyncSession, notification: Notification, reason: str) -> None:
    """Never send it: what it was about is settled. The row (and its key) stays, with the reason."""
    notification.status = NotificationStatus.WITHDRAWN
    notification.claimed_until = None
    notification.last_error = f"withdrawn: {reason}"[:1000]


async def mark_failed(*, db: AsyncSession, notification: Notification, error: str) -> None:
    notification.status = NotificationStatus.FAILED
    notification.claimed_until = None
    notification.last_error = error[:1000]


@dataclass(frozen=True)
class OutboxStats:
    due: int  # pending (or with a lapsed lease) and due now: waiting for a worker
    scheduled: int  # pending for later (quiet hours, a retry, a pacing slot)
    sending: int  # claimed with a live lease
    failed_last_day: int  # failed rows that were due in the last 24 hours
    oldest_due_seconds: float | None  # how long the longest-waiting due row has waited

    def stuck(self, threshold: timedelta) -> bool:
        return self.oldest_due_seconds is not None and self.oldest_due_seconds > threshold.total_seconds()


async def outbox_stats(*, db: AsyncSession, now: datetime) -> OutboxStats:
    """The outbox at a glance, for health checks. Both queries stay on indexes (the open rows' partial
    index, and a day of `scheduled_for`), so the cost does not grow with the sent history."""
    is_due = _claimable(now)
    row = (await db.execute(select(
        func.count().filter(is_due),
        func.count().filter((Notification.status == NotificationStatus.PENDING) & (Notification.scheduled_for > now)),
        func.count().filter((Notification.status == NotificationStatus.CLAIMED) & (Notification.claimed_until >= now)),
        func.min(Notification.scheduled_for).filter(is_due),
    ).where(Notification.status.in_((NotificationStatus.PENDING, NotificationStatus.CLAIMED))))).one()
    failed = await db.scalar(select(func.count()).where(
        Notification.scheduled_for >= now - timedelta(days=1), Notification.status == NotificationStatus.FAILED))
    oldest = row[3]
    if oldest is not None and oldest.tzinfo is None:  # an aggregate skips the column type on SQLite
        oldest = oldest.replace(tzinfo=UTC)
    return OutboxStats(due=row[0], scheduled=row[1], sending=row[2], failed_last_day=failed or 0,
                       oldest_due_seconds=(now - oldest).total_seconds() if oldest is not None else None)
