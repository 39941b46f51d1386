"""The "Try again" button on a delivery-failed notice: the service (both backends), the blocks, a real click."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from blocks.notifications import (
    RETRY_DELIVERY,
    RetryTarget,
    delivery_retried,
    nothing_to_retry,
    render,
)
from handlers.jobs.notifications import deliver_notification, delivery_client
from models import Campaign, Notification, NotificationStatus, TeamMember
from services import authz, delivery_retry, notifications
from services.delivery import DeliveryFailed
from services.errors import InvalidInput, NotAllowed
from services.kinds import Kind
from tests.conftest import BOT_TOKEN, RunningApp, app_settings, start_app
from tests.fake_slack import Call, FakeSlack
from tests.fake_slack_blocks import MESSAGE_BLOCK_LIMIT, block_problems
from tests.slack_requests import block_actions_payload
from tests.test_delivery import T0, World, make_world, wait_until_sent

HOSTILE = "<!channel> & <@U1>"


# ---------------------------------------------------------------- the service


async def write(world: World, key: str, *, channel: str | None = None, member: int | None = None,
                campaign_id: int | None = None, due: datetime = T0 - timedelta(days=1),
                status: NotificationStatus = NotificationStatus.FAILED, error: str = "not_in_channel",
                retries: int = 0) -> int:
    """A row as delivery would have left it: due at `due`, then failed (or sent, withdrawn...)."""
    async with world.sessions.begin() as db:
        nid = await notifications.notify(
            db=db, dedupe_key=key, kind="generic", payload={"summary": key}, recipient_channel=channel,
            recipient_id=member if channel is None else None, campaign_id=campaign_id or world.campaign_id,
            scheduled_for=due, now=due,
        )
        assert nid is not None
        row = await db.get(Notification, nid)
        assert row is not None
        row.status, row.last_error, row.retries = status, error, retries
    return nid


async def notice(world: World, recipient: str) -> int:
    """The owner's notice as `services.delivery` writes it, under its dedupe key."""
    async with world.sessions.begin() as db:
        nid = await notifications.notify(
            db=db, dedupe_key=f"delivery-failed:{world.campaign_id}:{recipient}", kind=Kind.DELIVERY_FAILED,
            payload={"reason": "not_in_channel"}, recipient_id=world.owner_id, campaign_id=world.campaign_id, now=T0,
        )
    assert nid is not None
    return nid


Snapshot = dict[int, tuple[Any, ...]]


async def snapshot(sessions: async_sessionmaker[AsyncSession]) -> Snapshot:
    async with sessions() as db:
        rows = await db.scalars(select(Notification))
        return {row.id: (row.status, row.scheduled_for, row.retries, row.last_error, row.claimed_until, row.dedupe_key)
                for row in rows}


async def retry(world: World, *, as_member: int | None = None, admin: bool = False, now: datetime = T0,
                channel: str | None = None, member: int | None = None) -> list[int]:
    async with world.sessions.begin() as db:
        campaign = await db.get(Campaign, world.campaign_id)
        actor = await db.get(TeamMember, as_member or world.owner_id)
        assert campaign is not None and actor is not None
        return await delivery_retry.retry_failed(db=db, campaign=campaign, actor=authz.Actor(actor, is_admin=admin),
                                                 recipient_channel=channel, recipient_id=member, now=now)


async def other_campaign(world: World) -> int:
    async with world.sessions.begin() as db:
        campaign = Campaign(name="Other", template="promo", launch_date=date(2027, 4, 1), owner_id=world.owner_id)
        db.add(campaign)
    return campaign.id


async def test_only_that_recipients_recent_failures_go_back(sessions: async_sessionmaker[AsyncSession],
                                                            fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    elsewhere = await other_campaign(world)
    yesterday = await write(world, "yesterday", channel="C0GONE", retries=3)
    almost_week = await write(world, "almost-a-week", channel="C0GONE", due=T0 - timedelta(days=7))
    untouched = [
        await write(world, "too-old", channel="C0GONE", due=T0 - timedelta(days=7, seconds=1)),
        await write(world, "sent", channel="C0GONE", status=NotificationStatus.SENT, error=""),
        await write(world, "withdrawn", channel="C0GONE", status=NotificationStatus.WITHDRAWN, error="withdrawn: x"),
        await write(world, "pending", channel="C0GONE", status=NotificationStatus.PENDING, error=""),
        await write(world, "other-channel", channel="C0OTHER"),
        await write(world, "other-campaign", channel="C0GONE", campaign_id=elsewhere),
        await write(world, "to-bob", member=world.bob_id),
        await notice(world, "U0BOB"),
    ]
    channel_notice = await notice(world, "C0GONE")
    before = await snapshot(sessions)

    assert await retry(world, channel="C0GONE") == [yesterday, almost_week]

    after = await snapshot(sessions)
    for nid in (yesterday, almost_week):
        status, scheduled_for, retries, last_error, claimed_until, _ = after[nid]
        assert (status, scheduled_for, retries, claimed_until) == (NotificationStatus.PENDING, T0, 0, None)
        assert last_error == "retried after: not_in_channel"
    assert {nid: after[nid] for nid in untouched} == {nid: before[nid] for nid in untouched}
    # The notice's key is freed (the row stays, renamed); the notice about Bob keeps its key.
    assert after[channel_notice][5] == f"delivery-failed:{world.campaign_id}:C0GONE:retried:{channel_notice}"
    assert after[channel_notice][:5] == before[channel_notice][:5]

    # A second click (or a double click) resets nothing and renames nothing.
    assert await retry(world, channel="C0GONE") == []
    assert await snapshot(sessions) == after


async def test_a_members_failures_go_back_by_member_id(sessions: async_sessionmaker[AsyncSession],
                                                       fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    to_bob = await write(world, "to-bob", member=world.bob_id, error="account_inactive")
    to_channel = await write(world, "to-channel", channel="C0GONE")
    bob_notice = await notice(world, "U0BOB")
    before = await snapshot(sessions)

    assert await retry(world, member=world.bob_id) == [to_bob]

    after = await snapshot(sessions)
    assert after[to_bob][:4] == (NotificationStatus.PENDING, T0, 0, "retried after: account_inactive")
    assert after[to_channel] == before[to_channel]
    assert after[bob_notice][5].endswith(f":U0BOB:retried:{bob_notice}")


async def test_only_the_owner_or_an_admin_may_retry(sessions: async_sessionmaker[AsyncSession],
                                                    fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    nid = await write(world, "failed", channel="C0GONE")
    await notice(world, "C0GONE")
    before = await snapshot(sessions)

    with pytest.raises(NotAllowed, match="Only the campaign owner or an admin"):
        await retry(world, as_member=world.bob_id, channel="C0GONE")
    assert await snapshot(sessions) == before

    assert await retry(world, as_member=world.bob_id, admin=True, channel="C0GONE") == [nid]


async def test_a_retry_names_exactly_one_recipient(sessions: async_sessionmaker[AsyncSession],
                                                   fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    await write(world, "failed", channel="C0GONE")
    before = await snapshot(sessions)
    for kwargs in ({}, {"channel": "C0GONE", "member": world.bob_id}):
        with pytest.raises(InvalidInput):
            await retry(world, **kwargs)
    assert await snapshot(sessions) == before


async def test_a_retry_that_fails_again_tells_the_owner_again(sessions: async_sessionmaker[AsyncSession],
                                                              fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    async with sessions.begin() as db:
        nid = await notifications.notify(db=db, dedupe_key="launch", kind="generic", payload={"text": "Launch"},
                                         recipient_channel="C0GONE", campaign_id=world.campaign_id, now=T0)
    assert nid is not None
    fake_slack.fail_next("chat.postMessage", error="not_in_channel", times=2)
    first = await world.deliver(nid)
    assert first.status == "failed" and first.owner_notice_id is not None

    world.clock.now = T0 + timedelta(hours=1)
    assert await retry(world, channel="C0GONE", now=world.clock.now) == [nid]
    again = await world.deliver(nid)

    assert again.status == "failed" and again.owner_notice_id not in (None, first.owner_notice_id)
    async with sessions() as db:
        keys = sorted((await db.scalars(select(Notification.dedupe_key).where(
            Notification.kind == Kind.DELIVERY_FAILED))).all())
    assert keys == [f"delivery-failed:{world.campaign_id}:C0GONE",
                    f"delivery-failed:{world.campaign_id}:C0GONE:retried:{first.owner_notice_id}"]


async def test_a_failed_direct_message_gives_the_owner_a_button_for_that_member(
        sessions: async_sessionmaker[AsyncSession], fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    nid = await world.write("to-bob")  # a DM to Bob, who has left the workspace
    fake_slack.fail_next("chat.postMessage", error="account_inactive")
    outcome = await world.deliver(nid)
    assert outcome.status == "failed" and outcome.owner_notice_id is not None
    async with sessions() as db:
        notice_row = await db.get(Notification, outcome.owner_notice_id)
    assert notice_row is not None and notice_row.payload["recipient_id"] == world.bob_id
    [button] = buttons(render(Kind.DELIVERY_FAILED, notice_row.payload))
    assert button["value"] == f"{world.campaign_id}:member:{world.bob_id}"


# ---------------------------------------------------------------- the blocks


def payload(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"campaign_id": 12, "campaign_name": HOSTILE, "kind": "task_reminder",
                              "recipient_user": None, "recipient_channel": "C0GONE", "reason": "not_in_channel"}
    values.update(overrides)
    return DeliveryFailed(**values).to_payload()


def buttons(rendered: dict[str, Any]) -> list[dict[str, Any]]:
    return [element for block in rendered.get("blocks", []) if block["type"] == "actions"
            for element in block["elements"]]


def assert_valid_and_inert(rendered: dict[str, Any]) -> None:
    assert block_problems(rendered["blocks"], MESSAGE_BLOCK_LIMIT) == []
    dumped = json.dumps(rendered)
    assert "<!channel>" not in dumped and "<@U1>" not in dumped
    assert "&lt;!channel&gt; &amp; &lt;@U1&gt;" in json.dumps(rendered["blocks"])


def test_the_notice_has_a_button_for_a_channel() -> None:
    rendered = render(Kind.DELIVERY_FAILED, payload())
    assert_valid_and_inert(rendered)
    [button] = buttons(rendered)
    assert button["action_id"] == RETRY_DELIVERY and button["text"]["text"] == "Try again"
    assert RetryTarget.parse(button["value"]) == RetryTarget(12, recipient_channel="C0GONE")


def test_the_notice_has_a_button_for_a_member() -> None:
    rendered = render(Kind.DELIVERY_FAILED, payload(recipient_channel=None, recipient_user="U0BOB", recipient_id=5))
    assert_valid_and_inert(rendered)
    [button] = buttons(rendered)
    assert RetryTarget.parse(button["value"]) == RetryTarget(12, recipient_id=5)
    assert "<@U0BOB>" in rendered["blocks"][0]["text"]["text"]


@pytest.mark.parametrize("stored", [
    # written before the button existed: no `recipient_id` key at all
    {"campaign_id": 12, "campaign_name": HOSTILE, "kind": "task_reminder", "recipient_user": None,
     "recipient_channel": "C0GONE", "reason": "not_in_channel"},
    payload(recipient_channel=None, recipient_user="U0BOB"),  # a member whose id was not recorded
    payload(campaign_id=None),
    {**payload(), "campaign_id": "12"},
    {**payload(recipient_channel=None), "recipient_id": True},
    payload(recipient_channel="<!here>"),
])
def test_no_button_without_a_usable_target(stored: dict[str, Any]) -> None:
    rendered = render(Kind.DELIVERY_FAILED, stored)
    assert buttons(rendered) == []
    assert block_problems(rendered["blocks"], MESSAGE_BLOCK_LIMIT) == []
    assert "<!channel>" not in json.dumps(rendered) and "<!here>" not in json.dumps(rendered)


@pytest.mark.parametrize("value", [
    "", "12", "0:channel:C1", "12:channel:c1", "12:channel:<!here>", "12:member:U1", "12:channel:C1 x",
    "-1:member:3", "12:member:3\n", "12:team:T1", "１２:member:3", f"12:channel:{'C' * 33}",
])
def test_a_button_value_that_is_not_ours_is_refused(value: str) -> None:
    assert RetryTarget.parse(value) is None


def test_the_updated_notice_says_what_was_sent_again_and_when() -> None:
    at = datetime(2027, 3, 1, 9, 30, tzinfo=UTC)
    rendered = delivery_retried(campaign_id=12, campaign_name=HOSTILE, sent=2, recipient_channel="C0GONE",
                                recipient_user=None, at=at)
    assert_valid_and_inert(rendered)
    assert rendered["text"] == "Sent again 2 messages to <#C0GONE>"
    assert f"<!date^{int(at.timestamp())}^" in rendered["blocks"][0]["text"]["text"]
    assert buttons(rendered) == []
    one = delivery_retried(campaign_id=12, campaign_name="x", sent=1, recipient_channel=None, recipient_user="U0BOB",
                           at=at)
    assert one["text"] == "Sent again 1 message to <@U0BOB>"
    nothing = nothing_to_retry(recipient_channel="C0GONE", recipient_user=None)
    assert "Nothing to send again to <#C0GONE>" in nothing["text"]
    assert block_problems(nothing["blocks"], MESSAGE_BLOCK_LIMIT) == []


# ---------------------------------------------------------------- end to end: a real failure, a real click


async def failed_and_told(app: RunningApp, fake: FakeSlack) -> tuple[World, int, Call]:
    """A message to C0GONE fails with `not_in_channel` in the embedded worker; the owner's notice is posted."""
    world = await make_world(app.sessions, fake)
    async with app.sessions.begin() as db:
        nid = await notifications.notify(db=db, dedupe_key="launch-post", kind="generic",
                                         payload={"summary": "Launch day", "text": "We are live"},
                                         recipient_channel="C0GONE", campaign_id=world.campaign_id,
                                         now=datetime.now(UTC))
    assert nid is not None and app.runtime.deps is not None and app.runtime.deps.queue is not None
    fake.fail_next("chat.postMessage", error="not_in_channel")
    await app.runtime.deps.queue.enqueue("notifications.deliver", notification_id=nid)
    told = await fake.wait_for("chat.postMessage", lambda call: call.args["channel"] == "U0ALICE", timeout=15)
    assert told.response["ok"]
    async with app.sessions() as db:
        row = await db.get(Notification, nid)
        notice_id = await db.scalar(select(Notification.id).where(Notification.kind == Kind.DELIVERY_FAILED))
    assert row is not None and row.status is NotificationStatus.FAILED and notice_id is not None
    await wait_until_sent(app.sessions, notice_id, 15)  # recorded, so the snapshots below are settled
    return world, nid, told


def click_on(told: Call, user: str, response_url: str) -> dict[str, Any]:
    [button] = buttons(told.args)  # the button as it was really posted to the owner
    return block_actions_payload(user_id=user, action_id=button["action_id"], value=button["value"],
                                 response_url=response_url, channel_id=told.response["channel"],
                                 message_ts=told.response["ts"])


async def answer(app: RunningApp, fake: FakeSlack, told: Call, user: str) -> Call:
    url = fake.response_url()
    status, _ = await app.slack.interaction(click_on(told, user, url))
    assert status == 200
    return await fake.wait_for("response_url", lambda call: url.endswith(call.url_id or "-"), timeout=15)


def channel_posts(fake: FakeSlack, channel: str) -> list[Call]:
    return [call for call in fake.calls_to("chat.postMessage") if call.args["channel"] == channel and not call.injected]


async def test_the_owner_clicks_try_again_and_the_message_goes_out(db_url: str, fake_slack: FakeSlack) -> None:
    async with start_app(app_settings(db_url, fake_slack), fake_slack, run_worker=True) as app:
        world, nid, told = await failed_and_told(app, fake_slack)
        assert channel_posts(fake_slack, "C0GONE") == []

        reply = await answer(app, fake_slack, told, "U0ALICE")

        assert reply.response == "ok" and reply.args["replace_original"] is True
        assert reply.args["text"] == "Sent again 1 message to <#C0GONE>"
        shown = json.dumps(reply.args["blocks"])
        assert f"CM-{world.campaign_id}" in shown and "Spring &lt;sale&gt; &amp; more" in shown
        assert RETRY_DELIVERY not in shown  # the button is gone
        row = await wait_until_sent(app.sessions, nid, 15)
        [post] = channel_posts(fake_slack, "C0GONE")
        assert (row.slack_channel, row.slack_ts) == (post.response["channel"], post.response["ts"])
        assert "Launch day" in post.args["text"]

        # A second click on the same notice changes nothing and says so.
        before = await snapshot(app.sessions)
        again = await answer(app, fake_slack, told, "U0ALICE")
        assert again.args["replace_original"] is False and again.args["response_type"] == "ephemeral"
        assert "Nothing to send again to <#C0GONE>" in again.args["text"]
        assert await snapshot(app.sessions) == before
        assert len(channel_posts(fake_slack, "C0GONE")) == 1


async def test_someone_else_clicking_try_again_is_refused(db_url: str, fake_slack: FakeSlack) -> None:
    async with start_app(app_settings(db_url, fake_slack), fake_slack, run_worker=True) as app:
        _, _, told = await failed_and_told(app, fake_slack)
        before = await snapshot(app.sessions)

        reply = await answer(app, fake_slack, told, "U0BOB")

        assert reply.args["response_type"] == "ephemeral" and reply.args["replace_original"] is False
        assert "Only the campaign owner or an admin can send its failed messages again." in reply.args["text"]
        assert await snapshot(app.sessions) == before
        assert channel_posts(fake_slack, "C0GONE") == []


async def test_a_forged_button_value_changes_nothing(db_url: str, fake_slack: FakeSlack) -> None:
    async with start_app(app_settings(db_url, fake_slack), fake_slack, run_worker=True) as app:
        world, _, told = await failed_and_told(app, fake_slack)
        before = await snapshot(app.sessions)
        for value in ("12:channel:<!here>", f"{world.campaign_id + 1}:channel:C0GONE"):
            url = fake_slack.response_url()
            payload = {**click_on(told, "U0ALICE", url)}
            payload["actions"] = [{**payload["actions"][0], "value": value}]
            assert (await app.slack.interaction(payload))[0] == 200
            reply = await fake_slack.wait_for("response_url", lambda call, url=url: url.endswith(call.url_id or "-"))
            assert reply.args["response_type"] == "ephemeral" and reply.args["replace_original"] is False
        assert await snapshot(app.sessions) == before


async def test_without_a_worker_the_click_delivers_inline(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    app = running_app  # embedded queue, no worker: nothing would consume a job, so the listener delivers
    world = await make_world(app.sessions, fake_slack)
    async with app.sessions.begin() as db:
        nid = await notifications.notify(db=db, dedupe_key="launch-post", kind="generic", payload={"text": "Live"},
                                         recipient_channel="C0GONE", campaign_id=world.campaign_id,
                                         now=datetime.now(UTC))
    assert nid is not None
    fake_slack.fail_next("chat.postMessage", error="not_in_channel")
    slack = delivery_client(AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.base_url))
    failed = await deliver_notification(sessions=app.sessions, slack=slack, notification_id=nid,
                                        clock=lambda: datetime.now(UTC), enqueue=None)
    assert failed.status == "failed" and failed.owner_notice_id is not None
    assert (await deliver_notification(sessions=app.sessions, slack=slack, notification_id=failed.owner_notice_id,
                                       clock=lambda: datetime.now(UTC), enqueue=None)).status == "sent"
    told = await fake_slack.wait_for("chat.postMessage", lambda call: call.args["channel"] == "U0ALICE")

    reply = await answer(app, fake_slack, told, "U0ALICE")

    assert reply.args["replace_original"] is True and reply.args["text"] == "Sent again 1 message to <#C0GONE>"
    async with app.sessions() as db:
        row = await db.get(Notification, nid)
    assert row is not None and row.status is NotificationStatus.SENT  # before the reply: delivered in the listener
    assert len(channel_posts(fake_slack, "C0GONE")) == 1
