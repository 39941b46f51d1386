"""Start-up and shutdown: engine, migrations, Redis, the queue, the Slack app and the HTTP app."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from pydantic import SecretStr
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import build_slack_app, build_slack_client, build_web_app
from bot.broker import Queue, create_queue
from bot.jobs import declare_jobs_on
from bot.settings import Settings
from bot.sweeper import Sweeper
from handlers.deps import Deps
from handlers.links import secret_of
from handlers.live import LiveHub
from handlers.slack.inflight import ListenerWork, track
from models import migrate
from models.db import create_engine, create_session_factory, reading_session_factory
from services import links
from services.planning.templates import TemplateLibrary, load_library

if TYPE_CHECKING:  # imported when Socket Mode is used, not by every process
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

log = logging.getLogger(__name__)


class StartupError(Exception):
    """Start-up cannot go on; the message is one line an operator can act on."""


def load_templates(settings: Settings) -> TemplateLibrary:
    """Built-ins plus the team's own; a broken file is logged and skipped, never fatal."""
    library = load_library(settings.templates_dir)
    for problem in library.problems:
        log.warning("template problem: %s", problem)
    return library


class Runtime:
    """Owns every long-lived resource of one process, in start order; `stop` releases them in reverse."""

    def __init__(
        self, settings: Settings, *, run_worker: bool = True, process_before_response: bool = False,
        run_sweeper: bool = False,
    ):
        self.settings = settings
        self.run_worker = run_worker
        self.run_sweeper = run_sweeper
        self.sweeper: Sweeper | None = None
        self.process_before_response = process_before_response
        self.deps: Deps | None = None
        self.queue: Queue | None = None  # handlers see it as a port; stopping it is the runtime's business
        self.slack_app: AsyncApp | None = None
        self.web_app: web.Application | None = None
        self._http: aiohttp.ClientSession | None = None
        self._socket_handler: AsyncSocketModeHandler | None = None

    async def start(self) -> web.Application:
        settings = self.settings
        # One cap on connections; listeners get at most inflight_limit of them (see handlers.slack.inflight).
        engine = create_engine(settings.database_url, pool_size=settings.database_pool_size, max_overflow=0,
                               statement_timeout_ms=settings.database_statement_timeout_ms)
        await self._prepare_schema(engine)
        redis = None
        if settings.redis_url:
            from redis.asyncio import Redis

            redis = Redis.from_url(settings.redis_url)
        self.queue = queue = create_queue(settings.redis_url, namespace=settings.redis_namespace)
        declare_jobs_on(queue, settings)
        if self.run_worker:
            queue.start_embedded_worker()
        live = LiveHub(redis=redis, namespace=settings.redis_namespace)
        await live.start()  # subscribed (Redis mode) before the first request can change anything
        sessions = create_session_factory(engine)
        if secret_of(settings) is None:  # nothing configures the dashboard links' key: the database keeps one
            self.settings = settings = await with_stored_link_secret(settings, sessions)
        self.deps = Deps(
            settings=settings, engine=engine, sessions=sessions,
            reading_sessions=reading_session_factory(engine), redis=redis, queue=queue,
            templates=load_templates(settings),
            inflight=ListenerWork(max_inflight=settings.inflight_limit, slot_wait_seconds=settings.slot_wait_seconds),
            live=live,
        )
        self._http = aiohttp.ClientSession()
        if self.run_sweeper:
            self.sweeper = Sweeper(self.deps, interval_seconds=settings.sweep_interval_seconds)
            self.sweeper.start()
        if settings.slack_enabled:
            self.slack_app = self._build_slack_app()
        # In Socket Mode Slack never calls us over HTTP, so the HTTP endpoint stays off.
        self.web_app = build_web_app(self.deps, None if settings.socket_mode else self.slack_app)
        if settings.socket_mode:
            await self._connect_socket_mode()
        return self.web_app

    def sweeper_for_tests(self) -> Sweeper:
        """A sweeper over this runtime's dependencies that tests drive by hand (`run_once`)."""
        assert self.deps is not None
        return self.sweeper or Sweeper(self.deps, interval_seconds=self.settings.sweep_interval_seconds)

    def _build_slack_app(self) -> AsyncApp:
        assert self.deps is not None and self.settings.slack_bot_token is not None
        client = build_slack_client(
            token=self.settings.slack_bot_token.get_secret_value(),
            base_url=self.settings.slack_api_url,
            session=self._http,
        )
        secret = self.settings.slack_signing_secret
        app = build_slack_app(
            self.deps,
            client=client,
            # Socket Mode requests are not signed; Bolt still wants a value.
            signing_secret=secret.get_secret_value() if secret else secrets.token_hex(16),
            process_before_response=self.process_before_response,
        )
        assert self.deps.inflight is not None
        track(app, self.deps.inflight)  # so stop() can wait for the work after each ack
        return app

    async def _connect_socket_mode(self) -> None:
        from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

        assert self.settings.slack_app_token is not None and self.slack_app is not None
        handler = AsyncSocketModeHandler(self.slack_app, self.settings.slack_app_token.get_secret_value())
        self._socket_handler = handler
        client = handler.client
        # connect() retries every failure forever, a refused token too; ask for the URL first
        # (connect() then uses it) so a token Slack refuses stops start-up instead of hanging it.
        try:
            client.wss_uri = await client.issue_new_wss_url()
        except SlackApiError as error:
            raise StartupError(f"SLACK_APP_TOKEN: Slack refused it ({error.response.get('error')})") from None
        except (aiohttp.ClientError, TimeoutError) as error:
            log.warning("Slack is not reachable yet (%s); retrying", error)  # connect() retries
        await handler.connect_async()
        log.info("connected to Slack in Socket Mode")

    async def _prepare_schema(self, engine) -> None:  # type: ignore[no-untyped-def]
        """The embedded SQLite default migrates itself; a shared PostgreSQL is migrated on purpose."""
        if self.settings.is_sqlite:
            await migrate.upgrade(engine)
            return
        try:
            current = await migrate.current_revision(engine)
        except Exception as error:
            await engine.dispose()
            raise StartupError(f"DATABASE_URL: cannot connect to the database ({type(error).__name__}: {error})") from None
        if current != migrate.head_revision():
            await engine.dispose()
            raise StartupError(
                f"The database schema is at {current or 'nothing'}, the code needs {migrate.head_revision()}: "
                "run `campaign-manager migrate`."
            )

    async def stop(self) -> None:
        """Stop taking work, let what was taken finish within SHUTDOWN_GRACE_SECONDS, then release.

        The HTTP server must already be stopped (`serve` cleans its runner up first): no request comes in,
        every one that did has been answered, and its listener task is tracked. The listeners and a sweep
        under way finish together; the queue (embedded worker) after them, since both hand it work; the
        engine last.
        """
        grace = self.settings.shutdown_grace_seconds
        if self._socket_handler is not None:
            await self._socket_handler.close_async()
        await asyncio.gather(
            self.sweeper.stop(grace_seconds=grace) if self.sweeper is not None else asyncio.sleep(0),
            self.deps.inflight.drain(grace) if self.deps is not None and self.deps.inflight else asyncio.sleep(0),
        )
        if self._http is not None:
            await self._http.close()
        if self.queue is not None:
            await asyncio.to_thread(self.queue.stop, timeout_ms=int(grace * 1000))
        if self.deps is not None:
            await self.deps.live.stop()
            if self.deps.redis is not None:
                await self.deps.redis.aclose()
            await self.deps.engine.dispose()




async def with_stored_link_secret(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> Settings:
    """`settings` with DASHBOARD_SECRET set to the key the database keeps (`services.links.stored_secret`),
    so links made by any process on this database (another instance, the console) open on every one."""
    async with sessions.begin() as db:
        value = await links.stored_secret(db=db)
    return settings.model_copy(update={"dashboard_secret": SecretStr(value)})
