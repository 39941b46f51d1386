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


def notice_key(campaign_id: int, *, slack_user: str | None, channel: str | None, member_id: int | None) -> str:
    """The dedupe key of the owner's delivery-failed notice about one recipient: named by their Slack user
    id, else the channel, else `member-{id}` (a member whose Slack id could not be read)."""
    return f"delivery-failed:{campaign_id}:{slack_user or channel or f'member-{member_id}'}"


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
    await _free_notice_key(db, campaign.id, await _notice_keys(db, campaign.id, recipient_channel, recipient_id))
    audit.record(db=db, actor=actor.member.slack_user_id, action="notifications.retried", entity_type="campaign",
                 entity_id=campaign.id, recipient_channel=recipient_channel, recipient_id=recipient_id,
                 notifications=sorted(retried))
    await db.flush()
    return sorted(retried)


async def slack_user_of(*, db: AsyncSession, member_id: int) -> str | None:
    """The Slack user id of a member, to name them in a message; None when the member is gone."""
    return await db.scalar(select(TeamMember.slack_user_id).where(TeamMember.id == member_id))


async def _notice_keys(db: AsyncSession, campaign_id: int, channel: str | None, member_id: int | None) -> set[str]:
    """The keys the notice about this recipient may have: a member is named by Slack id when it was known."""
    if channel is not None:
        return {notice_key(campaign_id, slack_user=None, channel=channel, member_id=None)}
    slack_user = await slack_user_of(db=db, member_id=member_id) if member_id is not None else None
    return {notice_key(campaign_id, slack_user=slack_user, channel=None, member_id=member_id),
            notice_key(campaign_id, slack_user=None, channel=None, member_id=member_id)}


async def _free_notice_key(db: AsyncSession, campaign_id: int, keys: set[str]) -> None:
    """Rename the notice that was written for these failures (`...:retried:{its id}`): the row stays as
    history, and the next failure to this recipient writes (and delivers) a notice under the plain key."""
    notices = await db.scalars(select(Notification).where(Notification.dedupe_key.in_(keys)))
    for notice in notices:
        notice.dedupe_key = f"{notice.dedupe_key}:retried:{notice.id}"
