"""Outbox delivery: a notification row is claimed, posted once, recorded; faults land in the row."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from blocks.notifications import render
from handlers.jobs.notifications import Outcome, deliver_notification, delivery_client
from models import Campaign, Notification, NotificationStatus, TeamMember
from services import notifications
from services.delivery import MAX_ATTEMPTS
from services.kinds import Kind
from services.notifications import LEASE
from services.plan_alerts import PlanAlert
from tests import services
from tests.conftest import BOT_TOKEN, app_settings, start_app
from tests.fake_slack import FakeSlack
from tests.support.waiting import eventually, redis_jobs_done
from tests.support.worker import worker_process

T0 = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Sent:
    """Stands in for the job's re-enqueue: what would have been sent, with which delay."""

    jobs: list[tuple[int, int | None]] = field(default_factory=list)

    async def __call__(self, notification_id: int, delay_ms: int | None) -> None:
        self.jobs.append((notification_id, delay_ms))


@dataclass
class World:
    sessions: async_sessionmaker[AsyncSession]
    fake: FakeSlack
    owner_id: int
    bob_id: int
    campaign_id: int
    clock: Clock = field(default_factory=Clock)
    sent: Sent = field(default_factory=Sent)

    def client(self) -> AsyncWebClient:
        return delivery_client(AsyncWebClient(token=BOT_TOKEN, base_url=self.fake.base_url))

    async def deliver(self, notification_id: int, client: AsyncWebClient | None = None) -> Outcome:
        return await deliver_notification(sessions=self.sessions, slack=client or self.client(),
                                          notification_id=notification_id, clock=self.clock, enqueue=self.sent)

    async def write(self, key: str = "k1", *, channel: str | None = None, to_owner: bool = False,
                    kind: str = "generic", payload: dict | None = None) -> int:
        async with self.sessions.begin() as db:
            notification_id = await notifications.notify(
                db=db, dedupe_key=key, kind=kind, payload=payload or {"summary": "Hello <b>", "text": "x & y"},
                recipient_id=None if channel else (self.owner_id if to_owner else self.bob_id),
                recipient_channel=channel, campaign_id=self.campaign_id, now=T0,
            )
        assert notification_id is not None
        return notification_id

    async def row(self, notification_id: int) -> Notification:
        async with self.sessions() as db:
            row = await db.get(Notification, notification_id)
        assert row is not None
        return row

    def posts(self) -> list:
        return [call for call in self.fake.calls_to("chat.postMessage") if not call.injected]


async def make_world(sessions: async_sessionmaker[AsyncSession], fake: FakeSlack) -> World:
    async with sessions.begin() as db:
        alice = TeamMember(slack_user_id="U0ALICE", name="Alice Archer")
        bob = TeamMember(slack_user_id="U0BOB", name="Bob Baker")
        db.add_all([alice, bob])
        await db.flush()
        campaign = Campaign(name="Spring <sale> & more", template="promo", launch_date=date(2027, 4, 1),
                            owner_id=alice.id)
        db.add(campaign)
    return World(sessions, fake, alice.id, bob.id, campaign.id)


async def test_a_pending_row_is_delivered_once_and_recorded(sessions: async_sessionmaker[AsyncSession],
                                                            fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    nid = await world.write()

    assert (await world.deliver(nid)).status == "sent"
    assert (await world.deliver(nid)).status == "skipped"  # a duplicate job finds it sent

    [post] = world.posts()
    assert post.args["channel"] == "U0BOB" and post.args["text"] == "Hello &lt;b&gt;"
    row = await world.row(nid)
    assert row.status is NotificationStatus.SENT and row.sent_at == T0 and row.claimed_until is None
    assert (row.slack_channel, row.slack_ts) == (post.response["channel"], post.response["ts"])
    assert row.slack_channel is not None and row.slack_channel.startswith("D")


async def test_concurrent_deliveries_post_once(sessions: async_sessionmaker[AsyncSession], fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    nid = await world.write()
    outcomes = await asyncio.gather(*(world.deliver(nid) for _ in range(4)))
    assert sorted(outcome.status for outcome in outcomes) == ["sent", "skipped", "skipped", "skipped"]
    assert len(world.posts()) == 1


async def test_a_row_someone_else_holds_is_not_sent(sessions: async_sessionmaker[AsyncSession],
                                                    fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    nid = await world.write()
    async with sessions.begin() as db:
        assert await notifications.claim(db=db, notification_id=nid, now=T0) is not None
    world.clock.now = T0 + LEASE - timedelta(seconds=1)
    assert (await world.deliver(nid)).status == "skipped"
    assert world.posts() == []
    assert (await world.row(nid)).status is NotificationStatus.CLAIMED


async def test_a_claim_whose_worker_died_is_delivered_after_the_lease(sessions: async_sessionmaker[AsyncSession],
                                                                       fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    nid = await world.write()
    async with sessions.begin() as db:  # claimed, then the worker died before sending
        assert await notifications.claim(db=db, notification_id=nid, now=T0) is not None
    world.clock.now = T0 + LEASE + timedelta(seconds=1)
    assert (await world.deliver(nid)).status == "sent"
    assert len(world.posts()) == 1 and (await world.row(nid)).status is NotificationStatus.SENT


async def test_a_rate_limit_waits_out_retry_after_without_counting(sessions: async_sessionmaker[AsyncSession],
                                                                    fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    nid = await world.write()
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=7)

    outcome = await world.deliver(nid)

    assert outcome.status == "rate_limited"
    row = await world.row(nid)
    assert (row.status, row.retries, row.scheduled_for) == (NotificationStatus.PENDING, 0, T0 + timedelta(seconds=7))
    assert world.posts() == [] and world.sent.jobs == [(nid, 7_250)]
    world.clock.now = T0 + timedelta(seconds=6)
    assert (await world.deliver(nid)).status == "skipped"  # not due yet
    world.clock.now = T0 + timedelta(seconds=7)
    assert (await world.deliver(nid)).status == "sent"
    assert len(world.posts()) == 1


async def test_server_errors_count_and_back_off(sessions: async_sessionmaker[AsyncSession], fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    nid = await world.write()
    fake_slack.fail_next("chat.postMessage", status=503, times=2)

    assert (await world.deliver(nid)).status == "retry"
    row = await world.row(nid)
    assert (row.status, row.retries, row.scheduled_for) == (NotificationStatus.PENDING, 1, T0 + timedelta(seconds=30))
    assert row.last_error == "HTTP 503"

    world.clock.now = T0 + timedelta(seconds=30)
    assert (await world.deliver(nid)).status == "retry"
    row = await world.row(nid)
    assert (row.retries, row.scheduled_for) == (2, world.clock.now + timedelta(seconds=60))
    assert world.sent.jobs == [(nid, 30_250), (nid, 60_250)]


async def test_connection_errors_count_too(sessions: async_sessionmaker[AsyncSession], fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    nid = await world.write()
    nowhere = delivery_client(AsyncWebClient(token=BOT_TOKEN, base_url="http://127.0.0.1:9/api/"))
    assert (await world.deliver(nid, nowhere)).status == "retry"
    row = await world.row(nid)
    assert (row.status, row.retries) == (NotificationStatus.PENDING, 1) and row.last_error


async def test_a_spent_budget_fails_the_row(sessions: async_sessionmaker[AsyncSession], fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    nid = await world.write()
    async with sessions.begin() as db:
        row = await db.get(Notification, nid)
        assert row is not None
        row.retries = MAX_ATTEMPTS - 1
    fake_slack.fail_next("chat.postMessage", status=500)
    assert (await world.deliver(nid)).status == "failed"
    row = await world.row(nid)
    assert (row.status, row.retries) == (NotificationStatus.FAILED, MAX_ATTEMPTS) and world.sent.jobs == []


async def test_a_gone_channel_fails_and_tells_the_owner_once(sessions: async_sessionmaker[AsyncSession],
                                                             fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    first, second = await world.write("a", channel="C0GONE"), await world.write("b", channel="C0GONE")
    fake_slack.fail_next("chat.postMessage", error="channel_not_found", times=2)

    one, two = await world.deliver(first), await world.deliver(second)

    assert (one.status, one.error, two.status) == ("failed", "channel_not_found", "failed")
    assert one.owner_notice_id is not None and two.owner_notice_id is None
    for nid in (first, second):
        row = await world.row(nid)
        assert (row.status, row.last_error) == (NotificationStatus.FAILED, "channel_not_found")
    async with sessions() as db:
        notices = list(await db.scalars(select(Notification).where(Notification.kind == Kind.DELIVERY_FAILED)))
    assert [(n.recipient_id, n.dedupe_key) for n in notices] == [
        (world.owner_id, f"delivery-failed:{world.campaign_id}:C0GONE")]
    assert world.sent.jobs == [(notices[0].id, None)]

    # The notice itself goes to the owner, with the channel and the reason named.
    assert (await world.deliver(notices[0].id)).status == "sent"
    [post] = world.posts()
    text = str(post.args["blocks"])
    assert post.args["channel"] == "U0ALICE" and "<#C0GONE>" in text and "channel_not_found" in text
    assert "Spring &lt;sale&gt; &amp; more" in text


async def test_a_failed_notice_tells_nobody(sessions: async_sessionmaker[AsyncSession], fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    nid = await world.write(kind=Kind.DELIVERY_FAILED, payload={"reason": "is_archived", "recipient_channel": "C1"},
                            channel="C0OLD")
    fake_slack.fail_next("chat.postMessage", error="is_archived")
    assert (await world.deliver(nid)).status == "failed"
    async with sessions() as db:
        assert await db.scalar(select(func.count()).select_from(Notification)) == 1
    assert world.sent.jobs == []


async def test_the_owner_is_not_told_about_themselves(sessions: async_sessionmaker[AsyncSession],
                                                      fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    nid = await world.write(to_owner=True)
    fake_slack.fail_next("chat.postMessage", error="account_inactive")
    outcome = await world.deliver(nid)
    assert (outcome.status, outcome.owner_notice_id) == ("failed", None)


def test_renderers_escape_what_people_typed() -> None:
    alert = render(Kind.PLAN_ALERT, PlanAlert(campaign_id=12, campaign_name="<!channel> sale", alerts=("a < b",),
                                              because="T-3 is done (<b>Bob</b>)").to_payload())
    assert alert["text"] == "CM-12 &lt;!channel&gt; sale: plan alert"
    assert "• a &lt; b" in str(alert["blocks"])
    assert "After: T-3 is done (&lt;b&gt;Bob&lt;/b&gt;)." in str(alert["blocks"])
    # A row written before `PlanAlert` carries the reason as markup our code escaped then: shown as it is.
    legacy = {"campaign_id": 12, "campaign_name": "sale", "alerts": ["a"], "because_mrkdwn": "T-3 is done (Bob)"}
    assert "After: T-3 is done (Bob)." in str(render(Kind.PLAN_ALERT, legacy)["blocks"])
    fallback = render("something_new", {})
    assert fallback["text"] == "You have a notification from Campaign Manager."
    assert render("other", {"text": "<@U1> hi"})["text"] == "&lt;@U1&gt; hi"


async def wait_until_sent(sessions: async_sessionmaker[AsyncSession], nid: int, seconds: float) -> Notification:
    async def sent() -> Notification | None:
        async with sessions() as db:
            row = await db.get(Notification, nid)
        return row if row is not None and row.status is NotificationStatus.SENT else None

    return await eventually(sent, what=f"notification {nid} to be sent", timeout=seconds, every=0.1)


async def test_the_embedded_worker_delivers_and_retries_a_rate_limit(db_url: str, fake_slack: FakeSlack) -> None:
    async with start_app(app_settings(db_url, fake_slack), fake_slack, run_worker=True) as app:
        world = await make_world(app.sessions, fake_slack)
        async with app.sessions.begin() as db:  # due now by the real clock
            nid = await notifications.notify(db=db, dedupe_key="embedded", kind="generic", payload={"text": "hi"},
                                             recipient_id=world.bob_id, now=datetime.now(UTC))
        assert nid is not None
        fake_slack.fail_next("chat.postMessage", status=429, retry_after=1)
        assert app.runtime.deps is not None and app.runtime.deps.queue is not None
        await app.runtime.deps.queue.enqueue("notifications.deliver", notification_id=nid)
        row = await wait_until_sent(app.sessions, nid, 15)
    assert row.retries == 0 and len(world.posts()) == 1


async def test_a_worker_process_on_real_redis_delivers_exactly_once(
    db_url: str, fake_slack: FakeSlack, redis_prefix: str, tmp_path: Path
) -> None:
    redis_settings = {"redis_url": services.REDIS_URL, "redis_namespace": redis_prefix}
    async with start_app(app_settings(db_url, fake_slack, **redis_settings), fake_slack) as app:
        world = await make_world(app.sessions, fake_slack)
        async with app.sessions.begin() as db:
            nid = await notifications.notify(db=db, dedupe_key="redis", kind="generic", payload={"text": "hi"},
                                             recipient_id=world.bob_id, now=datetime.now(UTC))
        assert nid is not None and app.runtime.deps is not None and app.runtime.deps.queue is not None
        fake_slack.fail_next("chat.postMessage", status=429, retry_after=1)  # the retry goes through Redis too
        await app.runtime.deps.queue.enqueue("notifications.deliver", notification_id=nid)
        await app.runtime.deps.queue.enqueue("notifications.deliver", notification_id=nid)  # a duplicate job

        async with worker_process(db_url, fake_slack, redis_prefix, tmp_path):
            row = await wait_until_sent(app.sessions, nid, 40)
            await redis_jobs_done(services.REDIS_URL, redis_prefix)  # the duplicate and any delayed retry ran too
    assert len(world.posts()) == 1
    assert (row.slack_ts, row.retries) == (world.posts()[0].response["ts"], 0)
