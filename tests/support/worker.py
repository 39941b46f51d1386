"""A real `campaign-manager worker` process on the shared Redis, for tests of Redis mode."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests import services
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.fake_slack import FakeSlack
from tests.test_cli import CLI, cli_env


@asynccontextmanager
async def worker_process(db_url: str, fake_slack: FakeSlack, redis_prefix: str, cwd: Path) -> AsyncIterator[None]:
    """One worker process (2 threads) on `redis_prefix`, stopped with SIGTERM on the way out; it must exit
    cleanly, without a traceback."""
    env = cli_env(DATABASE_URL=db_url, REDIS_URL=services.REDIS_URL, REDIS_NAMESPACE=redis_prefix,
                  SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.base_url)
    worker = await asyncio.create_subprocess_exec(
        CLI, "worker", "--processes", "1", "--threads", "2", env=env, cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(worker.communicate(), 30)
    assert worker.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr
