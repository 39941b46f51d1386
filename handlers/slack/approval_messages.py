"""The Slack side of approvals after the transaction: send a stage's request, keep every copy current,
tell the owner.

Each copy (an approver's or delegate's DM, the campaign channel's post) is recorded in
`approval_messages` right after it is posted, so a decision can update all of them with `chat.update`.
Two decisions on one stage can finish in either order, so `sync_copies` reads the stage again after
updating and goes once more when it moved meanwhile: the last writer always leaves the newest state.
A failed Slack call is logged and skipped; the decision itself is already saved.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from slack_sdk.web.async_client import AsyncWebClient

from blocks.approvals import owner_update, request_copy
from handlers.deps import Deps
from models import ApprovalStatus
from services import approval_stages
from services.approval_stages import MessageRef, StageView
from services.approvals import Change

log = logging.getLogger(__name__)

SYNC_ROUNDS = 3


async def read_stage(deps: Deps, campaign_id: int, stage: str) -> tuple[StageView, list[MessageRef]]:
    async with deps.sessions.begin() as db:
        view = await approval_stages.load_stage(db, campaign_id, stage)
        return view, await approval_stages.stage_messages(db, campaign_id, stage)


async def announce(client: AsyncWebClient, deps: Deps, campaign_id: int, stage: str) -> tuple[StageView, list[str]]:
    """Send an opened stage's request to every approver (and delegate) and the campaign channel.

    Returns the stage and the Slack ids (people, or the channel) that could not be reached.
    """
    view, _ = await read_stage(deps, campaign_id, stage)
    unreachable = []
    for vote in view.votes:
        if vote.status is not ApprovalStatus.PENDING:
            continue
        for person in vote.recipients():
            if not await send_request(client, deps, view, vote.approval_id, person.slack_user_id):
                unreachable.append(person.slack_user_id)
    if view.channel_id and not await _post(client, deps, view, None, view.channel_id):
        unreachable.append(view.channel_id)  # most often: the bot was never invited to the channel
    return await sync_copies(client, deps, campaign_id, stage, shown=view), unreachable


async def send_request(client: AsyncWebClient, deps: Deps, view: StageView, approval_id: int, slack_user_id: str) -> bool:
    """A direct message with the buttons; chat.update later needs the DM's own channel id, hence conversations.open."""
    try:
        opened = await client.conversations_open(users=slack_user_id)
        channel = opened["channel"]["id"]
    except Exception:
        log.warning("could not open a DM with %s for approval %s", slack_user_id, approval_id, exc_info=True)
        return False
    return await _post(client, deps, view, approval_id, channel)


async def _post(client: AsyncWebClient, deps: Deps, view: StageView, approval_id: int | None, channel: str) -> bool:
    try:
        posted = await client.chat_postMessage(channel=channel, **request_copy(view, approval_id))
    except Exception:
        log.warning("could not post the request of %s/%s in %s", view.campaign_ref, view.stage, channel, exc_info=True)
        return False
    # Recorded at once: a message posted but not recorded would never be updated.
    async with deps.sessions.begin() as db:
        await approval_stages.record_message(
            db, view.campaign_id, view.stage, MessageRef(channel=posted["channel"], ts=posted["ts"], approval_id=approval_id)
        )
    return True


async def sync_copies(
    client: AsyncWebClient, deps: Deps, campaign_id: int, stage: str, *, shown: StageView | None = None
) -> StageView:
    """Update every copy of the stage's request to its current state; `shown` is what they show already."""
    view = shown
    for _ in range(SYNC_ROUNDS):
        view, messages = await read_stage(deps, campaign_id, stage)
        if view == shown:
            break
        for copy in messages:
            try:
                await client.chat_update(channel=copy.channel, ts=copy.ts, **request_copy(view, copy.approval_id))
            except Exception:
                log.warning("could not update %s/%s in %s", view.campaign_ref, stage, copy.channel, exc_info=True)
        shown = view
    assert view is not None
    return view


async def after_decision(client: AsyncWebClient, deps: Deps, change: Change) -> None:
    """Update the decided stage's copies, send the requests of the stages it opened, tell the owner."""
    if not change.changed:
        return
    view = await sync_copies(client, deps, change.campaign_id, change.stage)
    for stage in change.opened:
        await announce(client, deps, change.campaign_id, stage)
    if change.outcome is not None:
        await tell_owner(client, view, change.opened)


async def tell_owner(client: AsyncWebClient, view: StageView, opened: Sequence[str] = ()) -> None:
    try:
        await client.chat_postMessage(channel=view.owner.slack_user_id, **owner_update(view, opened))
    except Exception:
        log.warning("could not tell the owner of %s about %s", view.campaign_ref, view.stage, exc_info=True)
