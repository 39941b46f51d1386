"""Requests that only read do not queue behind writes for SQLite's one write lock.

Every SQLite transaction used to begin with BEGIN IMMEDIATE, so a list or a Home opening waited for
whatever write was under way. Units of work marked `reading` begin deferred (WAL lets readers and a
writer run side by side); changes still take the lock first. PostgreSQL readers never waited for
writers, so this is a SQLite test.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from models import TeamMember
from tests.conftest import RunningApp
from tests.fake_slack import FakeSlack
from tests.held_database import database_held
from tests.home_helpers import home_opened
from tests.slack_helpers import reply_text, send_command


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_reads_go_on_while_a_write_holds_the_lock_and_writes_wait(
    running_app: RunningApp, fake_slack: FakeSlack, db_url: str
) -> None:
    await send_command(running_app, fake_slack, "/campaign", "list")  # Alice's first contact, written now
    fake_slack.reset()
    async with database_held(db_url):  # the write lock, as a long write would hold it
        change = asyncio.create_task(
            send_command(running_app, fake_slack, "/team", "me skills=copywriting"))  # a write: waits
        for command, text in (("/campaign", "list"), ("/task", "mine"), ("/approval", "mine"), ("/team", "list")):
            reply = await send_command(running_app, fake_slack, command, text)
            assert "error id" not in reply_text(reply)
        # Opening the Home writes its outbox row (`services.home_views`): a write, so it waits too.
        await running_app.slack.event(home_opened("U0ALICE"))
        # Four reads were answered while the write lock was held; the change sent before them was not.
        assert not change.done()
        assert fake_slack.calls_to("views.publish") == []
    await fake_slack.wait_for("views.publish")
    reply = await change
    assert "copywriting" in reply_text(reply)
    async with running_app.sessions() as db:
        assert (await db.scalar(select(TeamMember.skills).where(TeamMember.slack_user_id == "U0ALICE"))) == [
            "copywriting"]
