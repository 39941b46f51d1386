"""The `notifications.deliver` job and the hand-out that feeds it.

A job carries ids only (a batch of them, or one); `handlers.jobs.delivery` claims, posts and records.
Dramatiq's own retries are off: the outbox row carries the retry state, and a retry is this same job
sent again with a delay.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import dramatiq
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.jobs.delivery import Clock, Delivery, Enqueue, Outcome, backoff, delivery_client
from handlers.jobs.environment import JobEnvironment
from handlers.jobs.registry import job
from services.mailer import Mailer

if TYPE_CHECKING:
    from bot.broker import Queue

log = logging.getLogger(__name__)

DELIVER = "notifications.deliver"
BATCH = 50  # ids per job: one claim and one record per batch instead of per row


@job(DELIVER, max_retries=0)
async def deliver(env: JobEnvironment, *, notification_id: int | None = None,
                  notification_ids: list[int] | None = None) -> None:
    ids = list(notification_ids or []) + ([notification_id] if notification_id is not None else [])
    resources = await env.resources()
    async def enqueue(nid: int, delay_ms: int | None) -> None:
        broker = env.broker or dramatiq.get_broker()
        actor = broker.get_actor(DELIVER)
        await asyncio.to_thread(actor.send_with_options, kwargs={"notification_id": nid}, delay=delay_ms)

    delivery = Delivery(sessions=resources.sessions, slack=resources.delivery_slack,
                        clock=env.clock, enqueue=enqueue, mailer=resources.mailer, pacer=resources.pacer,
                        lease=env.lease)
    outcomes = await delivery.run(ids)
    counts = Counter(outcome.status for outcome in outcomes.values())
    # A batch that only skipped (rows not due, held elsewhere, or not sendable here) did nothing to report.
    level = logging.DEBUG if set(counts) <= {"skipped"} else logging.INFO
    log.log(level, "delivery batch of %d: %s", len(ids), dict(counts))


async def hand_out(queue: Queue, notification_ids: Sequence[int], *, batch: int = BATCH) -> None:
    """Give due rows to the workers, `batch` ids a job; raises when the broker is unreachable."""
    for start in range(0, len(notification_ids), batch):
        await queue.enqueue(DELIVER, notification_ids=list(notification_ids[start:start + batch]))


async def deliver_notification(
    *, sessions: async_sessionmaker[AsyncSession], slack: AsyncWebClient, notification_id: int, clock: Clock,
    enqueue: Enqueue | None, mailer: Mailer | None = None,
) -> Outcome:
    """One row, here and now (the app's inline path when no worker runs, and tests)."""
    delivery = Delivery(sessions=sessions, slack=slack, clock=clock, enqueue=enqueue, mailer=mailer)
    return (await delivery.run([notification_id]))[notification_id]


def plan_alert_key(campaign_id: int, alerts: list[str], computed_at: datetime | None) -> str:
    digest = hashlib.sha256("\n".join(alerts).encode()).hexdigest()[:16]
    return f"plan-alert:{campaign_id}:{digest}:{computed_at.isoformat() if computed_at else 'never'}"


__all__ = ["BATCH", "DELIVER", "Outcome", "backoff", "deliver", "deliver_notification",
           "delivery_client", "hand_out", "plan_alert_key"]
