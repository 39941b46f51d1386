"""The Dramatiq broker: Redis when REDIS_URL is set, otherwise in-process (embedded mode).

`Queue` is what handlers know as `handlers.ports.JobQueue`; it knows no job itself: `bot.jobs` binds the
handlers' jobs to it (this module imports nothing from handlers, so the two layers do not import in a circle).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware.asyncio import AsyncIO

from bot.logs import RequestIdMiddleware

log = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "campaign-manager"


@dataclass
class Queue:
    broker: dramatiq.Broker
    kind: str  # "redis" | "embedded"
    namespace: str = DEFAULT_NAMESPACE
    worker: dramatiq.Worker | None = field(default=None)
    actors: dict[str, dramatiq.Actor[Any, Any]] = field(default_factory=dict)

    async def enqueue(self, job_name: str, *, delay_ms: int | None = None, **kwargs: Any) -> None:
        """Send a job by name; the Redis client is synchronous, so it runs off the event loop."""
        actor = self.actors[job_name]
        await asyncio.to_thread(actor.send_with_options, kwargs=kwargs, delay=delay_ms)

    @property
    def has_consumer(self) -> bool:
        """Worker processes take Redis jobs (they may be down for a while; the sweep covers that); embedded
        jobs run only if this process started its worker."""
        return self.kind != "embedded" or self.worker is not None

    def start_embedded_worker(self, *, threads: int = 2) -> None:
        """Embedded mode runs the actors inside the app process, so a newcomer needs only Python."""
        if self.kind != "embedded" or self.worker is not None:
            return
        self.worker = dramatiq.Worker(self.broker, worker_threads=threads, worker_timeout=100)
        self.worker.start()

    def stop(self, *, timeout_ms: int = 5_000) -> None:
        """Stop the embedded worker (Dramatiq lets running jobs finish within `timeout_ms`), then the broker."""
        if self.worker is not None:
            self.worker.stop(timeout=timeout_ms)
            self.worker = None
        self.broker.close()

    def stats(self) -> dict[str, Any]:
        """Queue depths for /health/detailed; raises if the broker's backend is unreachable."""
        queues = sorted(self.broker.get_declared_queues())
        if isinstance(self.broker, RedisBroker):
            client = self.broker.client
            depth = {name: client.llen(f"{self.namespace}:{name}") for name in queues}
            dead = {name: client.zcard(f"{self.namespace}:{name}.XQ") for name in queues}
        else:
            stub = self.broker
            assert isinstance(stub, StubBroker)
            depth = {name: stub.queues[name].qsize() for name in queues}
            dead = {name: len(stub.dead_letters_by_queue[name]) for name in queues}
        return {
            "kind": self.kind,
            "queues": depth,
            "dead_letters": dead,
            "worker_running": self.worker is not None if self.kind == "embedded" else None,
        }


def create_queue(redis_url: str | None, *, namespace: str = DEFAULT_NAMESPACE) -> Queue:
    broker: dramatiq.Broker
    if redis_url:
        broker = RedisBroker(url=redis_url, namespace=namespace)
        kind = "redis"
    else:
        broker = StubBroker()
        broker.emit_after("process_boot")  # the stub only enforces time limits after boot
        kind = "embedded"
    broker.add_middleware(AsyncIO())
    broker.add_middleware(RequestIdMiddleware())  # log lines of a job carry the id of what queued it
    dramatiq.set_broker(broker)
    return Queue(broker=broker, kind=kind, namespace=namespace)
