"""Listener work after the ack: bounded by the database pool, and waited for at shutdown.

With `process_before_response=False` Bolt acks and then runs the rest of a listener as a loose asyncio
task that nothing bounds and nothing waits for (see docs/RELIABILITY.md, "Bursts" and "Deploys"):

- A burst: every request is acknowledged and the work piles up behind the connection pool, to fail
  with a pool timeout 30 s later. `slot()` lets at most MAX_INFLIGHT units of work use the database at
  once; one that finds no free slot within SLOT_WAIT_SECONDS raises `Busy` before anything is written,
  and the listener's usual error path answers "busy, try again in a moment" through the response_url.
- A deploy: SIGTERM used to drop the replies of requests already acknowledged. `track()` records each
  listener task when Bolt starts it; `drain()` waits for them, replies included, within the grace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.listener.async_listener_start_handler import AsyncListenerStartHandler

from services.errors import DomainError

log = logging.getLogger(__name__)

BUSY_TEXT = "I'm busy right now: nothing was changed. Try again in a moment."

# New requests are shed once the oldest unit of work waiting for a slot has waited this share of the
# slot wait. A queue that forms for a moment (a garbage collection, ten requests in the same
# millisecond) clears within a few milliseconds and sheds nothing; one that does not move is the
# overload that shedding is for.
SHED_AFTER_SHARE_OF_WAIT = 0.2

# Set while this task (or the task that spawned it) holds a slot: a nested unit of work reuses it
# instead of waiting for a second one, which under full load could never come.
_holding: ContextVar[bool] = ContextVar("holding_listener_slot", default=False)


class Busy(DomainError):
    """No slot came free in time; nothing was done, and the person is told to try again."""

    def __init__(self) -> None:
        super().__init__(BUSY_TEXT)


@dataclass
class _Waiter:
    since: float
    gone: bool = False


class ListenerWork:
    """The slots listeners take to use the database, and every listener task still running."""

    def __init__(self, *, max_inflight: int, slot_wait_seconds: float):
        self.max_inflight = max_inflight
        self.slot_wait = slot_wait_seconds
        self._slots = asyncio.Semaphore(max_inflight)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.shed_after = slot_wait_seconds * SHED_AFTER_SHARE_OF_WAIT
        self.waiting = 0  # units of work queued for a slot now
        self.busy_answers = 0  # since start, for logs and the benchmark
        self._last_busy_log = 0.0
        # When each waiter began to wait, in arrival order (the semaphore serves them in that order);
        # a waiter that got its slot or gave up is marked and dropped once it reaches the front.
        self._queue: deque[_Waiter] = deque()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the MAX_INFLIGHT slots for the block; `Busy` when none frees within the wait."""
        if _holding.get():
            yield
            return
        waiter = _Waiter(since=time.monotonic())
        self._queue.append(waiter)
        self.waiting += 1
        try:
            async with asyncio.timeout(self.slot_wait):
                await self._slots.acquire()
        except TimeoutError:
            self.note_busy()
            raise Busy() from None
        finally:
            self.waiting -= 1
            waiter.gone = True
            self._drop_gone()
        token = _holding.set(True)
        try:
            yield
        finally:
            _holding.reset(token)
            self._slots.release()

    def full(self) -> bool:
        """Every slot is taken and the queue for one has stopped moving: a new request would only wait
        behind it and be told it is busy, so it may as well be told at once, before any work starts."""
        return self._slots.locked() and self.oldest_wait() >= self.shed_after

    def oldest_wait(self) -> float:
        """How long the unit of work first in the queue for a slot has waited; 0 with no queue."""
        self._drop_gone()
        return time.monotonic() - self._queue[0].since if self._queue else 0.0

    def _drop_gone(self) -> None:
        while self._queue and self._queue[0].gone:
            self._queue.popleft()

    def note_busy(self) -> None:
        self.busy_answers += 1
        now = time.monotonic()
        if now - self._last_busy_log >= 10:  # a burst answers hundreds busy: one line per 10 s
            self._last_busy_log = now
            log.warning("busy: all %d listener slots taken for %.1f s; %d answered busy so far",
                        self.max_inflight, self.slot_wait, self.busy_answers)

    def track_current_task(self) -> None:
        task = asyncio.current_task()
        if task is not None and task not in self._tasks:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @property
    def running(self) -> int:
        return sum(1 for task in self._tasks if not task.done())

    async def drain(self, grace_seconds: float) -> int:
        """Wait up to `grace_seconds` for every tracked listener; cancel the rest and return how many."""
        deadline = time.monotonic() + grace_seconds
        me = asyncio.current_task()
        announced = False
        while pending := {task for task in self._tasks if not task.done() and task is not me}:
            if not announced:
                log.info("waiting up to %.0f s for %d listener(s) to finish", grace_seconds, len(pending))
                announced = True
            left = deadline - time.monotonic()
            if left <= 0:
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                log.warning("%d listener(s) still running after the %.0f s grace were cancelled; "
                            "their replies are lost", len(pending), grace_seconds)
                return len(pending)
            await asyncio.wait(pending, timeout=left)  # then look again: one may have started another
        return 0


class _TrackingStartHandler(AsyncListenerStartHandler):
    """Runs first inside the task Bolt starts for a listener: record that task, then Bolt's own handler."""

    def __init__(self, work: ListenerWork, inner: AsyncListenerStartHandler):
        self.work, self.inner = work, inner

    async def handle(self, request: Any, response: Any) -> None:
        self.work.track_current_task()
        await self.inner.handle(request=request, response=response)


def track(app: AsyncApp, work: ListenerWork) -> None:
    """Have `work` record every listener task of `app`.

    Bolt offers no option for this, but its listener runner calls a start handler at the top of each
    listener task, the one place that runs inside that task. The task is recorded in its first step:
    before the listener's ack, or, for events that Bolt acks itself, in a step already queued when the
    request is answered; a drain that starts after the HTTP server has stopped therefore misses none.
    """
    runner = app.listener_runner
    if runner.process_before_response:
        return  # the listener runs inside the request, which the server's own shutdown waits for
    runner.listener_start_handler = _TrackingStartHandler(work, runner.listener_start_handler)


@asynccontextmanager
async def slot(work: ListenerWork | None) -> AsyncIterator[None]:
    """`work.slot()`, or nothing when no limit is configured (the local console, some tests)."""
    if work is None:
        yield
        return
    async with work.slot():
        yield
