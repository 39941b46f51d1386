"""Batched delivery, per-channel pacing, bulk outbox writes, and delivery without a Slack token."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta

import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.jobs.delivery import DELAY_MARGIN_MS, Delivery
from handlers.jobs.pacing import LocalPacer, RedisPacer
from models import Notification, NotificationChannel, NotificationStatus, TeamMember
from services import notifications
from services.notifications import Draft
from tests import services
from tests.fake_slack import FakeSlack
from tests.test_delivery import T0, World, make_world


def delivery(world: World, **options: object) -> Delivery:
    return Delivery(sessions=world.sessions, slack=world.client(), clock=world.clock, enqueue=world.sent,
                    **options)  # type: ignore[arg-type]


async def write_many(world: World, count: int, *, channel: str | None = None) -> list[int]:
    async with world.sessions.begin() as db:
        return await notifications.notify_many(db=db, now=T0, drafts=[
            Draft(dedupe_key=f"batch:{n}", kind="generic", payload={"summary": f"note {n}", "text": "x"},
                  recipient_channel=channel or f"C{n:04d}", campaign_id=world.campaign_id)
            for n in range(count)
        ])


async def statuses(world: World, ids: list[int]) -> dict[int, NotificationStatus]:
    async with world.sessions() as db:
        rows = await db.execute(select(Notification.id, Notification.status).where(Notification.id.in_(ids)))
        return dict(rows.all())


# ------------------------------------------------------------------ bulk writes


async def test_notify_many_writes_each_key_once_and_returns_only_new_rows(
        sessions: async_sessionmaker[AsyncSession], fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    first = await write_many(world, 3)
    again = await write_many(world, 5)  # three of these keys exist already
    async with sessions() as db:
        keys = (await db.scalars(select(Notification.dedupe_key).order_by(Notification.id))).all()
    assert len(first) == 3 and len(again) == 2 and not set(first) & set(again)
    assert keys == [f"batch:{n}" for n in range(5)]


async def test_notify_many_follows_each_members_preference(
        sessions: async_sessionmaker[AsyncSession], fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    async with sessions.begin() as db:
        bob = await db.get(TeamMember, world.bob_id)
        assert bob is not None
        bob.notify_via, bob.email = "email", "bob@example.com"
    async with sessions.begin() as db:
        ids = await notifications.notify_many(db=db, now=T0, drafts=[
            Draft(dedupe_key="to-bob", kind="generic", payload={"text": "x"}, recipient_id=world.bob_id),
            Draft(dedupe_key="to-alice", kind="generic", payload={"text": "x"}, recipient_id=world.owner_id),
            Draft(dedupe_key="to-bob-in-app", kind="generic", payload={"text": "x"}, recipient_id=world.bob_id,
                  channel=NotificationChannel.IN_APP),
            Draft(dedupe_key="to-bob", kind="generic", payload={"text": "repeat in the same call"},
                  recipient_id=world.bob_id),
        ])
        channels = dict((await db.execute(select(Notification.dedupe_key, Notification.channel))).all())
    assert len(ids) == 3
    assert channels == {"to-bob": NotificationChannel.EMAIL, "to-alice": NotificationChannel.SLACK,
                        "to-bob-in-app": NotificationChannel.IN_APP}


def test_a_draft_needs_exactly_one_recipient() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Draft(dedupe_key="k", kind="generic", payload={})
    with pytest.raises(ValueError, match="exactly one"):
        Draft(dedupe_key="k", kind="generic", payload={}, recipient_id=1, recipient_channel="C1")


# ------------------------------------------------------------------ batches


async def test_a_batch_is_claimed_posted_and_recorded_together(
        sessions: async_sessionmaker[AsyncSession], fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    ids = await write_many(world, 20)
    await world.deliver(ids[0])  # one of them went out already: the batch must not send it again
    fake_slack.fail_next("chat.postMessage", error="channel_not_found")  # the second row's channel is gone

    outcomes = await delivery(world).run(ids + [999_999])

    assert outcomes[999_999].status == "skipped" and outcomes[ids[0]].status == "skipped"
    assert outcomes[ids[1]].status == "failed" and outcomes[ids[1]].owner_notice_id is not None
    assert {outcomes[nid].status for nid in ids[2:]} == {"sent"}
    posted = [call.args["channel"] for call in world.posts()]
    assert sorted(posted) == sorted(f"C{n:04d}" for n in [0, *range(2, 20)])  # each once, the gone one never
    final = await statuses(world, ids)
    assert final[ids[1]] is NotificationStatus.FAILED
    assert {final[nid] for nid in ids if nid != ids[1]} == {NotificationStatus.SENT}
    async with sessions() as db:
        ts = dict((await db.execute(select(Notification.id, Notification.slack_ts)
                                    .where(Notification.id.in_(ids[2:])))).all())
    assert set(ts.values()) == {call.response["ts"] for call in world.posts()[1:]}


async def test_two_workers_on_one_batch_send_each_row_once(
        sessions: async_sessionmaker[AsyncSession], fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    ids = await write_many(world, 30)
    first, second = await asyncio.gather(delivery(world).run(ids), delivery(world).run(list(reversed(ids))))
    assert all((first[nid].status == "sent") != (second[nid].status == "sent") for nid in ids)
    assert sorted(call.args["channel"] for call in world.posts()) == sorted(f"C{n:04d}" for n in range(30))


# ------------------------------------------------------------------ pacing


async def test_local_pacer_spaces_one_channel_and_takes_no_slot_it_cannot_use() -> None:
    now = [100.0]
    pacer = LocalPacer(1.0, clock=lambda: now[0])
    assert await pacer.reserve(["C1", "C2", "C1", "C1"], max_wait=1.5) == [0.0, 0.0, 1.0, 2.0]
    assert await pacer.reserve(["C1"], max_wait=1.5) == [2.0]  # still 2 s away: not taken
    now[0] += 1.0
    assert await pacer.reserve(["C1", "C2"], max_wait=1.5) == [1.0, 0.0]  # the refused slot did not move it


async def test_redis_pacer_shares_slots_between_workers(redis_prefix: str) -> None:
    clients = [Redis.from_url(services.REDIS_URL) for _ in range(2)]
    try:
        one, two = (RedisPacer(client, namespace=redis_prefix, interval=10.0) for client in clients)
        assert await one.reserve(["C1", "C2"], max_wait=15) == [0.0, 0.0]
        waits = await two.reserve(["C1", "C3"], max_wait=15)  # another process, the same channel
        assert 9.5 <= waits[0] <= 10.0 and waits[1] == 0.0
        refused = await two.reserve(["C1"], max_wait=5)
        assert refused[0] > 15  # two slots ahead: refused, and not taken
        assert 9.0 <= (await one.reserve(["C1"], max_wait=25))[0] <= 20.0
        keys = await clients[0].keys(f"{redis_prefix}:pace:*")
        assert {key.decode() for key in keys} == {f"{redis_prefix}:pace:{c}" for c in ("C1", "C2", "C3")}
    finally:
        for client in clients:
            await client.aclose()


async def test_posts_to_one_channel_are_spaced_by_the_pace(
        sessions: async_sessionmaker[AsyncSession], fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    ids = await write_many(world, 3, channel="C0BUSY")
    outcomes = await delivery(world, pacer=LocalPacer(0.4)).run(ids)
    assert {o.status for o in outcomes.values()} == {"sent"}
    times = [call.at for call in world.posts()]
    assert len(times) == 3 and all(later - earlier >= 0.35 for earlier, later in itertools.pairwise(times))


async def test_a_channel_busy_for_long_sends_the_row_back_without_counting(
        sessions: async_sessionmaker[AsyncSession], fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    ids = await write_many(world, 3, channel="C0BUSY")
    pacer = LocalPacer(0.25, clock=lambda: 0.0)  # slots at 0, 0.25 and 0.5 s; waiting up to 0.4 s in place
    outcomes = await delivery(world, pacer=pacer, max_pace_wait=0.4).run(ids)

    assert [outcomes[nid].status for nid in ids] == ["sent", "sent", "paced"]
    assert len(world.posts()) == 2
    third = await world.row(ids[2])
    assert third.status is NotificationStatus.PENDING and third.retries == 0
    assert third.scheduled_for == outcomes[ids[2]].retry_at == T0 + timedelta(seconds=0.5)
    assert world.sent.jobs == [(ids[2], 500 + DELAY_MARGIN_MS)]


# ------------------------------------------------------------------ no Slack token


async def test_without_a_slack_token_in_app_rows_go_and_slack_rows_wait(
        sessions: async_sessionmaker[AsyncSession], fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    async with sessions.begin() as db:
        ids = await notifications.notify_many(db=db, now=T0, drafts=[
            Draft(dedupe_key="inbox", kind="generic", payload={"text": "x"}, recipient_id=world.bob_id,
                  channel=NotificationChannel.IN_APP),
            Draft(dedupe_key="dm", kind="generic", payload={"text": "x"}, recipient_id=world.bob_id),
        ])
    outcomes = await Delivery(sessions=sessions, slack=None, clock=world.clock).run(ids)
    assert [outcomes[nid].status for nid in ids] == ["sent", "skipped"]
    final = await statuses(world, ids)
    assert final == {ids[0]: NotificationStatus.SENT, ids[1]: NotificationStatus.PENDING}
    assert world.posts() == []


async def test_an_unexpected_error_in_one_send_keeps_the_rest_of_the_batch(
        sessions: async_sessionmaker[AsyncSession], fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    ids = await write_many(world, 5)
    client = world.client()
    post = client.chat_postMessage

    async def flaky(**kwargs: object) -> object:
        if kwargs.get("channel") == "C0002":
            raise RuntimeError("a bug, not a Slack error")
        return await post(**kwargs)

    client.chat_postMessage = flaky  # type: ignore[method-assign]
    outcomes = await Delivery(sessions=sessions, slack=client, clock=world.clock, enqueue=world.sent).run(ids)

    assert outcomes[ids[2]].status == "retry" and "a bug" in (outcomes[ids[2]].error or "")
    assert [outcomes[nid].status for nid in ids[:2] + ids[3:]] == ["sent"] * 4
    final = await statuses(world, ids)
    assert final[ids[2]] is NotificationStatus.PENDING and (await world.row(ids[2])).retries == 1
    assert [final[nid] for nid in ids[:2] + ids[3:]] == [NotificationStatus.SENT] * 4
