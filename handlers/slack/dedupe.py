"""Drop Events API deliveries already handled: Slack retries events (X-Slack-Retry-Num) and Bolt
passes every retry to the listeners again.

This runs before Bolt answers Slack, so it must not wait on the database: an outage would turn every
event into a 500 or a late answer, and Slack would retry it on top. Event ids are remembered for
WINDOW_SECONDS, which covers Slack's retries (the last comes about five minutes after the first):
in Redis (`SET NX` with an expiry, shared by every instance) when REDIS_URL is set, else in this
process's memory (`handlers.first_seen`, which also says what happens when Redis is slow or down).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.response import BoltResponse

from handlers.deps import Deps
from handlers.first_seen import FirstSeen, first_seen

log = logging.getLogger(__name__)

WINDOW_SECONDS = 15 * 60

Middleware = Callable[[dict[str, Any], AsyncBoltContext, Callable[[], Awaitable[Any]]], Awaitable[BoltResponse | None]]


def seen_events(deps: Deps) -> FirstSeen:
    return first_seen(redis=deps.redis, namespace=deps.settings.redis_namespace, kind="slack-event",
                      seconds=WINDOW_SECONDS)


def drop_repeated_events(deps: Deps) -> Middleware:
    """A global middleware answering a redelivered event with a bare 200 before any listener runs."""
    seen = seen_events(deps)

    async def middleware(body: dict[str, Any], context: AsyncBoltContext,
                         next: Callable[[], Awaitable[Any]]) -> BoltResponse | None:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not await seen.first_time(str(event_id)[:255]):
            log.info("event %s was already handled; acknowledging the redelivery only", event_id)
            return BoltResponse(status=200, body="")
        await next()
        return None

    return middleware
