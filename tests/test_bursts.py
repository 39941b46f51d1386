"""A burst of traffic: listener work is bounded by MAX_INFLIGHT, and what finds no slot is answered
"busy" at once, instead of an error id after a pool timeout; nothing acknowledged is dropped."""

from __future__ import annotations

import asyncio

import pytest

from bot.settings import ConfigError, load_settings
from handlers.slack.inflight import BUSY_TEXT
from models import TeamMember
from tests.conftest import app_settings, start_app
from tests.fake_slack import FakeSlack
from tests.held_database import database_held
from tests.home_helpers import home_opened
from tests.slack_helpers import count, reply_text
from tests.support.waiting import eventually
from tests.test_settings import CONTRACT

SLOTS = 2
BURST = 8


def test_pool_and_inflight_settings(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in (*CONTRACT, "DATABASE_POOL_SIZE", "MAX_INFLIGHT", "SLOT_WAIT_SECONDS", "SHUTDOWN_GRACE_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    defaults = load_settings()
    assert defaults.database_pool_size == 20 and defaults.inflight_limit == 18  # two kept for sweep and health
    assert 0 < defaults.slot_wait_seconds <= 1 and defaults.shutdown_grace_seconds > 0
    monkeypatch.setenv("DATABASE_POOL_SIZE", "5")
    assert load_settings().inflight_limit == 3
    monkeypatch.setenv("MAX_INFLIGHT", "5")
    assert load_settings().inflight_limit == 5
    monkeypatch.setenv("MAX_INFLIGHT", "6")
    with pytest.raises(ConfigError, match="MAX_INFLIGHT: at most DATABASE_POOL_SIZE"):
        load_settings()
    monkeypatch.setenv("MAX_INFLIGHT", "")
    monkeypatch.setenv("SLOT_WAIT_SECONDS", "5")  # view submissions wait for a slot before their 3 s ack
    with pytest.raises(ConfigError, match="SLOT_WAIT_SECONDS"):
        load_settings()


async def test_a_burst_beyond_the_slots_is_answered_busy_and_the_rest_completes(
    db_url: str, fake_slack: FakeSlack
) -> None:
    settings = app_settings(db_url, fake_slack, database_pool_size=4, max_inflight=SLOTS, slot_wait_seconds=0.2)
    users = [f"U0BURST{i}" for i in range(BURST)]
    for user in users:
        fake_slack.add_user(user)
    async with start_app(settings, fake_slack) as app:
        urls = [fake_slack.response_url() for _ in users]
        async with database_held(db_url):  # the first SLOTS units of work hold their slots until released
            statuses = await asyncio.gather(*(
                app.slack.command("/campaign", "list", user_id=user, response_url=url)
                for user, url in zip(users, urls, strict=True)
            ))
            assert [status for status, _ in statuses] == [200] * BURST  # every request acknowledged
            # Told busy in the HTTP answer itself once a slot queue has formed, else after the slot wait.
            shed = [url for url, (_, body) in zip(urls, statuses, strict=True) if BUSY_TEXT in body]
            waited = BURST - SLOTS - len(shed)
            if waited:
                await fake_slack.wait_for("response_url", lambda call: BUSY_TEXT in reply_text(call), count=waited)
        await fake_slack.wait_for("response_url", count=BURST - len(shed))  # then the held ones finish and reply

        replies = fake_slack.calls_to("response_url")
        assert sorted(call.url_id for call in replies) == sorted(url.rsplit("/", 1)[1] for url in urls if url not in shed)
        busy = [call for call in replies if BUSY_TEXT in reply_text(call)]
        assert len(busy) + len(shed) == BURST - SLOTS
        assert not any("error id" in reply_text(call) for call in replies)
        assert await count(app, TeamMember) == SLOTS  # the busy ones changed nothing


async def test_with_every_slot_taken_a_command_is_told_busy_in_its_own_answer(
    db_url: str, fake_slack: FakeSlack
) -> None:
    """Load shedding before Bolt: no listener, no response_url call, nothing stored for the shed request."""
    settings = app_settings(db_url, fake_slack, database_pool_size=4, max_inflight=1, slot_wait_seconds=1.5)
    for user in ("U0FIRST", "U0SECOND", "U0THIRD"):
        fake_slack.add_user(user)
    async with start_app(settings, fake_slack) as app:
        work = app.runtime.deps.inflight if app.runtime.deps else None
        assert work is not None
        async with database_held(db_url):
            acks = [asyncio.create_task(app.slack.command("/campaign", "list", user_id=user))
                    for user in ("U0FIRST", "U0SECOND")]
            # One holds the only slot, the other has waited for it long enough for new requests to be shed.
            await eventually(lambda: work.waiting == 1 and work.full(), what="one waiter on a full app")
            status, body = await app.slack.command("/campaign", "list", user_id="U0THIRD")
            assert status == 200 and BUSY_TEXT in body and '"ephemeral"' in body
            status, body = await app.slack.event(home_opened("U0THIRD"))
            assert (status, body) == (200, "")
            assert [await ack for ack in acks] == [(200, "")] * 2
            await fake_slack.wait_for("response_url", lambda call: BUSY_TEXT in reply_text(call))  # the waiter
        await fake_slack.wait_for("response_url", count=2)  # and the holder's list
        assert work.busy_answers == 3  # the waiter, the shed command, the shed Home opening
        assert not fake_slack.calls_to("views.publish")
        assert await count(app, TeamMember) == 1  # only the holder was ever written


async def test_a_queue_that_has_only_just_formed_sheds_nothing() -> None:
    """A moment's queue (a garbage collection, a handful of requests in one millisecond) is served, not
    refused: shedding starts once the first waiter has waited a fifth of the slot wait."""
    from handlers.slack.inflight import ListenerWork

    work = ListenerWork(max_inflight=1, slot_wait_seconds=60)
    held, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with work.slot():
            held.set()
            await release.wait()

    async def wait_for_slot() -> None:
        async with work.slot():
            pass

    holder = asyncio.create_task(hold())
    await held.wait()
    waiter = asyncio.create_task(wait_for_slot())
    await eventually(lambda: work.waiting == 1, what="one waiter")
    assert work.shed_after == 12 and 0 < work.oldest_wait() < work.shed_after
    assert not work.full()  # every slot is taken and one waits, but the queue is seconds from stalling
    release.set()
    await asyncio.gather(holder, waiter)
    assert (work.waiting, work.oldest_wait(), work.busy_answers) == (0, 0.0, 0)


async def test_a_nested_unit_of_work_reuses_the_slot_it_holds() -> None:
    from handlers.slack.inflight import ListenerWork

    work = ListenerWork(max_inflight=1, slot_wait_seconds=0.05)
    async with work.slot(), work.slot():  # would wait for itself, then answer busy, without reuse
        pass
    async with work.slot():  # and the slot was given back
        pass
    assert work.busy_answers == 0
