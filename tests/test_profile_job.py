"""A profile lookup that fails at first contact is retried by a background job, embedded or on Redis."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.jobs import JobEnvironment
from handlers.jobs.team import refresh_profile
from handlers.slack import context as slack_context
from models import TeamMember
from tests import services
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, RunningApp, app_settings, start_app
from tests.fake_slack import FakeSlack
from tests.support.waiting import eventually
from tests.test_cli import CLI, cli_env


async def first_contact_with_failed_lookup(app: RunningApp, fake: FakeSlack) -> None:
    fake.fail_next("users.info", status=500)
    url = fake.response_url()
    status, _ = await app.slack.command("/campaign", "list", user_id="U0ALICE", response_url=url)
    assert status == 200
    await fake.wait_for("response_url")


async def wait_for_profile(sessions: async_sessionmaker[AsyncSession], seconds: float = 20) -> TeamMember:
    async def filled_in() -> TeamMember | None:
        async with sessions() as db:
            member = await db.scalar(select(TeamMember).where(TeamMember.slack_user_id == "U0ALICE"))
        return member if member is not None and member.profile_synced_at is not None else None

    return await eventually(filled_in, what="the profile to be filled in", timeout=seconds, every=0.1)


async def test_the_embedded_worker_fills_the_profile_in(
    db_url: str, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slack_context, "PROFILE_RETRY_DELAY_MS", None)
    async with start_app(app_settings(db_url, fake_slack), fake_slack, run_worker=True) as app:
        await first_contact_with_failed_lookup(app, fake_slack)
        member = await wait_for_profile(app.sessions)
    assert (member.name, member.timezone) == ("Alice Archer", "Europe/Berlin")
    assert len(fake_slack.calls_to("users.info")) == 2


async def test_a_worker_process_on_real_redis_fills_the_profile_in(
    db_url: str, fake_slack: FakeSlack, redis_prefix: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(slack_context, "PROFILE_RETRY_DELAY_MS", None)
    redis_settings = {"redis_url": services.REDIS_URL, "redis_namespace": redis_prefix}
    async with start_app(app_settings(db_url, fake_slack, **redis_settings), fake_slack) as app:
        await first_contact_with_failed_lookup(app, fake_slack)
        async with app.sessions() as db:  # nothing consumes the queue yet: the job waits in Redis
            member = await db.scalar(select(TeamMember))
        assert member is not None and member.profile_synced_at is None

        env = cli_env(DATABASE_URL=db_url, REDIS_URL=services.REDIS_URL, REDIS_NAMESPACE=redis_prefix,
                      SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.base_url)
        worker = await asyncio.create_subprocess_exec(
            CLI, "worker", "--processes", "1", "--threads", "2", env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        try:
            member = await wait_for_profile(app.sessions, seconds=30)
        finally:
            worker.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(worker.communicate(), 30)
    assert member.email == "alice@example.com"
    assert worker.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr


async def test_a_permanent_slack_error_ends_the_job_without_retrying(
    sessions: async_sessionmaker[AsyncSession], db_url: str, fake_slack: FakeSlack
) -> None:
    async with sessions.begin() as db:
        member = TeamMember(slack_user_id="U0GONE", name="U0GONE")
        db.add(member)
    env = JobEnvironment(app_settings(db_url, fake_slack))
    try:
        await refresh_profile(env, member_id=member.id)  # U0GONE is unknown: user_not_found
        await refresh_profile(env, member_id=987654)  # a deleted member is nothing to do
    finally:
        await env.close()
    async with sessions() as db:
        reloaded = await db.get(TeamMember, member.id)
    assert reloaded is not None and reloaded.profile_synced_at is None
    assert [call.args["user"] for call in fake_slack.calls_to("users.info")] == ["U0GONE"]


async def test_a_passing_slack_error_is_raised_for_dramatiq_to_retry(
    sessions: async_sessionmaker[AsyncSession], db_url: str, fake_slack: FakeSlack
) -> None:
    from slack_sdk.errors import SlackApiError

    async with sessions.begin() as db:
        member = TeamMember(slack_user_id="U0ALICE", name="U0ALICE")
        db.add(member)
    fake_slack.fail_next("users.info", error="fatal_error")
    env = JobEnvironment(app_settings(db_url, fake_slack))
    try:
        with pytest.raises(SlackApiError):
            await refresh_profile(env, member_id=member.id)
        await refresh_profile(env, member_id=member.id)  # the retry succeeds
    finally:
        await env.close()
    async with sessions() as db:
        reloaded = await db.get(TeamMember, member.id)
    assert reloaded is not None and reloaded.name == "Alice Archer"
