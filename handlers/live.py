"""Live updates: which campaigns changed, told to every open dashboard page after the change committed.

`LiveHub.publish(campaign_ids)` is called after a commit (the unit of work's hand-out, the sweep's),
never inside a transaction, and never raises: a change that cannot be told is logged, and the page
shows it at its next change or reload. Every process's hub hears every change:

- with Redis, through one pub/sub channel (`<namespace>:live:changes`). Each change takes its id from
  one counter (`<namespace>:live:version`, INCR) and is published in the same script, so ids are
  comparable across instances and published in the order they were taken: a page that reconnects to
  another instance catches up from the id it last saw. One subscriber task per process feeds `heard`;
  after losing Redis it subscribes again and, if changes went by meanwhile, tells every open page to
  read afresh (`missed`).
- in embedded mode, inside the process: ids count up from the moment the process started (in
  microseconds), so an id from before a restart is recognised as older than anything this hub knows.

`version` and `version_of(campaign_id)` only grow: pages cache what they render under them, so a change
invalidates exactly what it touched. `listen(campaign_id)` gives an open page's stream a `Listener`
that gathers the changes it has not sent yet (several changes between two sends go out as one), and
`catch_up(last, campaign_id)` says what a page that last saw `last` has missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 0.5  # a change is told after the person's answer is due: never hold it up long
SUBSCRIBED_WAIT_SECONDS = 2.0  # start-up waits this long for the subscription, then goes on without it
RESUBSCRIBE_SECONDS = (0.5, 10.0)  # first and longest wait before subscribing again after losing Redis

# INCR and PUBLISH in one step: ids reach every subscriber in the order they were taken.
_ANNOUNCE = """
local id = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], id .. ':' .. ARGV[2])
return id
"""
# The counter raised to at least ARGV[1] (a Redis that lost its data must not hand out old ids again).
_AT_LEAST = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = tonumber(ARGV[1])
if current < wanted then
  redis.call('SET', KEYS[1], ARGV[1])
  return wanted
end
return current
"""


@dataclass(frozen=True)
class Change:
    """What one stream tells its page: the newest id, the campaigns, or `everything` when this hub
    cannot say which campaigns changed (it missed changes), so that the page reads afresh."""

    event_id: int
    campaign_ids: frozenset[int]
    everything: bool = False


class Listener:
    """One open page's stream: the changes it has not sent yet. Whoever sends them is told when the
    first one arrives (`on_change`, called at once, inside `heard`: it must only take note) or waits
    on `woken`."""

    def __init__(self, campaign_id: int | None):
        self.campaign_id = campaign_id  # None: every campaign
        self.woken = asyncio.Event()
        self.on_change: Callable[[Listener], None] | None = None
        self._event_id = 0
        self._campaign_ids: set[int] = set()
        self._everything = False

    @property
    def waiting(self) -> bool:
        return bool(self._campaign_ids) or self._everything

    def tell(self, event_id: int, campaign_ids: Iterable[int], *, everything: bool = False) -> None:
        first = not self.waiting
        if self.campaign_id is None:
            self._campaign_ids.update(campaign_ids)
            self._everything = self._everything or everything
        else:
            self._campaign_ids.add(self.campaign_id)  # the hub tells a campaign's listener only of it
        self._event_id = max(self._event_id, event_id)
        self.woken.set()
        if first and self.on_change is not None:
            self.on_change(self)

    def take(self) -> Change | None:
        """What is waiting, gathered into one change; None when nothing is."""
        self.woken.clear()
        if not self._campaign_ids and not self._everything:
            return None
        change = Change(self._event_id, frozenset(self._campaign_ids), self._everything)
        self._campaign_ids, self._everything = set(), False
        return change


class LiveHub:
    def __init__(self, *, redis: Any | None = None, namespace: str = "campaign-manager"):
        self.channel = RedisChannel(redis, namespace=namespace) if redis is not None else None
        # Ids below `floor` are from before this hub knew anything: a page that saw one has missed what
        # this hub cannot name. Embedded: the process's start; Redis: the counter when subscribed.
        self.floor = 0 if self.channel is not None else time.time_ns() // 1000
        self.version = self.floor  # the newest id heard
        self._campaign_versions: dict[int, int] = {}
        self._everywhere: set[Listener] = set()
        self._by_campaign: dict[int, set[Listener]] = {}
        self._subscriber: asyncio.Task[None] | None = None
        self._first_try = asyncio.Event()  # the first subscription succeeded or failed

    def version_of(self, campaign_id: int) -> int:
        return max(self._campaign_versions.get(campaign_id, 0), self.floor)

    @property
    def listeners(self) -> int:
        return len(self._everywhere) + sum(len(listeners) for listeners in self._by_campaign.values())

    # ------------------------------------------------------------ telling

    async def publish(self, campaign_ids: Iterable[int]) -> None:
        """Tell every process's pages that `campaign_ids` changed (after a commit). Never raises."""
        ids = sorted(set(campaign_ids))
        if not ids:
            return
        if self.channel is None:
            self.heard(ids)
            return
        try:
            await self.channel.send(ids)  # heard back through the subscription, like every instance
        except Exception as error:
            log.warning("live updates: could not publish a change of campaigns %s (%s: %s)", ids,
                        type(error).__name__, error)

    def heard(self, campaign_ids: Iterable[int], *, event_id: int | None = None) -> None:
        """A change, as every hub hears it: the versions move and the listeners it concerns are woken."""
        ids = set(campaign_ids)
        if not ids:
            return
        if event_id is None:
            event_id = self.version + 1
        self.version = max(self.version, event_id)
        for campaign_id in ids:
            if self._campaign_versions.get(campaign_id, 0) < event_id:
                self._campaign_versions[campaign_id] = event_id
        for listener in self._everywhere:
            listener.tell(event_id, ids)
        for campaign_id in ids:
            for listener in self._by_campaign.get(campaign_id, ()):
                listener.tell(event_id, ())

    def missed(self, event_id: int) -> None:
        """Changes up to `event_id` went by unheard (Redis was away): every page should read afresh."""
        if event_id <= self.version:
            return
        if self._everywhere or self._by_campaign:
            log.info("live updates: changes up to %d went unheard; open pages read afresh", event_id)
        self.floor = self.version = event_id
        for listener in self._everywhere:
            listener.tell(event_id, (), everything=True)
        for listeners in self._by_campaign.values():
            for listener in listeners:
                listener.tell(event_id, ())

    # ------------------------------------------------------------ listening

    def listen(self, campaign_id: int | None) -> Listener:
        """A listener for every campaign (None) or one; `forget` it when its stream ends."""
        listener = Listener(campaign_id)
        if campaign_id is None:
            self._everywhere.add(listener)
        else:
            self._by_campaign.setdefault(campaign_id, set()).add(listener)
        return listener

    def forget(self, listener: Listener) -> None:
        if listener.campaign_id is None:
            self._everywhere.discard(listener)
            return
        listeners = self._by_campaign.get(listener.campaign_id)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._by_campaign[listener.campaign_id]

    def catch_up(self, last: int, campaign_id: int | None) -> Change | None:
        """What a page of `campaign_id` (None: every campaign) that last saw id `last` has missed."""
        if last == self.version:
            return None
        if last > self.version or last < self.floor:
            # An id this hub cannot place (before it started, or not heard here yet): read afresh.
            return Change(self.version, frozenset({campaign_id} if campaign_id is not None else ()),
                          everything=campaign_id is None)
        if campaign_id is not None:
            changed = self._campaign_versions.get(campaign_id, 0) > last
            return Change(self.version, frozenset({campaign_id})) if changed else None
        missed = frozenset(cid for cid, version in self._campaign_versions.items() if version > last)
        return Change(self.version, missed) if missed else None

    # ------------------------------------------------------------ the subscription (Redis)

    async def start(self) -> None:
        """Subscribe (Redis mode), waiting a moment for it, so changes right after start-up are heard.
        A Redis that refuses does not hold start-up up: the subscription keeps trying in the background."""
        if self.channel is None or self._subscriber is not None:
            return
        self._subscriber = asyncio.create_task(self._subscribe(), name="live-updates")
        try:
            async with asyncio.timeout(SUBSCRIBED_WAIT_SECONDS):
                await self._first_try.wait()
        except TimeoutError:
            log.warning("live updates: Redis did not confirm the subscription within %.0f s; still trying",
                        SUBSCRIBED_WAIT_SECONDS)

    async def stop(self) -> None:
        task, self._subscriber = self._subscriber, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _subscribe(self) -> None:
        assert self.channel is not None
        wait = RESUBSCRIBE_SECONDS[0]
        while True:
            pubsub = self.channel.redis.pubsub()
            try:
                await pubsub.subscribe(self.channel.name)
                async for message in pubsub.listen():
                    if message.get("type") == "subscribe":
                        # Subscribed: what is published from now on is heard. Whatever went before it
                        # is below the counter as it stands now.
                        self.missed(await self.channel.counter_at_least(self.version))
                        self._first_try.set()
                        wait = RESUBSCRIBE_SECONDS[0]
                    elif message.get("type") == "message":
                        self._on_message(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("live updates: the Redis subscription failed (%s: %s); again in %.1f s",
                            type(error).__name__, error, wait)
                self._first_try.set()
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(wait)
            wait = min(wait * 2, RESUBSCRIBE_SECONDS[1])

    def _on_message(self, data: Any) -> None:
        try:
            text = data.decode() if isinstance(data, bytes) else str(data)
            event_id, _, listed = text.partition(":")
            ids = [int(campaign_id) for campaign_id in listed.split(",") if campaign_id]
            self.heard(ids, event_id=int(event_id))
        except ValueError:
            log.warning("live updates: ignored a malformed message %r", data)


class RedisChannel:
    """The Redis side of live updates, also usable where no hub runs (a worker process that changes
    plans publishes through it, and every `serve` process's hub hears it)."""

    def __init__(self, redis: Any, *, namespace: str):
        self.redis = redis
        self.name = f"{namespace}:live:changes"
        self.counter = f"{namespace}:live:version"
        self._announce = redis.register_script(_ANNOUNCE)
        self._at_least = redis.register_script(_AT_LEAST)

    async def send(self, campaign_ids: Iterable[int]) -> int:
        """Publish a change under a new id (which it returns); raises when Redis fails or is slow."""
        listed = ",".join(str(campaign_id) for campaign_id in sorted(set(campaign_ids)))
        async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
            return int(await self._announce(keys=[self.counter], args=[self.name, listed]))

    async def counter_at_least(self, value: int) -> int:
        async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
            return int(await self._at_least(keys=[self.counter], args=[value]))


async def publish_through_redis(redis: Any, *, namespace: str, campaign_ids: Iterable[int]) -> None:
    """For a process without a hub (a worker): tell every `serve` process. Never raises."""
    ids = sorted(set(campaign_ids))
    if not ids:
        return
    try:
        await RedisChannel(redis, namespace=namespace).send(ids)
    except Exception as error:
        log.warning("live updates: could not publish a change of campaigns %s (%s: %s)", ids,
                    type(error).__name__, error)
