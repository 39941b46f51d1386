"""Run a whole transaction again when the database aborted it only to break a lock conflict.

PostgreSQL aborts one of two transactions that wait on each other (a deadlock, SQLSTATE 40P01) or that
cannot be serialised (40001); SQLite gives up with "database is locked" once its busy timeout has run
out. In each case the aborted transaction wrote nothing, and the same work run again from the start
almost always goes through. Taking the campaign's row first (`campaigns.lock_campaign`) makes these
rare; this is the net under it, so a person hears of a conflict only when every attempt failed.

The body given to `retrying` must be safe to run again: it opens its own transaction and nothing it
does leaves the process before the commit (messages are sent after it, or written to the outbox).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
ATTEMPTS = 3
# The first retry waits about this long, the next twice as long: long enough for the transaction that
# won to commit (a re-plan takes milliseconds), short enough that a person does not notice.
BASE_DELAY_SECONDS = 0.05


def is_retryable(error: BaseException) -> bool:
    """True for a transaction the database aborted to break a lock conflict, and nothing else.

    Constraint violations, bad SQL and lost connections are not conflicts: running them again would
    fail the same way, or (a lost connection) is the outage handling's business.
    """
    if not isinstance(error, DBAPIError):
        return False
    if getattr(error.orig, "sqlstate", None) in RETRYABLE_SQLSTATES:
        return True
    return isinstance(error, OperationalError) and "database is locked" in str(error.orig)


def backoff(attempt: int, base: float = BASE_DELAY_SECONDS) -> float:
    """Seconds to wait after failed attempt number `attempt` (1, 2, ...): doubling, with jitter so the
    transactions that collided do not collide again at the same moment."""
    return base * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)


async def retrying(
    body: Callable[[], Awaitable[T]],
    *,
    attempts: int = ATTEMPTS,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """`await body()`, again (up to `attempts` runs in all) while it fails with a retryable error."""
    for attempt in range(1, attempts):
        try:
            return await body()
        except DBAPIError as error:
            if not is_retryable(error):
                raise
            delay = backoff(attempt)
            log.warning("transaction aborted by a lock conflict (attempt %d of %d), retrying in %.0f ms: %s",
                        attempt, attempts, delay * 1000, error.orig)
            await sleep(delay)
    return await body()  # the last attempt: whatever it raises is the caller's to report
