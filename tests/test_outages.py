"""PostgreSQL stopped for ~10 s while notifications flow through a real worker, then started again.

Promised (docs/RELIABILITY.md, "Outages"): every notification goes out exactly once; meanwhile Slack is
answered within its 3 s (a command gets "can't reach the database", an event a 200) and
`/health/detailed` answers 503 naming the database. The PostgreSQL and Redis here are the test's own
(tests/private_services.py): the machine's shared servers are never stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from handlers.jobs.notifications import hand_out
from models import Notification, NotificationStatus
from services import notifications
from services.notifications import Draft
from tests.conftest import (
    BOT_TOKEN,
    SIGNING_SECRET,
    RunningApp,
    app_settings,
    empty_database,
    migrate_url,
    start_app,
)
from tests.fake_slack import FakeSlack
from tests.held_database import database_held
from tests.home_helpers import home_opened
from tests.private_services import PrivatePostgres, PrivateRedis, private_postgres, private_redis
from tests.slack_helpers import send_command
from tests.test_cli import cli_env
from tests.test_delivery import World, make_world
from tests.test_worker_crash import start_worker

OUTAGE_SECONDS = 10
LEASE_SECONDS = 30  # longer than the outage: the promise is about outages shorter than the lease
SLACK_DEADLINE = 3.0  # Slack's own contract for an answer
POLITE = "I can't reach the database right now; try again in a moment."


class GatedSlack(FakeSlack):
    """A fake Slack whose posts wait at a gate the test opens: a worker is caught mid-send."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.post_waiting = asyncio.Event()

    async def _handle_api(self, request: web.Request) -> web.Response:
        if request.match_info["method"] == "chat.postMessage" and not self.gate.is_set():
            self.post_waiting.set()
            await self.gate.wait()
        return await super()._handle_api(request)


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


@pytest.fixture
def redis_server() -> Iterator[PrivateRedis]:
    with private_redis() as server:
        yield server


@pytest.fixture
async def gated_slack() -> AsyncIterator[GatedSlack]:
    fake = GatedSlack()
    await fake.start()
    fake.add_user("U0ALICE", name="alice", real_name="Alice Archer", tz="Europe/Berlin")
    fake.add_user("U0BOB", name="bob", real_name="Bob Baker", tz="America/Chicago")
    try:
        yield fake
    finally:
        fake.gate.set()  # or held requests keep the server from closing
        await fake.stop()


async def test_a_database_outage_loses_and_repeats_nothing_and_slack_is_answered_meanwhile(
    postgres: PrivatePostgres, redis_server: PrivateRedis, gated_slack: GatedSlack, tmp_path: Path
) -> None:
    await migrate_url(postgres.url)
    settings = app_settings(postgres.url, gated_slack, redis_url=redis_server.url,
                            notification_lease_seconds=LEASE_SECONDS, slack_channel_pace_seconds=0)
    env = cli_env(DATABASE_URL=postgres.url, REDIS_URL=redis_server.url, SLACK_BOT_TOKEN=BOT_TOKEN,
                  SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=gated_slack.base_url,
                  NOTIFICATION_LEASE_SECONDS=str(LEASE_SECONDS), SLACK_CHANNEL_PACE_SECONDS="0")
    async with start_app(settings, gated_slack) as app:
        world = await make_world(app.sessions, gated_slack)
        in_flight = await _write(world, "in-flight", 12)  # claimed and being posted when the database stops
        handed_out_in_outage = await _write(world, "during", 6)  # their job runs while it is down
        queue = app.runtime.deps.queue if app.runtime.deps else None
        assert queue is not None
        worker = await start_worker(env, tmp_path)
        took: dict[str, float] = {}  # ms; printed for docs/BENCHMARKS.md (pytest -s)
        try:
            await hand_out(queue, in_flight)
            await asyncio.wait_for(gated_slack.post_waiting.wait(), 60)  # the worker holds the batch's lease

            await asyncio.to_thread(postgres.stop)
            stopped_at = time.monotonic()
            gated_slack.gate.set()  # the posts go out now; recording them must wait for the database
            await hand_out(queue, handed_out_in_outage)
            await _slack_is_answered_while_the_database_is_down(app, gated_slack, took)
            await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped_at)))  # the outage itself
            await asyncio.to_thread(postgres.start)
            took["outage"], restarted_at = _ms_since(stopped_at), time.monotonic()

            await _sweep_until_all_sent(app, in_flight + handed_out_in_outage, seconds=LEASE_SECONDS + 30)
            took["all sent after restart"] = _ms_since(restarted_at)
        finally:
            worker.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(worker.communicate(), 30)

    posts = Counter(call.args["channel"] for call in world.posts())
    assert sorted(posts) == sorted(f"C{key}" for key in _keys("in-flight", 12) + _keys("during", 6))
    assert {channel: n for channel, n in posts.items() if n > 1} == {}, "posted more than once"
    assert worker.returncode == 0, stderr.decode()[-3000:]
    assert b"database unreachable while recording" in stderr, "the outage never hit a record: the test proved nothing"
    assert b"Traceback" not in stderr, stderr.decode()[-3000:]
    print(f"\noutage results (ms): {took}; {sum(posts.values())} posts for {len(posts)} notifications")


async def _slack_is_answered_while_the_database_is_down(app: RunningApp, fake: FakeSlack,
                                                         took: dict[str, float]) -> None:
    async with within_slacks_deadline("command answered", took):
        status, _ = await app.slack.command("/campaign", "list", user_id="U0ALICE")
        reply = await fake.wait_for("response_url", timeout=SLACK_DEADLINE)
    assert status == 200 and reply.args["text"] == POLITE and reply.args["response_type"] == "ephemeral"

    async with within_slacks_deadline("event 200", took):
        status, _ = await app.slack.event(home_opened("U0BOB", event_id="Ev0OUTAGE"))
    assert status == 200
    async with within_slacks_deadline("event retry 200", took):
        status, _ = await app.slack.event(home_opened("U0BOB", event_id="Ev0OUTAGE"), retry_num=1,  # re-signed
                                          retry_reason="http_timeout", timestamp=int(time.time()) + 1)
    assert status == 200

    async with within_slacks_deadline("health 503", took), app.http.get(app.url("/health/detailed")) as response:
        body = await response.json()
    assert response.status == 503 and body["checks"]["database"]["ok"] is False, body
    assert "database" in body["failing"] and body["checks"]["database"]["error"].startswith("unreachable")


@contextlib.asynccontextmanager
async def within_slacks_deadline(what: str, took: dict[str, float]) -> AsyncIterator[None]:
    started = time.monotonic()
    async with asyncio.timeout(SLACK_DEADLINE):
        yield
    took[what] = _ms_since(started)


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000)


def _keys(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{n}" for n in range(count)]


async def _write(world: World, prefix: str, count: int) -> list[int]:
    async with world.sessions.begin() as db:
        return await notifications.notify_many(db=db, now=datetime.now(UTC), drafts=[
            Draft(dedupe_key=key, kind="generic", payload={"summary": key, "text": key}, recipient_channel=f"C{key}",
                  campaign_id=world.campaign_id)
            for key in _keys(prefix, count)
        ])


async def _sweep_until_all_sent(app: RunningApp, ids: list[int], *, seconds: float) -> None:
    """Sweep as `serve` does (faster) until every row is recorded as sent."""
    sweeper = app.runtime.sweeper_for_tests()
    left: object = None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            await sweeper.run_once()
            async with app.sessions() as db:
                rows = await db.execute(select(Notification.id, Notification.status).where(Notification.id.in_(ids)))
                left = {nid: status for nid, status in rows.all() if status is not NotificationStatus.SENT}
        except Exception as error:  # the pool is still finding its way back: try the next round
            left = repr(error)
        if left == {}:
            return
        await asyncio.sleep(0.5)  # another process's progress: nothing to wait on but the table
    raise AssertionError(f"not sent after {seconds} s: {left}")


# ---------------------------------------------------------------- a restart, and a statement that never ends


async def test_after_a_postgresql_restart_the_running_app_answers_from_its_pool(
    postgres: PrivatePostgres, fake_slack: FakeSlack
) -> None:
    """The pool's connections all die with the server; each is checked before use (`pool_pre_ping`), so the
    first command after the restart is answered from fresh ones, without restarting the app."""
    await migrate_url(postgres.url)
    async with start_app(app_settings(postgres.url, fake_slack), fake_slack) as app:
        before = await send_command(app, fake_slack, "/campaign", "list")
        assert before.args["text"] != POLITE
        await asyncio.to_thread(postgres.stop)
        await asyncio.to_thread(postgres.start)
        after = await send_command(app, fake_slack, "/campaign", "list")
        assert after.args["text"] == before.args["text"]


async def test_a_statement_past_the_timeout_is_cancelled_and_answered_as_an_error(
    postgres_url: str, fake_slack: FakeSlack
) -> None:
    """DATABASE_STATEMENT_TIMEOUT_MS: a statement stuck behind a lock is cancelled by PostgreSQL, and the person
    gets the usual error answer (an error id) within Slack's 3 s instead of a reply that never comes."""
    await empty_database(postgres_url)
    settings = app_settings(postgres_url, fake_slack, database_statement_timeout_ms=500)
    async with start_app(settings, fake_slack) as app:
        async with app.sessions() as db:  # the app's own connections carry the timeout
            with pytest.raises(DBAPIError, match="statement timeout"):
                await db.execute(text("SELECT pg_sleep(2)"))
        async with database_held(postgres_url), within_slacks_deadline("answered", {}):
            reply = await send_command(app, fake_slack, "/campaign", "list")
        assert "error id" in reply.args["text"] and reply.args["response_type"] == "ephemeral", reply.args
        assert (await send_command(app, fake_slack, "/campaign", "list")).args["text"] != reply.args["text"]
