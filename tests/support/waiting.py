"""Waiting in tests on definite signals, never on a fixed sleep.

`eventually` polls a condition until it holds (for effects another engine or process makes, which send
no event a test could wait on). `settled` waits until an in-process app has nothing left to do: every
listener it started has finished, and the embedded worker's queues are empty. A check that "nothing
more was sent" is made after `settled`, so it cannot pass merely because it looked too early.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from tests.conftest import RunningApp

T = TypeVar("T")


async def eventually(
    check: Callable[[], T | Awaitable[T]], *, what: str, timeout: float = 20.0, every: float = 0.02  # noqa: ASYNC109
) -> T:
    """The first truthy value `check()` returns; AssertionError naming `what` after `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                value = check()
                if inspect.isawaitable(value):
                    value = await value
                if value:
                    return value  # type: ignore[return-value]
                await asyncio.sleep(every)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None


async def settled(app: RunningApp, *, outbox: bool = False, timeout: float = 20.0) -> None:  # noqa: ASYNC109
    """Wait until the app has finished everything it started: its Slack listeners (and what they hand
    out inline after their commit) and, with an embedded worker, the jobs queued so far.

    `outbox`: also until no outbox row is being sent or due now (for a test whose rows all can go out;
    one that seeds rows nobody will send must leave it off).
    """
    deps = app.runtime.deps
    assert deps is not None and deps.inflight is not None

    async def listeners_done() -> bool:
        # A listener's task is counted once it runs: look twice, a loop turn apart, so one that was
        # just scheduled by the request's ack is seen.
        if deps.inflight.running:
            return False
        await asyncio.sleep(0)
        return deps.inflight.running == 0

    await eventually(listeners_done, what="the app's listeners to finish", timeout=timeout)
    queue = deps.queue
    if queue is not None and getattr(queue, "worker", None) is not None:
        for name in sorted(queue.broker.get_declared_queues()):
            await asyncio.to_thread(queue.broker.join, name, timeout=int(timeout * 1000))
    await eventually(listeners_done, what="the listeners the jobs started to finish", timeout=timeout)
    if outbox:
        await eventually(lambda: _outbox_idle(app), what="the outbox to have nothing due or in flight",
                         timeout=timeout)


async def _outbox_idle(app: RunningApp) -> bool:
    from datetime import UTC, datetime

    from sqlalchemy import func, or_, select

    from models import Notification, NotificationStatus

    now = datetime.now(UTC)
    async with app.sessions() as db:
        busy = await db.scalar(select(func.count()).select_from(Notification).where(or_(
            Notification.status == NotificationStatus.CLAIMED,
            (Notification.status == NotificationStatus.PENDING) & (Notification.scheduled_for <= now))))
    return not busy


async def redis_jobs_done(redis_url: str, namespace: str, *, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    """Wait until worker processes have finished every job queued in Redis under `namespace`.

    Dramatiq's Redis broker keeps a message's body in `<namespace>:<queue>.msgs` from the moment it is
    queued until a worker acks it after running it (dead letters move to `.XQ.msgs`), so no body left
    outside the dead-letter hashes means nothing is queued, delayed or running.
    """
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)

    async def nothing_left() -> bool:
        hashes = [key async for key in client.scan_iter(match=f"{namespace}:*.msgs")]
        for key in hashes:
            if not key.endswith(b".XQ.msgs") and await client.hlen(key):
                return False
        return True

    try:
        await eventually(nothing_left, what=f"the jobs queued under {namespace} to be done", timeout=timeout,
                         every=0.05)
    finally:
        await client.aclose()
