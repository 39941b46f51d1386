"""The App Home leaves through the outbox (`services.home_views`): a Slack outage delays a Home instead of
losing it, Homes asked for while one is on its way coalesce into one more publish that shows the latest
state, and the refresh row never shows in the person's inbox.

Signed requests to the real app (embedded worker, both backends); waits are on a call the fake Slack
recorded or on an outbox row's state.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from models import Notification, NotificationChannel, NotificationStatus, TaskStatus
from services import delivery as delivery_policy
from services.home_views import home_key
from services.kinds import Kind
from tests.conftest import RunningApp
from tests.fake_slack import FakeSlack
from tests.home_helpers import (
    get_task,
    home_click,
    home_opened,
    member,
    next_publish,
    planned_campaign,
    publishes,
    task_buckets,
    texts,
)
from tests.support.waiting import eventually, settled


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The job's backoff (30 s and up) shortened so the outage need not be waited out."""
    monkeypatch.setattr(delivery_policy, "BACKOFF_BASE", timedelta(milliseconds=100))


async def home_row(app: RunningApp, user_id: int) -> Notification | None:
    async with app.sessions() as db:
        return await db.scalar(select(Notification).where(Notification.dedupe_key == home_key(user_id)))


async def with_news(app: RunningApp, summary: str) -> int:
    """Alice, with one unread alert in her inbox (key `news`); her member id."""
    async with app.sessions.begin() as db:
        alice = await member(db, "U0ALICE")
        db.add(Notification(dedupe_key="news", kind=Kind.PLAN_ALERT, recipient_id=alice.id,
                            channel=NotificationChannel.IN_APP, status=NotificationStatus.SENT,
                            payload={"summary": summary}, scheduled_for=datetime.now(UTC)))
        return alice.id


async def news_read(app: RunningApp) -> bool:
    async with app.sessions() as db:
        news = await db.scalar(select(Notification).where(Notification.dedupe_key == "news"))
        assert news is not None
        return news.read_at is not None


async def sent(app: RunningApp, user_id: int) -> bool:
    row = await home_row(app, user_id)
    return row is not None and row.status is NotificationStatus.SENT


async def test_a_home_opened_while_slack_is_down_is_published_when_it_recovers(
    running_app: RunningApp, fake_slack: FakeSlack
) -> None:
    alice_id = await with_news(running_app, "Launch slips <!here>")
    fake_slack.fail_next("views.publish", status=503, times=2)

    assert (await running_app.slack.event(home_opened("U0ALICE")))[0] == 200
    view = await next_publish(fake_slack, "U0ALICE", 2)  # two refused, the third taken

    assert any("Launch slips &lt;!here&gt;" in text for text in texts(view))
    await eventually(lambda: sent(running_app, alice_id), what="the Home's row recorded as sent")
    assert await news_read(running_app)  # marked read once Slack took the view
    row = await home_row(running_app, alice_id)
    assert row is not None and row.channel is NotificationChannel.SLACK and row.retries == 2  # the refusals
    # The refresh is not news: the inbox shows and counts the one alert only.
    assert "Inbox (1 unread)" in texts(view)


async def test_no_inbox_line_is_marked_read_until_slack_took_the_view(
    running_app: RunningApp, fake_slack: FakeSlack
) -> None:
    alice_id = await with_news(running_app, "Unread until seen")
    fake_slack.fail_next("views.publish", error="user_not_found")  # refused for good

    assert (await running_app.slack.event(home_opened("U0ALICE")))[0] == 200
    await fake_slack.wait_for("views.publish")
    await settled(running_app, outbox=True)
    assert not await news_read(running_app)
    row = await home_row(running_app, alice_id)
    assert row is not None and row.status is not NotificationStatus.SENT


async def test_changes_while_a_home_is_on_its_way_end_in_one_more_publish_showing_the_latest(
    running_app: RunningApp, fake_slack: FakeSlack
) -> None:
    tasks = await planned_campaign(running_app)
    async with running_app.sessions() as db:
        alice_id = (await member(db, "U0ALICE")).id
    fake_slack.hold_next("views.publish", seconds=1.5)  # the first publish is slow

    assert (await running_app.slack.event(home_opened("U0ALICE")))[0] == 200
    await eventually(lambda: _claimed(running_app, alice_id), what="the first Home on its way")
    # Meanwhile: the Home opened twice more, and a task started and another finished from it.
    for _ in range(2):
        assert (await running_app.slack.event(home_opened("U0ALICE")))[0] == 200
    await running_app.slack.interaction(home_click("U0ALICE", "task_start", str(tasks["brief"])))
    await running_app.slack.interaction(home_click("U0ALICE", "task_done", str(tasks["brief"])))
    await eventually(lambda: _done(running_app, tasks["brief"]), what="the task done")

    await next_publish(fake_slack, "U0ALICE", 1)  # the held one, then exactly one more
    await settled(running_app, outbox=True)
    assert len(publishes(fake_slack, "U0ALICE")) == 2
    latest = publishes(fake_slack, "U0ALICE")[-1].args["view"]
    assert tasks["brief"] not in sum(task_buckets(latest).values(), [])  # done: off the list
    assert await sent(running_app, alice_id)


async def _claimed(app: RunningApp, user_id: int) -> bool:
    row = await home_row(app, user_id)
    return row is not None and row.status is NotificationStatus.CLAIMED


async def _done(app: RunningApp, task_id: int) -> bool:
    return (await get_task(app, task_id)).status is TaskStatus.DONE
