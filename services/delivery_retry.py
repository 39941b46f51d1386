"""Send a campaign's failed messages to one recipient again, once the owner has fixed what stopped them.

A permanent Slack error (`not_in_channel`, `account_inactive`, ...) fails an outbox row and tells the
campaign's owner once, under the key `delivery-failed:{campaign}:{recipient}`. After the owner invites the
bot or fixes the channel, `retry_failed` puts that recipient's failed rows of the campaign back into the
outbox and frees the notice's key, so a failure after the retry is told again (once more, not once per row).
The caller hands the returned ids to delivery after its commit.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Campaign, Notification, NotificationStatus, TeamMember
from services import audit, authz
from services.errors import InvalidInput

RETRY_WINDOW = timedelta(days=7)  # rows that were due longer ago than this stay failed
RETRIED_PREFIX = "retried after: "  # the failure a retried row had, kept for whoever reads the row later
MAX_ERROR = 1000


def notice_key(campaign_id: int, recipient: str) -> str:
    """The dedupe key of the owner's delivery-failed notice; `recipient` is a Slack user or channel id
    (or `member-{id}` for a member without one)."""
    return f"delivery-failed:{campaign_id}:{recipient}"


async def retry_failed(
    *,
    db: AsyncSession,
    campaign: Campaign,
    actor: authz.Actor,
    recipient_channel: str | None = None,
    recipient_id: int | None = None,
    now: datetime,
) -> list[int]:
    """Failed rows of `campaign` to that channel (or member) due in the last 7 days, back to pending now.

    Owner or admin only. Returns the ids that changed, oldest first; an empty list (a double click, or
    nothing left to retry) changes nothing at all. One conditional UPDATE: of two concurrent clicks, each
    row goes to one of them.
    """
    authz.require_campaign_manager(actor, campaign, "send its failed messages again")
    if (recipient_channel is None) == (recipient_id is None):
        raise InvalidInput("Say which channel or which person the failed messages should go to again.")
    if recipient_channel is not None:
        to_whom = Notification.recipient_channel == recipient_channel
    else:
        to_whom = (Notification.recipient_id == recipient_id) & Notification.recipient_channel.is_(None)
    retried = (await db.scalars(
        update(Notification)
        .where(Notification.campaign_id == campaign.id, to_whom, Notification.status == NotificationStatus.FAILED,
               Notification.scheduled_for >= now - RETRY_WINDOW)
        .values(status=NotificationStatus.PENDING, scheduled_for=now, retries=0, claimed_until=None, updated_at=now,
                last_error=func.substr(literal(RETRIED_PREFIX) + func.coalesce(Notification.last_error, "unknown"),
                                       1, MAX_ERROR))
        .returning(Notification.id)
        .execution_options(synchronize_session=False)
    )).all()
    if not retried:
        return []
    await _free_notice_key(db, campaign.id, await _recipients(db, recipient_channel, recipient_id))
    audit.record(db=db, actor=actor.member.slack_user_id, action="notifications.retried", entity_type="campaign",
                 entity_id=campaign.id, recipient_channel=recipient_channel, recipient_id=recipient_id,
                 notifications=sorted(retried))
    await db.flush()
    return sorted(retried)


async def slack_user_of(*, db: AsyncSession, member_id: int) -> str | None:
    """The Slack user id of a member, to name them in a message; None when the member is gone."""
    return await db.scalar(select(TeamMember.slack_user_id).where(TeamMember.id == member_id))


async def _recipients(db: AsyncSession, channel: str | None, member_id: int | None) -> list[str]:
    """Every way the notice's key may name this recipient (see handlers.jobs.delivery._tell_owner)."""
    if channel is not None:
        return [channel]
    assert member_id is not None
    slack_user = await slack_user_of(db=db, member_id=member_id)
    return [name for name in (slack_user, f"member-{member_id}") if name]


async def _free_notice_key(db: AsyncSession, campaign_id: int, recipients: list[str]) -> None:
    """Rename the notice that was written for these failures (`...:retried:{its id}`): the row stays as
    history, and the next failure to this recipient writes (and delivers) a notice under the plain key."""
    notices = await db.scalars(
        select(Notification).where(Notification.dedupe_key.in_([notice_key(campaign_id, r) for r in recipients]))
    )
    for notice in notices:
        notice.dedupe_key = f"{notice.dedupe_key}:retried:{notice.id}"
