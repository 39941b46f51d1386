"""One sweep of the outbox: write what became due, then list what should go out now.

No Slack and no queue here: the caller (a periodic job) hands `due_ids` to the delivery actor.
Run it inside one transaction. Two sweeps at once duplicate nothing (dedupe keys); `try_lock` lets a
sweeper skip the work when another is already at it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services import notifications
from services.reminders import due_notifications

# pg_try_advisory_xact_lock key for "the sweeper": an arbitrary constant ("CMSW" in ASCII).
SWEEP_LOCK_KEY = 0x434D5357


@dataclass(frozen=True)
class SweepResult:
    written: int
    due_ids: Sequence[int]


async def sweep(*, db: AsyncSession, now: datetime, limit: int = 500) -> SweepResult:
    written = await due_notifications(db=db, now=now)
    await db.flush()
    return SweepResult(written=written, due_ids=await notifications.due_ids(db=db, now=now, limit=limit))


async def try_lock(db: AsyncSession) -> bool:
    """True if this transaction is the only sweeper; the lock goes with the commit or rollback.

    PostgreSQL: a transaction-scoped advisory lock, never waited for. SQLite: always True, since
    BEGIN IMMEDIATE already lets one writer in at a time.
    """
    if db.get_bind().dialect.name != "postgresql":
        return True
    return bool(await db.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": SWEEP_LOCK_KEY}))
