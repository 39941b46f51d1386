"""The Dramatiq broker: a real round trip through Redis, and the in-process embedded worker."""

from __future__ import annotations

import threading

import dramatiq
import redis

from bot.broker import create_queue
from tests import services


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
