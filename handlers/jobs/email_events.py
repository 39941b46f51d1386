"""The `email.process_batch` job: a Mailjet post, stored as it came by `POST /webhooks/mailjet`, turned into
events (`services.email_events`); and the hand-out that feeds it.

The job carries the batch's id only. Processing claims the batch, so a job sent twice (the webhook's
hand-out and then the sweep's, or a Dramatiq redelivery) does the work once. A failure another attempt
may get past (the database away, a lock conflict) leaves the batch pending: Dramatiq retries, and the
sweep hands out what is still pending a minute later. Any other failure marks the batch failed, with the
error's type, so a body that cannot be stored does not come back every minute.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.jobs.environment import JobEnvironment
from handlers.jobs.registry import job
from handlers.ports import JobSender
from services import email_events, transactions

log = logging.getLogger(__name__)

PROCESS = "email.process_batch"


@job(PROCESS, max_retries=5, min_backoff=5_000, max_backoff=300_000)
async def process_batch(env: JobEnvironment, *, batch_id: int) -> None:
    resources = await env.resources()
    await process(resources.sessions, batch_id, now=env.clock())


async def process(sessions: async_sessionmaker[AsyncSession], batch_id: int, *,
                  now: datetime) -> email_events.BatchOutcome | None:
    """Process one batch in a transaction of its own (the job's, or the sweep's when no worker runs);
    raises only what is worth another attempt."""

    async def once() -> email_events.BatchOutcome | None:
        async with sessions.begin() as db:
            return await email_events.process_batch(db=db, batch_id=batch_id, now=now)

    try:
        outcome = await transactions.retrying(once)
    except Exception as error:
        if email_events.worth_retrying(error):
            raise
        log.warning("email event batch %d failed: %s", batch_id, type(error).__name__)
        async with sessions.begin() as db:
            await email_events.fail_batch(db=db, batch_id=batch_id, error=type(error).__name__, now=now)
        return None
    if outcome is not None:
        log.info("email event batch %d: %d items, %d stored, %d duplicates, %d without a campaign, %d rejected",
                 batch_id, outcome.events, outcome.stored, outcome.duplicates, outcome.unmatched, outcome.rejected)
    return outcome


async def hand_out(queue: JobSender, batch_ids: Sequence[int]) -> None:
    """Give stored batches to the workers, one job each; raises when the broker is unreachable."""
    for batch_id in batch_ids:
        await queue.enqueue(PROCESS, batch_id=batch_id)
