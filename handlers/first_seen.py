"""Is this key new within a window? Redis (`SET NX` with an expiry, shared by every instance) when
REDIS_URL is set, else this process's memory.

Used in front of the listeners, where nothing may wait on the database or on a slow Redis: a Redis
that errs or takes longer than REDIS_TIMEOUT_SECONDS is replaced by this process's memory for that
call (logged), so Slack is still answered at once; a repeat that reaches another instance meanwhile is
then not recognised.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 0.5  # well inside Slack's 3 s, whatever else the request waits for
MAX_REMEMBERED = 100_000  # in memory: far more keys than one instance sees in a window


class FirstSeen(Protocol):
    async def first_time(self, key: str) -> bool:
        """True the first time a key is offered within the window, False for every repeat."""
        ...


class MemoryWindow:
    """One process: keys in insertion order, which is expiry order (one fixed window)."""

    def __init__(self, *, seconds: float, limit: int = MAX_REMEMBERED, clock: Callable[[], float] = time.monotonic):
        self.seconds, self.limit, self.clock = seconds, limit, clock
        self._expires: OrderedDict[str, float] = OrderedDict()

    async def first_time(self, key: str) -> bool:
        return self.remember(key)

    def remember(self, key: str) -> bool:
        # No await between the check and the insert: two copies arriving together cannot both pass.
        now = self.clock()
        while self._expires and next(iter(self._expires.values())) <= now:
            self._expires.popitem(last=False)
        if key in self._expires:
            return False
        if len(self._expires) >= self.limit:
            self._expires.popitem(last=False)
        self._expires[key] = now + self.seconds
        return True


class RedisWindow:
    """Every instance: one key each, set only if absent, expiring after the window."""

    def __init__(self, redis: Any, *, prefix: str, seconds: int):
        self.redis, self.prefix, self.seconds = redis, prefix, seconds
        self.fallback = MemoryWindow(seconds=seconds)

    async def first_time(self, key: str) -> bool:
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_SECONDS):
                stored = await self.redis.set(self.prefix + key, b"1", nx=True, ex=self.seconds)
        except Exception as error:  # any Redis failure: answer from memory rather than not at all
            log.warning("%s fell back to this instance's memory: %s", self.prefix, type(error).__name__)
            return self.fallback.remember(key)
        return bool(stored)


def first_seen(*, redis: Any | None, namespace: str, kind: str, seconds: int) -> FirstSeen:
    """A window named `kind` (its Redis keys are `<namespace>:<kind>:<key>`)."""
    if redis is None:
        return MemoryWindow(seconds=seconds)
    return RedisWindow(redis, prefix=f"{namespace}:{kind}:", seconds=seconds)
