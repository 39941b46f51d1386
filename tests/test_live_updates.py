"""Live updates: a change made in Slack reaches open dashboard pages as a server-sent event.

The streams are read over real HTTP from the running app (SQLite and PostgreSQL; embedded, and Redis with
two instances). Negative checks wait for a definite signal: a later change that must arrive, and before
which nothing else may have.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import aiohttp
import pytest
from redis.asyncio import Redis
from sqlalchemy import insert, select, update

from handlers.live import LiveHub, publish_through_redis
from handlers.web.dashboard import live as live_routes
from handlers.web.dashboard.live import STREAMS_KEY
from models import Approval, Campaign, Task, TimelineSnapshot
from services import authz, campaigns, changes
from tests import services
from tests.conftest import RunningApp, app_settings, start_app
from tests.fake_slack import FakeSlack
from tests.slack_helpers import owner_today, send_command
from tests.support.dashboard import dashboard_token
from tests.support.waiting import eventually
from tests.test_plans import NOW, Sessions, add_member, small_template

WITHIN = 1.0  # seconds from the signed Slack request to the event on an open page


# ---------------------------------------------------------------- reading a stream


@dataclass
class Event:
    id: int
    name: str
    data: dict[str, object]

    @property
    def campaigns(self) -> list[int]:
        return list(self.data["campaigns"])  # type: ignore[call-overload]


@dataclass
class Stream:
    response: aiohttp.ClientResponse
    retry: int | None = None
    started_at: int = 0  # the id the stream started from (the browser's Last-Event-ID if nothing follows)
    comments: list[str] = field(default_factory=list)

    async def next(self, timeout: float = 5.0) -> Event:  # noqa: ASYNC109
        """The next event (comments and the retry line are noted, not returned)."""
        async with asyncio.timeout(timeout):
            while True:
                fields = await self._block()
                if "event" in fields:
                    return Event(int(fields["id"]), fields["event"], json.loads(fields["data"]))

    async def heartbeat(self, timeout: float = 5.0) -> str:  # noqa: ASYNC109
        """The next comment line (a heartbeat); fails if an event comes first."""
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.response.content.readline()).decode()
                assert line, "the stream ended"
                if line.startswith(":"):
                    return line[1:].strip()
                assert not line.strip(), f"an event before the heartbeat: {line!r}"

    async def ended(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while await self.response.content.readline():
                pass
        return True

    async def _block(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        while True:
            line = (await self.response.content.readline()).decode()
            if not line:
                raise EOFError("the stream ended")
            line = line.rstrip("\n")
            if not line:
                if fields:
                    return fields
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
            if name == "retry":
                self.retry = int(value)


@asynccontextmanager
async def stream(app: RunningApp, token: str, *, query: str = "", last: str | None = None) -> AsyncIterator[Stream]:
    """An open stream, subscribed: its first line (`retry:`) is written after the hub listens."""
    headers = {"Last-Event-ID": last} if last is not None else {}
    async with aiohttp.ClientSession() as http:
        async with http.get(app.url(f"/dashboard/{token}/events{query}"), headers=headers) as response:
            assert response.status == 200, await response.text()
            opened = Stream(response)
            first = await opened._block()
            assert opened.retry == 2000 and int(first["id"]) <= app.runtime.deps.live.version  # type: ignore[union-attr]
            opened.started_at = int(first["id"])
            yield opened


async def new_campaign(app: RunningApp, fake: FakeSlack, name: str) -> int:
    launch = owner_today() + timedelta(days=60)
    reply = await send_command(app, fake, "/campaign", f'new "{name}" product_launch {launch.isoformat()}')
    assert " created" in reply.args["text"], reply.args["text"]
    async with app.sessions() as db:
        return max((await db.scalars(select(Campaign.id))).all())


async def first_task(app: RunningApp, campaign_id: int) -> int:
    return (await task_ids(app, campaign_id))[0]


async def task_ids(app: RunningApp, campaign_id: int) -> list[int]:
    async with app.sessions() as db:
        return list((await db.scalars(select(Task.id).where(Task.campaign_id == campaign_id).order_by(Task.id))).all())


async def change(app: RunningApp, fake: FakeSlack, task_id: int, verb: str = "start") -> None:
    reply = await send_command(app, fake, "/task", f"{verb} T-{task_id}")
    assert f"T-{task_id}" in reply.args["text"], reply.args["text"]


# ---------------------------------------------------------------- one instance (embedded)


async def test_a_change_in_slack_reaches_an_open_page_within_a_second(
    running_app: RunningApp, fake_slack: FakeSlack
) -> None:
    campaign = await new_campaign(running_app, fake_slack, "Spring")
    task = await first_task(running_app, campaign)
    token = await dashboard_token(running_app)
    async with stream(running_app, token) as page:
        assert page.response.headers["Content-Type"].startswith("text/event-stream")
        assert page.response.headers["Cache-Control"] == "no-cache"
        assert page.response.headers["X-Accel-Buffering"] == "no"
        assert page.response.headers["X-Content-Type-Options"] == "nosniff"
        started = time.monotonic()
        sent = asyncio.create_task(change(running_app, fake_slack, task))
        event = await page.next(timeout=WITHIN)
        assert time.monotonic() - started < WITHIN
        await sent
        assert (event.name, event.campaigns) == ("change", [campaign])
        assert event.id == running_app.runtime.deps.live.version_of(campaign)  # type: ignore[union-attr]
        await change(running_app, fake_slack, task, "done")
        later = await page.next(timeout=WITHIN)
        assert later.campaigns == [campaign] and later.id > event.id


async def test_a_campaign_stream_hears_only_its_own_campaign(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    mine = await new_campaign(running_app, fake_slack, "Mine")
    other = await new_campaign(running_app, fake_slack, "Other")
    my_task, other_task = await first_task(running_app, mine), await first_task(running_app, other)
    campaign_link = await dashboard_token(running_app, campaign_id=mine)
    workspace_link = await dashboard_token(running_app)
    async with (stream(running_app, campaign_link) as linked, stream(running_app, campaign_link, query="?scope=all")
                as linked_asking_all, stream(running_app, workspace_link, query=f"?scope=campaign:{mine}") as narrowed,
                stream(running_app, workspace_link) as everything):
        await change(running_app, fake_slack, other_task)
        await change(running_app, fake_slack, my_task)
        first, second = await everything.next(), await everything.next()
        assert (first.campaigns, second.campaigns) == ([other], [mine]) and first.id < second.id
        for page in (linked, linked_asking_all, narrowed):
            assert (await page.next()).campaigns == [mine]  # the other campaign's change came first, unheard


async def test_a_dropped_page_catches_up_when_it_reconnects(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    campaign = await new_campaign(running_app, fake_slack, "Spring")
    task, second, third = (await task_ids(running_app, campaign))[:3]
    token = await dashboard_token(running_app, campaign_id=campaign)
    async with stream(running_app, token) as page:
        await change(running_app, fake_slack, task)
        seen = await page.next()
    await change(running_app, fake_slack, task, "done")  # while no page is open (published at the commit)
    for how in ({"last": str(seen.id)}, {"query": f"?last={seen.id}"}):
        async with stream(running_app, token, **how) as page:  # type: ignore[arg-type]
            caught_up = await page.next(timeout=WITHIN)
            assert caught_up.campaigns == [campaign] and caught_up.id > seen.id
    async with stream(running_app, token, last=str(caught_up.id)) as page:  # up to date: no catch-up
        await change(running_app, fake_slack, second, "start")
        fresh = await page.next()
        assert fresh.id > caught_up.id
    async with stream(running_app, token, last="7") as page:  # from before this process: read afresh
        assert (await page.next(timeout=WITHIN)).campaigns == [campaign]
    async with stream(running_app, token, last="not-an-id") as page:  # ignored: from now on
        await change(running_app, fake_slack, third, "start")
        assert (await page.next()).id > fresh.id


async def test_a_quiet_stream_beats_and_ends_in_time_and_the_page_catches_up(
    running_app: RunningApp, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_routes, "WATCH_SECONDS", 0.05)
    monkeypatch.setattr(live_routes, "HEARTBEAT_SECONDS", 0.1)
    campaign = await new_campaign(running_app, fake_slack, "Spring")
    token = await dashboard_token(running_app)
    async with stream(running_app, token) as page:
        monkeypatch.setattr(live_routes, "STREAM_SECONDS", 0.5)
        assert await page.heartbeat()
        assert await page.ended()  # time up: the browser reconnects, and the link is checked again
    await change(running_app, fake_slack, await first_task(running_app, campaign))  # while it reconnects
    # No change came on the first stream, yet the browser has its starting id: nothing is missed.
    async with stream(running_app, token, last=str(page.started_at)) as page:
        assert (await page.next(timeout=WITHIN)).campaigns == [campaign]


async def test_the_daily_replan_reaches_open_pages(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    campaign = await new_campaign(running_app, fake_slack, "Spring")
    token = await dashboard_token(running_app, campaign_id=campaign)
    async with stream(running_app, token) as page:
        result = await running_app.runtime.sweeper_for_tests().run_once(now=datetime.now(UTC) + timedelta(days=2))
        assert result is not None
        assert (await page.next(timeout=WITHIN)).campaigns == [campaign]


async def test_refused_links_and_bad_scopes_get_no_stream(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack, "Spring")
    token = await dashboard_token(running_app, campaign_id=1)
    forged = token[:-2] + ("BB" if token.endswith("AA") else "AA")
    async with aiohttp.ClientSession() as http:
        for path, status in ((f"/dashboard/{forged}/events", 401), ("/dashboard/nonsense/events", 401),
                             (f"/dashboard/{token}/events?scope=campaign:2", 403),
                             (f"/dashboard/{token}/events?scope=campaign:<b>", 400)):
            async with http.get(running_app.url(path)) as response:
                assert response.status == status, path
                assert response.content_type == "text/html"
                assert "<b>" not in await response.text()


async def test_beyond_the_limit_a_page_is_told_to_come_back_later(running_app: RunningApp) -> None:
    assert running_app.runtime.web_app is not None
    running_app.runtime.web_app[STREAMS_KEY].limit = 1
    token = await dashboard_token(running_app)
    async with stream(running_app, token), aiohttp.ClientSession() as http:
        async with http.get(running_app.url(f"/dashboard/{token}/events")) as response:
            assert response.status == 503 and response.headers["Retry-After"].isdigit()
    # The page went away: noticed without a write, so a new page is let in.
    await eventually(lambda: running_app.runtime.deps.live.listeners == 0,  # type: ignore[union-attr]
                     what="the closed stream to be let go", timeout=5)
    async with stream(running_app, token):
        pass


async def test_shutdown_ends_open_streams_at_once(db_url: str, fake_slack: FakeSlack) -> None:
    async with start_app(app_settings(db_url, fake_slack), fake_slack) as app:
        token = await dashboard_token(app)
        async with stream(app, token) as page:
            started = time.monotonic()
            await app.server.close()  # the server waits for its handlers: the streams must end
            assert await page.ended()
            assert time.monotonic() - started < 5


# ---------------------------------------------------------------- several instances (Redis)


async def test_a_change_through_one_instance_reaches_a_page_on_another(
    db_url: str, fake_slack: FakeSlack, redis_prefix: str
) -> None:
    settings = app_settings(db_url, fake_slack, redis_url=services.REDIS_URL, redis_namespace=redis_prefix)
    async with start_app(settings, fake_slack) as one, start_app(settings, fake_slack) as other:
        campaign = await new_campaign(one, fake_slack, "Spring")
        task = await first_task(one, campaign)
        token = await dashboard_token(other)
        async with stream(other, token) as there, stream(one, token) as here:
            started = time.monotonic()
            sent = asyncio.create_task(change(one, fake_slack, task))
            heard_there = await there.next(timeout=WITHIN)
            assert time.monotonic() - started < WITHIN
            await sent
            heard_here = await here.next()
            assert heard_there.campaigns == heard_here.campaigns == [campaign]
            assert heard_there.id == heard_here.id  # one counter for every instance
            await change(other, fake_slack, task, "done")
            latest = await here.next()
        # A page that saw an id on one instance catches up on the other.
        async with stream(one, token, last=str(heard_there.id)) as page:
            assert (await page.next(timeout=WITHIN)).id == latest.id


async def test_a_process_without_a_hub_publishes_through_redis(redis_prefix: str) -> None:
    services.check_redis()
    redis = Redis.from_url(services.REDIS_URL)
    hub = LiveHub(redis=redis, namespace=redis_prefix)
    try:
        await hub.start()
        listener = hub.listen(None)
        await publish_through_redis(redis, namespace=redis_prefix, campaign_ids=[4, 2])
        async with asyncio.timeout(WITHIN):
            await listener.woken.wait()
        heard = listener.take()
        assert heard is not None and sorted(heard.campaign_ids) == [2, 4] and hub.version_of(4) == heard.event_id
    finally:
        await hub.stop()
        await redis.aclose()


async def test_a_hub_that_missed_changes_tells_every_page_to_read_afresh(redis_prefix: str) -> None:
    services.check_redis()
    redis = Redis.from_url(services.REDIS_URL)
    hub = LiveHub(redis=redis, namespace=redis_prefix)
    try:
        await hub.start()
        everywhere, one = hub.listen(None), hub.listen(3)
        await redis.incrby(f"{redis_prefix}:live:version", 5)  # changes published while it was away
        await redis.client_kill_filter(_type="pubsub", skipme=True)  # the subscription drops
        async with asyncio.timeout(5):
            await everywhere.woken.wait()
        missed, mine = everywhere.take(), one.take()
        assert missed is not None and missed.everything and mine is not None and mine.campaign_ids == {3}
        assert hub.catch_up(0, None) == missed  # a page from before: everything
    finally:
        await hub.stop()
        await redis.aclose()


# ---------------------------------------------------------------- the hub, in memory


def test_the_hub_gathers_changes_and_knows_what_a_page_missed() -> None:
    hub = LiveHub()
    start = hub.version
    everywhere, one = hub.listen(None), hub.listen(1)
    hub.heard([2])
    hub.heard([1, 3])
    gathered = everywhere.take()
    assert gathered is not None and gathered.campaign_ids == {1, 2, 3} and gathered.event_id == start + 2
    assert everywhere.take() is None
    mine = one.take()
    assert mine is not None and mine.campaign_ids == {1} and mine.event_id == start + 2
    assert hub.catch_up(start + 1, None) == type(gathered)(start + 2, frozenset({1, 3}))
    assert hub.catch_up(start + 1, 2) is None and hub.catch_up(start + 2, None) is None
    assert hub.catch_up(start - 1, 2) is not None  # from before this hub started: read afresh
    hub.forget(everywhere)
    hub.forget(one)
    hub.heard([1])
    assert hub.listeners == 0 and hub.version_of(1) == start + 3 and hub.version_of(9) == hub.floor


# ---------------------------------------------------------------- which campaigns a transaction changed


async def test_every_kind_of_write_names_its_campaigns(sessions: Sessions, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="services.changes")
    async with sessions.begin() as db:
        owner = await add_member(db, "U0OWNER")
        created = [await campaigns.create_campaign(db=db, name=name, template=small_template(), owner=owner,
                                                   launch_date=date(2027, 9, 1), now=NOW) for name in ("A", "B")]
    first, second = (plan.campaign.id for plan in created)
    assert changes.changed_in(db) == {first, second}

    async with sessions.begin() as db:
        await db.scalar(select(Campaign).where(Campaign.id == first))
    assert changes.changed_in(db) == set()  # read, not changed

    async with sessions.begin() as db:  # the status move and its cancellations: conditional bulk UPDATEs
        campaign = await campaigns.lock_campaign(db, second)
        owner = await add_member(db, "U0OWNER")
        await campaigns.change_status(db=db, campaign=campaign, move=campaigns.Move.CANCEL,
                                      actor=authz.Actor(member=owner, is_admin=False))
    assert changes.changed_in(db) == {second}

    async with sessions.begin() as db:  # an UPDATE by id of a row the session holds, a bulk INSERT
        approval = Approval(campaign_id=first, stage="Legal", approver_id=owner.id)
        db.add(approval)
        await db.flush()
        db.info.pop(changes.CHANGED)
        await db.execute(update(Approval).where(Approval.id == approval.id).values(comments="ok")
                         .execution_options(synchronize_session=False))
        assert changes.changed_in(db) == {first}
        await db.execute(insert(TimelineSnapshot), [{"campaign_id": second, "at": datetime.now(UTC), "reason": "x",
                                                     "buffer_consumed_pct": 0.0, "progress_pct": 0.0}])
        await db.execute(update(Task).where(Task.campaign_id.in_([first, second])).values(priority="high")
                         .execution_options(synchronize_session=False))
        assert changes.changed_in(db) == {first, second}
        await db.rollback()
    assert not caplog.records, [record.getMessage() for record in caplog.records]
