"""After a change commits: hand its outbox rows to delivery.

The rows themselves (plan alerts, sign-off requests, reminders, notices) are written by the services in
the change's own transaction; the unit of work (`context.unit_of_work`) collects their ids and calls
`send_many` after the commit. A lost enqueue leaves the rows pending for the sweep. A "Try again" click
that puts failed rows back uses it too.

In embedded mode without a worker (the console, tests) nothing would ever consume the in-process queue,
so the rows are delivered here and now instead, by a delivery built like the job's
(`handlers.jobs.notifications.build_delivery`): the same mailer and pacer from the configuration, and
follow-ups (a paced row, a copy update, the owner's notice, a retry due soon) run here too, in tasks the
listener work tracks, so shutdown waits for them. A follow-up due later than INLINE_FOLLOW_UP_LIMIT_MS is
left to the sweep: its row is due in the table.

One difference from the job: a post never waits in place for its channel's pacing slot. This runs in a
listener before its reply (a modal's answer must come within 3 s), so a row whose channel is busy goes
back to the outbox at once and its follow-up sends it when the slot comes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from handlers.deps import Deps
from handlers.jobs.delivery import Delivery, Enqueue
from handlers.jobs.environment import Outbound, outbound
from handlers.jobs.notifications import build_delivery, delivery_client, hand_out
from handlers.jobs.pacing import LocalPacer

log = logging.getLogger(__name__)

INLINE_FOLLOW_UP_LIMIT_MS = 10_000  # later follow-ups wait for the sweep instead of a task of this process
INLINE_PACE_WAIT = 0.0  # seconds a post waits in place for its channel's slot: none, see the module's doc

_follow_ups: set[asyncio.Task[Any]] = set()  # kept referenced until done (no listener work to track them)


async def send_many(deps: Deps, client: AsyncWebClient, notification_ids: Sequence[int]) -> None:
    """Hand written notifications to the delivery jobs in batches, or deliver them inline when no worker
    would consume the queue (embedded mode without a worker)."""
    if not notification_ids:
        return
    queue = deps.queue
    if queue is not None and not queue.has_consumer:
        queue = None
    try:
        if queue is not None:
            await hand_out(queue, notification_ids)
        else:
            await inline_delivery(deps, client).run(list(notification_ids))
    except Exception:  # the rows stay pending (or claimed until their lease runs out) for the sweep
        log.warning("could not hand notifications %s over for delivery", list(notification_ids), exc_info=True)


def inline_delivery(deps: Deps, client: AsyncWebClient) -> Delivery:
    """The job's delivery, built here: same mailer, pacer and lease, follow-ups run in this process."""
    return build_delivery(sessions=deps.sessions, reading_sessions=deps.reading_sessions,
                          slack=delivery_client(client), clock=lambda: datetime.now(UTC),
                          enqueue=_inline_follow_ups(deps, client), outbound=_outbound(deps),
                          max_pace_wait=INLINE_PACE_WAIT, http=_http_of(client))


def _http_of(client: AsyncWebClient) -> aiohttp.ClientSession | None:
    """The app's HTTP session (the Slack client's), for webhooks' posts; None: they open their own."""
    session = client.session
    return session if isinstance(session, aiohttp.ClientSession) and not session.closed else None


def _outbound(deps: Deps) -> Outbound:
    """Built once per process side and kept in `deps`, so the pacer's slots outlive one unit of work."""
    if deps.inline_outbound is None:
        deps.inline_outbound = outbound(deps.settings, redis=deps.redis,
                                        local_pacer=LocalPacer(deps.settings.slack_channel_pace_seconds))
    return deps.inline_outbound


def _inline_follow_ups(deps: Deps, client: AsyncWebClient) -> Enqueue:
    async def send(notification_id: int, delay_ms: int | None) -> None:
        if delay_ms is not None and delay_ms > INLINE_FOLLOW_UP_LIMIT_MS:
            return  # a retry after a backoff, a long rate limit: the sweep hands the row out when it is due
        task = asyncio.create_task(_follow_up(deps, client, notification_id, delay_ms))
        _follow_ups.add(task)
        task.add_done_callback(_follow_ups.discard)

    return send


async def _follow_up(deps: Deps, client: AsyncWebClient, notification_id: int, delay_ms: int | None) -> None:
    if deps.inflight is not None:
        deps.inflight.track_current_task()  # shutdown drains it with the listeners
    try:
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)
        await inline_delivery(deps, client).run([notification_id])
    except Exception:  # the row is in the table: the sweep sends it
        log.warning("inline follow-up of notification %s failed; the sweep will pick it up", notification_id,
                    exc_info=True)
