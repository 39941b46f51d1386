"""Recording a sent batch while the database is unreachable: waited for within the lease, then given up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.jobs import delivery as delivery_module
from handlers.jobs.delivery import Delivery
from models import NotificationStatus
from tests.fake_slack import FakeSlack
from tests.test_delivery import World, make_world

LEASE = timedelta(seconds=5)


class FlakySessions:
    """The real session factory, except that `begin()` is refused, as a stopped PostgreSQL refuses
    connections, until `failures` attempts have been refused (0 until the test says otherwise)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.failures = 0
        self.refused = 0

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncSession]:
        if self.failures > self.refused:
            self.refused += 1
            raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
        async with self.sessions.begin() as db:
            yield db


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery_module, "RECORD_FIRST_DELAY", 0.01)
    monkeypatch.setattr(delivery_module, "RECORD_MAX_DELAY", 0.05)


async def _deliver_with_outage(world: World, *, failures: int, lease: timedelta) -> tuple[Delivery, FlakySessions]:
    flaky = FlakySessions(world.sessions)
    delivery = Delivery(sessions=flaky, slack=world.client(), clock=world.clock,  # type: ignore[arg-type]
                        enqueue=world.sent, lease=lease)
    original_post = delivery._post

    async def post_then_fail(item):  # type: ignore[no-untyped-def]
        result = await original_post(item)
        flaky.failures = failures  # the database goes away right after Slack took the message
        return result

    delivery._post = post_then_fail  # type: ignore[method-assign]
    return delivery, flaky


async def test_a_record_waits_out_an_outage_longer_than_its_quick_retries(
        sessions: async_sessionmaker[AsyncSession], fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    nid = await world.write()
    delivery, flaky = await _deliver_with_outage(world, failures=delivery_module.RECORD_ATTEMPTS + 5,
                                                 lease=timedelta(seconds=60))

    outcomes = await delivery.run([nid])

    assert flaky.refused == delivery_module.RECORD_ATTEMPTS + 5
    assert outcomes[nid].status == "sent" and (await world.row(nid)).status is NotificationStatus.SENT
    assert len(world.posts()) == 1


async def test_a_record_gives_up_before_the_lease_runs_out(
        sessions: async_sessionmaker[AsyncSession], fake_slack: FakeSlack) -> None:
    # Past the lease another worker may hold the rows: the record must not outlive it. The row stays
    # claimed and goes out again after the lease (at least once), as docs/RELIABILITY.md says.
    world = await make_world(sessions, fake_slack)
    nid = await world.write()
    delivery, flaky = await _deliver_with_outage(world, failures=10**6, lease=LEASE)

    with pytest.raises(ConnectionRefusedError):  # a TimeoutError here: it outlived the lease
        async with asyncio.timeout(LEASE.total_seconds()):
            await delivery.run([nid])

    assert flaky.refused > delivery_module.RECORD_ATTEMPTS  # it kept trying, then stopped
    assert (await world.row(nid)).status is NotificationStatus.CLAIMED


async def test_a_claim_the_database_refuses_leaves_the_row_to_the_next_sweep(
        sessions: async_sessionmaker[AsyncSession], fake_slack: FakeSlack) -> None:
    world = await make_world(sessions, fake_slack)
    nid = await world.write()
    flaky = FlakySessions(world.sessions)
    flaky.failures = 1
    delivery = Delivery(sessions=flaky, slack=world.client(), clock=world.clock,  # type: ignore[arg-type]
                        enqueue=world.sent)

    assert (await delivery.run([nid]))[nid].status == "unreachable"  # one log line, not a job's traceback
    assert (await world.row(nid)).status is NotificationStatus.PENDING and world.posts() == []
