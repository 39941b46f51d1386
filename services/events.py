"""Remember which inbound events were handled, so a redelivered one is not handled twice."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from models import ProcessedEvent
from models.upsert import insert_ignore

KEEP_FOR = timedelta(days=2)  # Slack retries within minutes; older ids only take space


async def first_delivery(*, db: AsyncSession, event_id: str) -> bool:
    """True the first time an id is seen; False for every repeat, even two arriving at once."""
    return await insert_ignore(db, ProcessedEvent, {"event_id": event_id[:64]}, conflict=["event_id"])


async def forget_old(*, db: AsyncSession, now: datetime) -> int:
    result = await db.execute(delete(ProcessedEvent).where(ProcessedEvent.received_at < now - KEEP_FOR))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
