"""Requests per token per minute: a fixed window, counted in Redis when the app has one (so every
instance shares the count), in this process otherwise (embedded mode).

A fixed window lets a client send up to twice the limit across a window's edge; for a guard against a
runaway integration that is fine, and it costs one INCR per request. `Retry-After` says when the window
that refused the request ends. The limit is API_RATE_LIMIT_PER_MINUTE (`limit`); without one, LIMIT_PER_WINDOW,
read on every call, so tests can lower it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

LIMIT_PER_WINDOW = 600
WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int  # seconds until the window ends (when refused)
    remaining: int


@dataclass
class RateLimiter:
    redis: Any | None = None
    namespace: str = "campaign-manager"
    limit: int | None = None  # API_RATE_LIMIT_PER_MINUTE; None: LIMIT_PER_WINDOW
    _window: int = -1
    _counts: dict[int, int] = field(default_factory=dict)

    async def hit(self, token_id: int, *, now: float | None = None) -> Verdict:
        moment = time.time() if now is None else now
        window = int(moment // WINDOW_SECONDS)
        count = await self._count(token_id, window)
        limit = self.limit if self.limit is not None else LIMIT_PER_WINDOW
        retry_after = max(1, math.ceil((window + 1) * WINDOW_SECONDS - moment))
        return Verdict(allowed=count <= limit, retry_after=retry_after, remaining=max(0, limit - count))

    async def _count(self, token_id: int, window: int) -> int:
        if self.redis is not None:
            key = f"{self.namespace}:api:rate:{token_id}:{window}"
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, WINDOW_SECONDS * 2)
                count, _ = await pipe.execute()
            return int(count)
        if window != self._window:  # a new window: the old counts are of no use any more
            self._window, self._counts = window, {}
        self._counts[token_id] = self._counts.get(token_id, 0) + 1
        return self._counts[token_id]
