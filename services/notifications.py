"""The outbox: notifications written in the same transaction as the change that causes them.

A row is unique by its dedupe key (`reminder:T-42:due:24h`, `escalation:AP-7:level-1`, ...), so writing
the same notification twice is a no-op. Delivery claims a row with a conditional UPDATE and a lease:
a claim that loses sends nothing, and a lease that runs out (a worker died mid-send) frees the row
for the sweep to hand out again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Notification, NotificationChannel, NotificationStatus, TeamMember, Urgency
from models.upsert import insert_ignore

LEASE = timedelta(minutes=2)
MAX_ATTEMPTS = 8  # failures that count (5xx, timeouts); rate limits do not
MAX_KEY = 255


async def notify(
    *,
    db: AsyncSession,
    dedupe_key: str,
    kind: str,
    payload: dict[str, Any],
    recipient_id: int | None = None,
    recipient_channel: str | None = None,
    campaign_id: int | None = None,
    urgency: Urgency = Urgency.NORMAL,
    channel: NotificationChannel | None = None,
    scheduled_for: datetime | None = None,
    now: datetime,
) -> int | None:
    """Write a notification unless its key exists; returns the new row's id, or None for a repeat.

    `channel` None: a member gets it the way they chose (`TeamMember.notify_via`), a Slack channel by Slack.
    """
    if (recipient_id is None) == (recipient_channel is None):
        raise ValueError("a notification goes to exactly one member or one channel")
    if channel is None:
        channel = NotificationChannel.SLACK
        if recipient_id is not None:
            preference = (await db.execute(
                select(TeamMember.notify_via, TeamMember.email).where(TeamMember.id == recipient_id)
            )).first()
            if preference is not None:
                channel = channel_for(preference.notify_via, preference.email)
    created = await insert_ignore(db, Notification, {
        "dedupe_key": dedupe_key[:MAX_KEY], "kind": kind, "payload": payload, "recipient_id": recipient_id,
        "recipient_channel": recipient_channel, "campaign_id": campaign_id, "urgency": urgency,
        "channel": channel, "scheduled_for": scheduled_for or now, "status": NotificationStatus.PENDING,
        "retries": 0, "created_at": now, "updated_at": now,
    }, conflict=["dedupe_key"])
    if not created:
        return None
    return await db.scalar(select(Notification.id).where(Notification.dedupe_key == dedupe_key[:MAX_KEY]))


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
    result = await db.execute(
        update(Notification)
        .where(Notification.id == notification_id, _claimable(now))
        .values(status=NotificationStatus.CLAIMED, claimed_until=now + lease, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return None
    return await db.get(Notification, notification_id, populate_existing=True)


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


async def retry_later(*, db: AsyncSession, notification: Notification, at: datetime, error: str,
                      counts: bool) -> bool:
    """Give the row back for another try at `at`; False when the failure budget is spent (row failed).

    Rate limits pass `counts=False`: waiting out Slack's Retry-After is not a failure.
    """
    notification.last_error = error[:1000]
    notification.claimed_until = None
    if counts:
        notification.retries += 1
        if notification.retries >= MAX_ATTEMPTS:
            notification.status = NotificationStatus.FAILED
            return False
    notification.status = NotificationStatus.PENDING
    notification.scheduled_for = at
    return True


async def mark_failed(*, db: AsyncSession, notification: Notification, error: str) -> None:
    notification.status = NotificationStatus.FAILED
    notification.claimed_until = None
    notification.last_error = error[:1000]
