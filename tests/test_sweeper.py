"""The sweep loop end to end: a task comes due, the sweep writes the reminder, a worker delivers it once.

Embedded (in-process worker) and Redis (a real `campaign-manager worker` process) both; and Redis down
for a while loses nothing: the rows wait, and the first sweep after it is back hands them out.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.sweeper import Sweeper
from models import Notification, NotificationStatus, Task, TeamMember
from services import notifications
from tests import services
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, RunningApp, app_settings, start_app
from tests.fake_slack import FakeSlack
from tests.slack_helpers import send_command
from tests.support.waiting import eventually, redis_jobs_done, settled
from tests.test_cli import CLI, cli_env


async def a_task_due_in_an_hour(app, fake: FakeSlack) -> Task:  # type: ignore[no-untyped-def]
    """A campaign whose first task is Alice's and due in an hour (so the 2 h reminder is due now)."""
    await send_command(app, fake, "/team", "me hours=mon-sun 0-24")  # no quiet hours in the way
    launch = (datetime.now(UTC) + timedelta(days=60)).date().isoformat()
    await send_command(app, fake, "/campaign", f'new "Sweep launch" newsletter {launch}')
    await send_command(app, fake, "/task", "assign T-1 <@U0ALICE|alice>")
    async with app.sessions.begin() as db:
        task = await db.get(Task, 1)
        assert task is not None
        task.due_at = datetime.now(UTC) + timedelta(hours=1)
    return task


async def delivered(app, fake: FakeSlack, *, seconds: float = 20) -> Notification:  # type: ignore[no-untyped-def]
    async def sent() -> Notification | None:
        async with app.sessions() as db:
            rows = (await db.scalars(select(Notification).where(Notification.kind == "task_reminder"))).all()
        return rows[0] if rows and rows[0].status is NotificationStatus.SENT else None

    return await eventually(sent, what="the reminder to be sent", timeout=seconds, every=0.1)


def reminders_posted(fake: FakeSlack) -> list:  # type: ignore[type-arg]
    return [call for call in fake.calls_to("chat.postMessage") if "Coming up" in str(call.args.get("text"))]


async def test_embedded_sweep_delivers_a_reminder_once(db_url: str, fake_slack: FakeSlack) -> None:
    async with start_app(app_settings(db_url, fake_slack), fake_slack, run_worker=True) as app:
        await a_task_due_in_an_hour(app, fake_slack)
        sweeper = app.runtime.sweeper_for_tests()
        first = await sweeper.run_once()
        assert first is not None and first.written >= 1
        row = await delivered(app, fake_slack)
        again = await sweeper.run_once()  # the same slot again: nothing new, nothing resent
        assert again is not None and again.written == 0
        await settled(app)
    assert row.slack_ts and len(reminders_posted(fake_slack)) == 1
    posted = reminders_posted(fake_slack)[0]
    actions = [block for block in posted.args["blocks"] if block["type"] == "actions"][0]
    assert {element["action_id"] for element in actions["elements"]} >= {"task_done", "task_snooze_hour"}


async def test_redis_down_then_back_loses_nothing(
    db_url: str, fake_slack: FakeSlack, redis_prefix: str, tmp_path: Path
) -> None:
    # Redis is unreachable: the sweep writes the row, the hand-off fails, the row waits.
    down = app_settings(db_url, fake_slack, redis_url="redis://127.0.0.1:9/0", redis_namespace=redis_prefix)
    async with start_app(down, fake_slack) as app:
        await a_task_due_in_an_hour(app, fake_slack)
        result = await app.runtime.sweeper_for_tests().run_once()
        assert result is not None and result.written >= 1
    async with start_app(app_settings(db_url, fake_slack), fake_slack) as app:
        async with app.sessions() as db:
            waiting = (await db.scalars(select(Notification.status))).all()
        assert set(waiting) == {NotificationStatus.PENDING}

    # Redis is back, with two worker processes: two sweeps hand the row out twice; it arrives once.
    up = app_settings(db_url, fake_slack, redis_url=services.REDIS_URL, redis_namespace=redis_prefix)
    env = cli_env(DATABASE_URL=db_url, REDIS_URL=services.REDIS_URL, REDIS_NAMESPACE=redis_prefix,
                  SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.base_url)
    worker = await asyncio.create_subprocess_exec(CLI, "worker", "--processes", "2", "--threads", "2", env=env,
                                                  cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL,
                                                  stderr=asyncio.subprocess.PIPE)
    try:
        async with start_app(up, fake_slack) as app:
            sweeper = app.runtime.sweeper_for_tests()
            await sweeper.run_once()
            await sweeper.run_once()  # a second sweep before delivery hands it out again: still one post
            await delivered(app, fake_slack, seconds=30)
            await redis_jobs_done(services.REDIS_URL, redis_prefix)  # the second hand-out was run too
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(worker.communicate(), 30)
    assert worker.returncode == 0, stderr.decode()
    assert len(reminders_posted(fake_slack)) == 1


async def records_of(caplog: pytest.LogCaptureFixture, logger: str, at_least: int, *, seconds: float = 20) -> list:  # type: ignore[type-arg]
    """Wait until `logger` has logged `at_least` lines, at any level: the signal that the loop went round."""

    def logged() -> list | None:  # type: ignore[type-arg]
        found = [record for record in caplog.records if record.name == logger]
        return found if len(found) >= at_least else None

    return await eventually(logged, what=f"{at_least} lines from {logger}", timeout=seconds, every=0.01)


async def a_message_nobody_can_send(app: RunningApp) -> None:
    """Due now, to Slack, on a server without a Slack token: every sweep finds it due again."""
    async with app.sessions.begin() as db:
        member = TeamMember(slack_user_id="U0ALICE", name="Alice")
        db.add(member)
        await db.flush()
        await notifications.notify(db=db, dedupe_key="idle-test", kind="plan_alert", recipient_id=member.id,
                                   payload={"campaign_id": 1, "campaign_name": "x", "alerts": ["late"]},
                                   now=datetime.now(UTC))


async def test_an_idle_server_logs_nothing_new_each_sweep(
    db_url: str, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = app_settings(db_url, fake_slack, slack_bot_token=None, slack_signing_secret=None)
    async with start_app(settings, fake_slack, run_worker=True) as app:
        await a_message_nobody_can_send(app)
        sweeper = Sweeper(app.runtime.deps, interval_seconds=0.01)
        sweeper.start()
        try:
            sweeps = await records_of(caplog, "bot.sweeper", 5)
            batches = await records_of(caplog, "handlers.jobs.notifications", 3)
        finally:
            await sweeper.stop()
    # The first sweep hands the row out: news. The same row again and again, skipped each time, is not.
    assert [r.levelno for r in sweeps][:5] == [logging.INFO] + [logging.DEBUG] * 4, [r.getMessage() for r in sweeps]
    assert {r.levelno for r in batches} == {logging.DEBUG}, [r.getMessage() for r in batches]
