"""Event de-duplication without the database: Redis (SET NX, expiring) or this process's memory."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from handlers.first_seen import MemoryWindow, RedisWindow
from handlers.slack.dedupe import WINDOW_SECONDS
from tests import services
from tests.conftest import app_settings, start_app
from tests.fake_slack import FakeSlack
from tests.home_helpers import home_opened, publishes
from tests.support.waiting import redis_jobs_done, settled
from tests.support.worker import worker_process

SLACK_DEADLINE = 3.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_remembers_an_id_for_the_window_only() -> None:
    clock = Clock()
    seen = MemoryWindow(seconds=60, clock=clock)
    assert await seen.first_time("Ev1") and not await seen.first_time("Ev1")
    clock.now += 59
    assert not await seen.first_time("Ev1")
    clock.now += 2
    assert await seen.first_time("Ev1")


async def test_memory_forgets_the_oldest_beyond_its_limit() -> None:
    seen = MemoryWindow(seconds=WINDOW_SECONDS, limit=2)
    assert [await seen.first_time(event_id) for event_id in ("Ev1", "Ev2", "Ev3")] == [True, True, True]
    assert await seen.first_time("Ev1")  # pushed out by Ev3
    assert not await seen.first_time("Ev3")


@pytest.fixture
async def redis(redis_prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(services.REDIS_URL)
    yield client
    await client.aclose()


async def test_redis_is_shared_by_instances_and_expires(redis: Redis, redis_prefix: str) -> None:
    one, other = (RedisWindow(redis, prefix=f"{redis_prefix}:slack-event:", seconds=WINDOW_SECONDS) for _ in range(2))
    firsts = await asyncio.gather(*(seen.first_time("Ev1") for seen in (one, other, one, other)))
    assert sorted(firsts) == [False, False, False, True]
    assert 0 < await redis.ttl(f"{redis_prefix}:slack-event:Ev1") <= WINDOW_SECONDS


async def test_a_redis_that_does_not_answer_falls_back_to_memory_in_time(redis_prefix: str) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # takes the connection, never answers

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = Redis.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        seen = RedisWindow(client, prefix=f"{redis_prefix}:slack-event:", seconds=WINDOW_SECONDS)
        async with asyncio.timeout(SLACK_DEADLINE):
            assert await seen.first_time("Ev1")
            assert not await seen.first_time("Ev1")
    finally:
        await client.aclose()
        server.close()


async def test_a_redelivered_event_is_handled_once_in_redis_mode(fake_slack: FakeSlack, db_url: str,
                                                                  redis_prefix: str, tmp_path: Path) -> None:
    settings = app_settings(db_url, fake_slack, redis_url=services.REDIS_URL, redis_namespace=redis_prefix)
    async with start_app(settings, fake_slack) as app, worker_process(db_url, fake_slack, redis_prefix, tmp_path):
        envelope = home_opened("U0ALICE", event_id="Ev0REDIS")
        assert (await app.slack.event(envelope))[0] == 200
        await fake_slack.wait_for("views.publish")
        await settled(app, outbox=True)
        retry = await app.slack.event(envelope, retry_num=1, retry_reason="http_timeout",
                                      timestamp=int(time.time()) + 1)  # Slack re-signs a retry
        assert retry[0] == 200
        # Handled, the retry would have asked for a Home, which the worker would have published by now.
        await settled(app, outbox=True)
        await redis_jobs_done(services.REDIS_URL, redis_prefix)
        assert len(publishes(fake_slack, "U0ALICE")) == 1
        assert (await app.slack.event(home_opened("U0ALICE", event_id="Ev0LATER")))[0] == 200
        await fake_slack.wait_for("views.publish", count=2)
        await settled(app, outbox=True)
    assert len(publishes(fake_slack, "U0ALICE")) == 2
