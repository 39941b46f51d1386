"""Per-channel pacing: at most one Slack post per channel per interval, across every worker.

Slack allows about one message per second per channel and answers bursts with 429s. Rather than
spend round trips on 429s, delivery reserves a slot for each channel first: a slot a few seconds away
is waited for in place, a later one sends the row back to the outbox until then (a wait, not a failure).

`reserve` is all-or-nothing per key: a slot beyond `max_wait` is *not* taken, so a deferred row
does not push every later message for that channel further out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)

# KEYS: one pacing key per post. ARGV: interval ms, max wait ms. Returns the wait in ms for each key.
# The clock is Redis's own, so workers on different machines agree on it.
_RESERVE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local waits = {}
for i, key in ipairs(KEYS) do
  local free_at = tonumber(redis.call('GET', key) or '0')
  if free_at < now then free_at = now end
  local wait = free_at - now
  if wait <= max_wait then
    redis.call('SET', key, free_at + interval, 'PX', wait + interval + 1000)
  end
  waits[i] = wait
end
return waits
"""


class Pacer(Protocol):
    async def reserve(self, channels: Sequence[str], *, max_wait: float) -> list[float]:
        """Seconds to wait before posting to each channel (in order, repeats allowed); a wait above
        `max_wait` means no slot was taken: try again after that long."""
        ...


class NoPacing:
    async def reserve(self, channels: Sequence[str], *, max_wait: float) -> list[float]:
        return [0.0] * len(channels)


class LocalPacer:
    """One process (embedded mode): the slots live in memory."""

    def __init__(self, interval: float, clock: Any = time.monotonic):
        self.interval = interval
        self.clock = clock
        self._free_at: dict[str, float] = {}

    async def reserve(self, channels: Sequence[str], *, max_wait: float) -> list[float]:
        now = self.clock()
        waits = []
        for channel in channels:
            free_at = max(self._free_at.get(channel, now), now)
            wait = free_at - now
            if wait <= max_wait:
                self._free_at[channel] = free_at + self.interval
            waits.append(wait)
        if len(self._free_at) > 10_000:  # forget channels whose slot has passed
            self._free_at = {k: v for k, v in self._free_at.items() if v > now}
        return waits


class RedisPacer:
    """Several worker processes: the slots live in Redis, under the deployment's key prefix."""

    def __init__(self, client: Any, *, namespace: str, interval: float):
        self.client = client  # redis.asyncio.Redis
        self.prefix = f"{namespace}:pace:"
        self.interval_ms = int(interval * 1000)
        self._script = client.register_script(_RESERVE)

    async def reserve(self, channels: Sequence[str], *, max_wait: float) -> list[float]:
        if not channels:
            return []
        try:
            waits = await self._script(keys=[self.prefix + c for c in channels],
                                       args=[self.interval_ms, int(max_wait * 1000)])
        except Exception:  # pacing is a courtesy: without Redis, post and let Slack's 429s pace us
            log.warning("pacing unavailable; posting without it", exc_info=True)
            return [0.0] * len(channels)
        return [int(w) / 1000 for w in waits]
