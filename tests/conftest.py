"""Shared fixtures: a migrated database per backend, the fake Slack server, the real app over HTTP."""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.runtime import Runtime
from bot.settings import Settings
from models import Base, migrate
from models.db import create_engine, create_session_factory, is_unreachable
from tests import services
from tests.fake_slack import FakeSlack
from tests.slack_requests import SlackSender
from tests.support.mail import smtp  # noqa: F401 - a fixture: a real SMTP server that keeps what it receives


@pytest.fixture(autouse=True)
def _collected_between_tests() -> Iterator[None]:
    """After each test: collect its garbage, then freeze what survives (as `bot.heap` does for a server).

    One pytest process runs thousands of apps; what outlives them (module caches, pools, compiled
    statements) piles up, and CPython's full collection walks all of it. Late in the suite such a
    collection paused the event loop for over a second in the middle of a request, long enough for a
    form's ack to miss Slack's 3 s. Collected here, between tests, and frozen, the next test's
    collections only walk what that test made.
    """
    yield
    gc.collect()
    gc.freeze()


SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"


async def migrate_url(url: str) -> None:
    """Bring the database at `url` to the newest schema."""
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = Path(tmp_path_factory.mktemp("db")) / "campaign_manager.db"
    url = f"sqlite+aiosqlite:///{path}"
    asyncio.run(migrate_url(url))
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    url = services.create_postgres_database()
    try:
        asyncio.run(migrate_url(url))
        yield url
    finally:
        services.drop_postgres_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Run the test once per backend, each time on an emptied, migrated database."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


EMPTYING_ATTEMPTS = 3  # the app's engine gives a connection 2 s; a test's set-up on a busy machine may need more


async def empty_database(url: str) -> None:
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    for attempt in range(1, EMPTYING_ATTEMPTS + 1):
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                if engine.dialect.name == "postgresql":
                    await connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
                else:
                    for table in tables:
                        await connection.execute(text(f"DELETE FROM {table}"))
                    await connection.execute(text("DELETE FROM sqlite_sequence"))
            return
        except Exception as error:
            if attempt == EMPTYING_ATTEMPTS or not is_unreachable(error):
                raise
        finally:
            await engine.dispose()


@pytest.fixture
async def db_url(database_url: str) -> str:
    await empty_database(database_url)
    return database_url


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(db_url)
    yield create_session_factory(engine)
    await engine.dispose()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    services.check_redis()
    prefix = f"cm-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    services.delete_redis_keys(prefix)


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        fake.add_user("U0ALICE", name="alice", real_name="Alice Archer", email="alice@example.com", tz="Europe/Berlin")
        fake.add_user("U0BOB", name="bob", real_name="Bob Baker", email="bob@example.com", tz="America/Chicago")
        yield fake


def app_settings(db_url: str, fake: FakeSlack, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": db_url,
        "redis_url": None,
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_app_token": None,
        "slack_api_url": fake.base_url,
        "admin_user_ids": "",
        # The fake Slack has no per-channel rate limit, and a paced post makes the app's shutdown wait for
        # the follow-up that sends it: pacing is tested where it is the subject (test_delivery_batches).
        "slack_channel_pace_seconds": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


class RunningApp:
    def __init__(self, runtime: Runtime, server: TestServer, http: aiohttp.ClientSession, slack: SlackSender):
        self.runtime, self.server, self.http, self.slack = runtime, server, http, slack

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        assert self.runtime.deps is not None
        return self.runtime.deps.sessions


@pytest.fixture
async def running_app(db_url: str, fake_slack: FakeSlack) -> AsyncIterator[RunningApp]:
    async with start_app(app_settings(db_url, fake_slack), fake_slack) as app:
        yield app


class start_app:  # noqa: N801  (reads as a verb at the call site: `async with start_app(...)`)
    """The real composition root on a real loopback HTTP server."""

    def __init__(self, settings: Settings, fake: FakeSlack, *, run_worker: bool = False):
        self.runtime = Runtime(settings, run_worker=run_worker)
        self.fake = fake

    async def __aenter__(self) -> RunningApp:
        web_app = await self.runtime.start()
        self.server = TestServer(web_app, host="127.0.0.1")
        await self.server.start_server()
        self.http = aiohttp.ClientSession()
        sender = SlackSender(
            session=self.http, url=str(self.server.make_url("/slack/events")), secret=SIGNING_SECRET, fake=self.fake
        )
        return RunningApp(self.runtime, self.server, self.http, sender)

    async def __aexit__(self, *exc: object) -> None:
        await self.http.close()
        await self.server.close()
        await self.runtime.stop()
