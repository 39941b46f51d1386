"""The sweep loop: every SWEEP_INTERVAL_SECONDS, write what has come due and hand it to the workers.

It runs in every `serve` process; a database lock lets one sweep at a time, and the outbox's dedupe
keys make even two concurrent sweeps harmless. Due times live in the tables, not in the broker, so a
sweep after downtime catches up, and a row whose enqueue was lost (Redis down) is handed out again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from handlers import request_ids
from handlers.deps import Deps
from handlers.jobs import email_events as email_jobs
from handlers.jobs.notifications import hand_out
from handlers.links import secret_of
from handlers.metrics import SWEEP_DURATION, SWEEPS
from services import changes, email_events, sweep

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(self, deps: Deps, *, interval_seconds: float):
        self.deps = deps
        self.interval = interval_seconds
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._last_handed_out: frozenset[int] = frozenset()

    async def run_once(self, now: datetime | None = None) -> sweep.SweepResult | None:
        """One sweep; None when another process holds the sweep lock. Its log lines, and those of the jobs
        it hands out, carry one `sweep-…` id."""
        with request_ids.bound(request_ids.current.get() or request_ids.new_id("sweep")):
            started = time.perf_counter()
            try:
                result = await self._sweep(now or datetime.now(UTC))
            except Exception:
                SWEEPS.labels("failed").inc()
                raise
            if result is None:
                SWEEPS.labels("locked").inc()
                return None
            SWEEPS.labels("ran").inc()
            SWEEP_DURATION.observe(time.perf_counter() - started)
            return result

    async def _sweep(self, now: datetime) -> sweep.SweepResult | None:
        async with self.deps.sessions.begin() as db:
            if not await sweep.try_lock(db):
                return None
            settings = self.deps.settings
            # The weekly status links its campaign's timeline: a link issued in this transaction.
            result = await sweep.sweep(db=db, now=now, holidays=settings.team_holidays,
                                       link_secret=secret_of(settings), public_url=settings.public_url)
        await self.deps.live.publish(changes.changed_in(db))  # the daily re-plans, to open dashboards
        await self._dispatch(result.due_ids)
        await self._email_batches(now)
        return result

    async def _dispatch(self, notification_ids: Sequence[int]) -> None:
        queue = self.deps.queue
        if queue is None:
            return
        try:
            await hand_out(queue, notification_ids)
        except Exception:  # Redis down: the rows stay pending and the next sweep hands them out
            log.warning("could not hand notifications to the queue; the next sweep retries", exc_info=True)

    async def _email_batches(self, now: datetime) -> None:
        """Mailjet posts whose job was lost (Redis down when they came) or that no worker would run (embedded
        without one): to the queue again, or processed here. A batch done meanwhile is a no-op (its claim)."""
        async with (self.deps.reading_sessions or self.deps.sessions)() as db:
            waiting = await email_events.waiting_batches(db=db, received_before=now - email_events.PICK_UP_AFTER)
        if not waiting:
            return
        log.info("sweep: %d email event batches still pending, handing them out", len(waiting))
        queue = self.deps.queue
        try:
            if queue is not None and queue.has_consumer:
                await email_jobs.hand_out(queue, waiting)
                return
            for batch_id in waiting:
                await email_jobs.process(self.deps.sessions, batch_id, now=now)
        except Exception:  # the batches stay pending: the next sweep tries again
            log.warning("could not process email event batches; the next sweep retries", exc_info=True)

    def _report(self, result: sweep.SweepResult) -> None:
        """INFO when the sweep wrote rows or handed out ones it did not hand out last time; DEBUG otherwise.

        A row nobody can send yet (no Slack token, a recipient waiting out a rate limit) stays due and is
        handed out on every sweep: one line a minute saying so again is noise on an idle server.
        """
        handed_out = frozenset(result.due_ids)
        news = bool(result.written or handed_out - self._last_handed_out)
        self._last_handed_out = handed_out
        log.log(logging.INFO if news else logging.DEBUG, "sweep: %d new notifications, %d handed out",
                result.written, len(result.due_ids))

    def start(self) -> None:
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._loop(), name="sweeper")

    async def stop(self, *, grace_seconds: float = 10) -> None:
        """Skip the next sweep; let one under way finish, hand-out included, within `grace_seconds`.

        Cancelling a sweep is safe (its transaction rolls back, the next sweep catches up) but not clean:
        one cancelled between its commit and the hand-out leaves due rows waiting a whole interval.
        """
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        done, _ = await asyncio.wait({task}, timeout=grace_seconds)
        if not done:
            log.warning("the sweep did not finish within %.0f s of shutdown; cancelled", grace_seconds)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            with request_ids.bound(request_ids.new_id("sweep")):  # its report and failure lines too
                try:
                    result = await self.run_once()
                    if result is not None:
                        self._report(result)
                except Exception:
                    log.exception("sweep failed; trying again next interval")
            with contextlib.suppress(TimeoutError):  # the interval, cut short by stop()
                await asyncio.wait_for(self._stopping.wait(), self.interval)
