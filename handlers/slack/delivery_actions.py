"""The "Try again" button on a delivery-failed notice: send a recipient's failed messages again.

The button's value only names a campaign and a recipient; the campaign is re-read and authz asked as for
any change (owner or admin). After the commit the rows go to delivery, and the clicked notice is replaced
in place by what happened. A click that finds nothing left to retry changes nothing and says so.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from blocks.codec import decode_retry
from blocks.notifications import RETRY_DELIVERY, delivery_retried, nothing_to_retry
from handlers.slack.context import unit_of_work
from handlers.slack.errors import Source, answering_errors
from handlers.slack.notify import send_many
from services import campaigns, delivery_retry


def register(app: AsyncApp) -> None:
    app.action(RETRY_DELIVERY)(retry_clicked)


async def retry_clicked(
    ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext,
    client: AsyncWebClient,
) -> None:
    await ack()
    async with answering_errors(Source.click(body, respond, client)):
        target = decode_retry(action.get("value"))  # anything but our own value: a short "not any more"
        now = datetime.now(UTC)
        async with unit_of_work(context, client) as work:
            campaign = await campaigns.get_campaign(db=work.db, campaign_id=target.campaign_id)
            retried = await delivery_retry.retry_failed(
                db=work.db, campaign=campaign, actor=work.authz_actor, recipient_channel=target.recipient_channel,
                recipient_id=target.recipient_id, now=now,
            )
            user = (await delivery_retry.slack_user_of(db=work.db, member_id=target.recipient_id)
                    if target.recipient_id is not None else None)
        if not retried:
            reply = nothing_to_retry(recipient_channel=target.recipient_channel, recipient_user=user)
            await respond(**reply, response_type="ephemeral", replace_original=False)
            return
        await send_many(work.deps, client, retried)
        await respond(**delivery_retried(campaign_id=campaign.id, campaign_name=campaign.name, sent=len(retried),
                                         recipient_channel=target.recipient_channel, recipient_user=user, at=now),
                      replace_original=True)
