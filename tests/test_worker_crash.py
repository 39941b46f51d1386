"""A worker process killed between claiming a notification and sending it: delivered after the lease."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.jobs.notifications import DELIVER
from models import Notification, NotificationStatus
from services import notifications
from tests import services
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, app_settings, start_app
from tests.fake_slack import FakeSlack
from tests.test_cli import CLI, cli_env
from tests.test_delivery import make_world

LEASE_SECONDS = 3


async def until(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    for _ in range(int(seconds * 10)):  # polling another process's effects: no event to wait on
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"after {seconds} s: {what}")


async def status(sessions: async_sessionmaker[AsyncSession], nid: int) -> NotificationStatus:
    async with sessions() as db:
        row = await db.get(Notification, nid)
        assert row is not None
        return row.status


async def start_worker(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    # its own process group: the CLI forks Dramatiq's processes, and a crash takes them all
    return await asyncio.create_subprocess_exec(
        CLI, "worker", "--processes", "1", "--threads", "2", env=env, cwd=cwd, start_new_session=True,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )


async def test_a_worker_killed_between_claim_and_send_delivers_once_after_the_lease(
    db_url: str, fake_slack: FakeSlack, redis_prefix: str, tmp_path: Path
) -> None:
    settings = app_settings(db_url, fake_slack, redis_url=services.REDIS_URL, redis_namespace=redis_prefix)
    env = cli_env(DATABASE_URL=db_url, REDIS_URL=services.REDIS_URL, REDIS_NAMESPACE=redis_prefix,
                  SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.base_url,
                  NOTIFICATION_LEASE_SECONDS=str(LEASE_SECONDS))
    async with start_app(settings, fake_slack) as app:
        world = await make_world(app.sessions, fake_slack)
        async with app.sessions.begin() as db:
            nid = await notifications.notify(db=db, dedupe_key="crash", kind="generic", payload={"text": "once"},
                                             recipient_id=world.bob_id, now=datetime.now(UTC))
        assert nid is not None and app.runtime.deps is not None and app.runtime.deps.queue is not None

        # The first worker claims the row and hangs in its post: Slack has not acted on it yet.
        fake_slack.hold_next("chat.postMessage", seconds=60)
        doomed = await start_worker(env, tmp_path)
        await app.runtime.deps.queue.enqueue(DELIVER, notification_ids=[nid])
        await until(lambda: asyncio.sleep(0, bool(fake_slack.holding)), 40, "the post never reached Slack")
        assert await status(app.sessions, nid) is NotificationStatus.CLAIMED

        os.killpg(doomed.pid, signal.SIGKILL)  # no shutdown hooks, no ack: a crash
        await doomed.wait()
        await until(lambda: asyncio.sleep(0, bool(fake_slack.held)), 10, "the hung post was not abandoned")
        assert world.posts() == []

        survivor = await start_worker(env, tmp_path)
        try:
            sweeper = app.runtime.sweeper_for_tests()
            result = await sweeper.run_once()  # inside the lease: the row is nobody's to hand out
            assert result is not None and nid not in result.due_ids
            await asyncio.sleep(LEASE_SECONDS)
            result = await sweeper.run_once()  # the lease ran out: the sweep hands it to the survivor
            assert result is not None and nid in result.due_ids
            await until(lambda: _sent(app.sessions, nid), 40, "never delivered after the lease")
            result = await sweeper.run_once()  # nothing left to hand out, so nothing more can be posted
            assert result is not None and not result.due_ids
        finally:
            survivor.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(survivor.communicate(), 30)

    assert [call.args["channel"] for call in world.posts()] == ["U0BOB"]
    assert survivor.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr


async def _sent(sessions: async_sessionmaker[AsyncSession], nid: int) -> bool:
    return await status(sessions, nid) is NotificationStatus.SENT
