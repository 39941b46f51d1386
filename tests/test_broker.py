"""The Dramatiq broker: a real round trip through Redis, and the in-process embedded worker."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any

import dramatiq
import redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.broker import create_queue
from bot.jobs import declare_jobs_on
from handlers.jobs.delivery import DELAY_MARGIN_MS
from handlers.jobs.notifications import DELIVER
from services import notifications
from tests import services
from tests.conftest import app_settings
from tests.fake_slack import FakeSlack


def _round_trip(queue_name: str, redis_url: str | None, namespace: str) -> tuple[list[int], dict]:
    queue = create_queue(redis_url, namespace=namespace)
    done = threading.Event()
    seen: list[int] = []

    @dramatiq.actor(queue_name=queue_name, broker=queue.broker, max_retries=0)
    def remember(value: int) -> None:
        seen.append(value)
        if len(seen) == 3:
            done.set()

    for value in (1, 2, 3):
        remember.send(value)
    stats_before = queue.stats()
    worker = dramatiq.Worker(queue.broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        assert done.wait(10), f"only {seen} arrived"
    finally:
        worker.stop()
        queue.broker.close()
    return sorted(seen), stats_before


def test_messages_travel_through_the_real_redis(redis_prefix: str) -> None:
    seen, stats = _round_trip("roundtrip", services.REDIS_URL, redis_prefix)
    assert seen == [1, 2, 3]
    assert stats["kind"] == "redis" and stats["queues"]["roundtrip"] == 3  # waiting in Redis before the worker ran
    keys = redis.Redis.from_url(services.REDIS_URL).keys(f"{redis_prefix}:*")
    assert keys, "the broker should have written under our own key prefix"


def test_the_embedded_queue_needs_no_redis() -> None:
    seen, stats = _round_trip("embedded", None, "unused")
    assert seen == [1, 2, 3] and stats["kind"] == "embedded" and stats["queues"]["embedded"] == 3


def test_the_embedded_worker_starts_and_stops() -> None:
    queue = create_queue(None)
    queue.start_embedded_worker()
    assert queue.stats()["worker_running"] is True
    queue.stop()
    assert queue.worker is None


def test_only_an_embedded_queue_without_its_worker_has_no_consumer(redis_prefix: str) -> None:
    embedded = create_queue(None)
    assert embedded.has_consumer is False  # a caller must deliver inline: nothing would run the job
    embedded.start_embedded_worker()
    assert embedded.has_consumer is True
    embedded.stop()
    on_redis = create_queue(services.REDIS_URL, namespace=redis_prefix)
    assert on_redis.has_consumer is True  # worker processes elsewhere take it (or the sweep, once they are back)
    on_redis.broker.close()


class Sent(dramatiq.Middleware):
    """Every message the broker took, as (job, keyword arguments, delay in ms)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any], int | None]] = []
        self.delayed = threading.Event()

    def after_enqueue(self, broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None) -> None:
        self.messages.append((message.actor_name, dict(message.kwargs), delay))
        if delay is not None:
            self.delayed.set()


async def test_a_jobs_delayed_resend_goes_through_the_queue_the_app_sends_with(
    db_url: str, sessions: async_sessionmaker[AsyncSession], fake_slack: FakeSlack
) -> None:
    async with sessions.begin() as db:
        nid = await notifications.notify(db=db, dedupe_key="resend", kind="generic", payload={"summary": "Hi"},
                                         recipient_channel="C0GENERAL", now=datetime.now(UTC))
    assert nid is not None
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=7)
    queue = create_queue(None)
    sent = Sent()
    queue.broker.add_middleware(sent)
    declare_jobs_on(queue, app_settings(db_url, fake_slack, slack_channel_pace_seconds=0))
    queue.start_embedded_worker()
    try:
        await queue.enqueue(DELIVER, notification_ids=[nid])  # a hand-out: a batch of ids, at once
        assert await asyncio.to_thread(sent.delayed.wait, 20), f"no delayed re-send; sent {sent.messages}"
    finally:
        await asyncio.to_thread(queue.stop)
    assert sent.messages == [
        (DELIVER, {"notification_ids": [nid]}, None),
        (DELIVER, {"notification_id": nid}, 7_000 + DELAY_MARGIN_MS),  # Retry-After, through the same queue
    ]
