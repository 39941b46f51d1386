"""Slack is asked about a newcomer before any transaction opens: a slow `users.info` holds no
connection and no lock (on SQLite the one write lock), so everyone else's changes go on meanwhile."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from models import TeamMember
from tests.conftest import RunningApp
from tests.fake_slack import FakeSlack
from tests.slack_helpers import reply_text, send_command
from tests.test_modals import SOON

HELD_SECONDS = 5.0  # the newcomer's lookup hangs this long; the other change must finish well inside it


async def test_a_hanging_profile_lookup_does_not_hold_up_other_changes(
    running_app: RunningApp, fake_slack: FakeSlack
) -> None:
    await send_command(running_app, fake_slack, "/task", "mine")  # Alice is known from here on
    fake_slack.add_user("U0NEWBIE", real_name="Nina Newbie", tz="Asia/Tokyo")
    fake_slack.hold_next("users.info", seconds=HELD_SECONDS)
    newcomer = asyncio.create_task(send_command(running_app, fake_slack, "/task", "mine", user_id="U0NEWBIE"))
    await fake_slack.wait_until(lambda: bool(fake_slack.holding), what="the newcomer's users.info hanging")

    created = await send_command(running_app, fake_slack, "/campaign", f'new "Spring" product_launch {SOON}')

    assert "created" in reply_text(created)
    assert fake_slack.holding, "the change waited for the newcomer's profile lookup"
    await newcomer
    async with running_app.sessions() as db:
        nina = await db.scalar(select(TeamMember).where(TeamMember.slack_user_id == "U0NEWBIE"))
    assert nina is not None and nina.name == "Nina Newbie" and nina.timezone == "Asia/Tokyo"


async def test_a_newcomer_is_looked_up_once_per_request(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    fake_slack.add_user("U0NEWBIE", real_name="Nina Newbie", tz="Asia/Tokyo")
    fake_slack.add_user("U0OTTO", real_name="Otto Other", tz="Europe/Vienna")

    me = await send_command(running_app, fake_slack, "/team", "me role=designer", user_id="U0NEWBIE")
    await send_command(running_app, fake_slack, "/team", "add <@U0OTTO> skills=video", user_id="U0NEWBIE")

    assert "Nina Newbie" in reply_text(me)
    looked_up = [call.args["user"] for call in fake_slack.calls_to("users.info")]
    assert sorted(looked_up) == ["U0NEWBIE", "U0OTTO"], looked_up
