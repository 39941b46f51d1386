"""What jobs need (database sessions, a Slack client), created on the worker's own event loop.

Dramatiq runs async actors on a loop thread of its own, so the web server's engine and HTTP session
cannot be shared with jobs: each loop gets its own, built on first use and closed at worker shutdown.

`outbound` builds what a delivery sends through besides Slack (the mailer, the pacer, the lease, the
marketing agent) from the configuration: the jobs get theirs here, and so does the inline delivery of a
process without a worker (`handlers.slack.notify`), so both deliver alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import dramatiq
from dramatiq.asyncio import get_event_loop_thread
from redis.asyncio import Redis
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from handlers.jobs.agent import AgentTarget
from handlers.jobs.delivery import delivery_client
from handlers.jobs.mail import Mailer, mailer_from
from handlers.jobs.pacing import LocalPacer, NoPacing, Pacer, RedisPacer
from handlers.metrics import counting
from handlers.ports import DeliveryConfig, JobConfig, JobSender
from models.db import create_engine, create_session_factory, reading_session_factory


@dataclass(frozen=True)
class Outbound:
    """What a delivery sends through besides Slack, and how long its claim holds."""

    mailer: Mailer | None  # SMTP_URL set: email-preferring members get email
    pacer: Pacer
    lease: timedelta
    agent: AgentTarget | None = None  # MARKETING_AGENT_URL set: launches are handed to it


def outbound(config: DeliveryConfig, *, redis: Any | None, local_pacer: LocalPacer) -> Outbound:
    """The mailer, the pacer and the lease the configuration asks for. Pacing is shared through Redis
    when there is one (`redis`: a redis.asyncio.Redis), else in this process (`local_pacer`, kept by the
    caller so its slots outlive one delivery); a pace of 0 turns it off."""
    pacer: Pacer = local_pacer
    if config.slack_channel_pace_seconds <= 0:
        pacer = NoPacing()
    elif redis is not None:
        pacer = RedisPacer(redis, namespace=config.redis_namespace, interval=config.slack_channel_pace_seconds)
    agent = (AgentTarget(config.marketing_agent_url, config.marketing_agent_token)
             if config.marketing_agent_url is not None else None)
    return Outbound(mailer=mailer_from(config.smtp_url, config.email_from), pacer=pacer,
                    lease=timedelta(seconds=config.notification_lease_seconds), agent=agent)


@dataclass
class JobResources:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    reading_sessions: async_sessionmaker[AsyncSession] | None  # see `models.db.reading_session_factory`
    slack: AsyncWebClient | None
    http: aiohttp.ClientSession
    outbound: Outbound
    delivery_slack: AsyncWebClient | None = None  # like `slack` without retry handlers: faults go back to the row
    redis: Any = None  # redis.asyncio.Redis when REDIS_URL is set


class JobEnvironment:
    """`queue` is where a job sends its follow-ups (a delayed retry, the owner's notice): the same queue the
    app sends through. None (a job run by hand) leaves them to the sweep."""

    def __init__(self, settings: JobConfig, *, queue: JobSender | None = None,
                 clock: Callable[[], datetime] | None = None):
        self.settings = settings
        self.queue = queue
        self.clock = clock or (lambda: datetime.now(UTC))
        self._resources: dict[asyncio.AbstractEventLoop, JobResources] = {}
        # Embedded mode is one process: its pacing slots are shared by every loop in it.
        self._local_pacer = LocalPacer(settings.slack_channel_pace_seconds)

    async def resources(self) -> JobResources:
        loop = asyncio.get_running_loop()
        if loop not in self._resources:
            self._resources[loop] = self._build()
        return self._resources[loop]

    def _build(self) -> JobResources:
        # DATABASE_POOL_SIZE caps each worker process as it caps each `serve`: one loop, one engine.
        engine = create_engine(self.settings.database_url, pool_size=self.settings.database_pool_size, max_overflow=0,
                               statement_timeout_ms=self.settings.database_statement_timeout_ms)
        http = aiohttp.ClientSession()
        token = self.settings.slack_bot_token
        slack = None
        if token is not None:
            slack = AsyncWebClient(
                token=token.get_secret_value(),
                base_url=self.settings.slack_api_url,
                session=http,
                retry_handlers=counting(
                    [AsyncConnectionErrorRetryHandler(), AsyncRateLimitErrorRetryHandler(max_retry_count=2)]),
            )
        redis = Redis.from_url(self.settings.redis_url) if self.settings.redis_url else None
        return JobResources(engine=engine, sessions=create_session_factory(engine),
                            reading_sessions=reading_session_factory(engine), slack=slack, http=http,
                            outbound=outbound(self.settings, redis=redis, local_pacer=self._local_pacer),
                            delivery_slack=delivery_client(slack) if slack else None, redis=redis)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        resources = self._resources.pop(loop, None)
        if resources is not None:
            await resources.http.close()
            await resources.engine.dispose()
            if resources.redis is not None:
                await resources.redis.aclose()

    def middleware(self) -> dramatiq.Middleware:
        return _CloseOnShutdown(self)


class _CloseOnShutdown(dramatiq.Middleware):
    def __init__(self, env: JobEnvironment):
        self.env = env

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        loop_thread = get_event_loop_thread()
        if loop_thread is not None:  # still running: AsyncIO stops it after this hook
            loop_thread.run_coroutine(self.env.close())
