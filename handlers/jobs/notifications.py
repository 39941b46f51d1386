"""The `notifications.deliver` job and the hand-out that feeds it.

A job carries ids only (a batch of them, or one); `handlers.jobs.delivery` claims, posts and records.
Dramatiq's own retries are off: the outbox row carries the retry state, and a retry is this same job
sent again with a delay.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.jobs.delivery import MAX_PACE_WAIT, Clock, Delivery, Enqueue, Outcome, delivery_client
from handlers.jobs.environment import JobEnvironment, Outbound
from handlers.jobs.mail import Mailer
from handlers.jobs.registry import job
from handlers.ports import JobSender

log = logging.getLogger(__name__)

DELIVER = "notifications.deliver"
BATCH = 50  # ids per job: one claim and one record per batch instead of per row


@job(DELIVER, max_retries=0)
async def deliver(env: JobEnvironment, *, notification_id: int | None = None,
                  notification_ids: list[int] | None = None) -> None:
    ids = list(notification_ids or []) + ([notification_id] if notification_id is not None else [])
    resources = await env.resources()
    delivery = build_delivery(sessions=resources.sessions, reading_sessions=resources.reading_sessions,
                              slack=resources.delivery_slack, clock=env.clock,
                              enqueue=follow_ups(env.queue) if env.queue is not None else None,
                              outbound=resources.outbound, http=resources.http)
    outcomes = await delivery.run(ids)
    counts = Counter(outcome.status for outcome in outcomes.values())
    # A batch that only skipped (rows not due, held elsewhere, or not sendable here) did nothing to report.
    level = logging.DEBUG if set(counts) <= {"skipped"} else logging.INFO
    log.log(level, "delivery batch of %d: %s", len(ids), dict(counts))


async def hand_out(queue: JobSender, notification_ids: Sequence[int], *, batch: int = BATCH) -> None:
    """Give due rows to the workers, `batch` ids a job; raises when the broker is unreachable."""
    for start in range(0, len(notification_ids), batch):
        await queue.enqueue(DELIVER, notification_ids=list(notification_ids[start:start + batch]))


def build_delivery(*, sessions: async_sessionmaker[AsyncSession],
                   reading_sessions: async_sessionmaker[AsyncSession] | None, slack: AsyncWebClient | None,
                   clock: Clock, enqueue: Enqueue | None, outbound: Outbound,
                   max_pace_wait: float = MAX_PACE_WAIT, http: aiohttp.ClientSession | None = None) -> Delivery:
    """A delivery as the job runs it; the inline path (`handlers.slack.notify`) builds its own here too.
    `http`: the session webhooks post through (None: one per post)."""
    return Delivery(sessions=sessions, reading_sessions=reading_sessions, slack=slack, clock=clock, enqueue=enqueue,
                    mailer=outbound.mailer, pacer=outbound.pacer, lease=outbound.lease, max_pace_wait=max_pace_wait,
                    http=http, agent=outbound.agent)


def follow_ups(queue: JobSender) -> Enqueue:
    """A delivery's follow-ups (a delayed re-send, the owner's notice), one row a job, through the same queue
    as every hand-out."""

    async def send(notification_id: int, delay_ms: int | None) -> None:
        await queue.enqueue(DELIVER, notification_id=notification_id, delay_ms=delay_ms)

    return send


async def deliver_notification(
    *, sessions: async_sessionmaker[AsyncSession], slack: AsyncWebClient, notification_id: int, clock: Clock,
    enqueue: Enqueue | None, mailer: Mailer | None = None,
) -> Outcome:
    """One row, here and now, without pacing (tests)."""
    delivery = Delivery(sessions=sessions, slack=slack, clock=clock, enqueue=enqueue, mailer=mailer)
    return (await delivery.run([notification_id]))[notification_id]


__all__ = ["BATCH", "DELIVER", "Outcome", "build_delivery", "deliver", "deliver_notification",
           "delivery_client", "follow_ups", "hand_out"]
