"""Drop Events API deliveries already handled: Slack retries events (X-Slack-Retry-Num) and Bolt
passes every retry to the listeners again."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.response import BoltResponse

from handlers.slack.context import deps_of
from services import events

log = logging.getLogger(__name__)


async def drop_repeated_events(
    body: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[Any]]
) -> BoltResponse | None:
    event_id = body.get("event_id") if body.get("type") == "event_callback" else None
    if event_id:
        async with deps_of(context).sessions.begin() as db:
            fresh = await events.first_delivery(db=db, event_id=str(event_id))
        if not fresh:
            log.info("event %s was already handled; acknowledging the redelivery only", event_id)
            return BoltResponse(status=200, body="")
    await next()
    return None
