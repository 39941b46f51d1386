"""Rendered dashboard answers, kept in memory until something they show changes.

A page is keyed by the link's scope, the route, its normalized parameters and the change version of
what it shows (`LiveHub.version` for the whole workspace, `version_of(campaign_id)` for one campaign).
Every change heard bumps the version, so the next request misses and renders afresh; nothing has to be
deleted. Entries also age out after MAX_AGE_SECONDS, since some of what a page says moves with the
clock alone (a task becomes overdue, "today" turns into tomorrow) and changes to people (a new name)
are not published. The cache is bounded (least recently used out first), one per process.

HTML is kept with a per-process placeholder where the link's token goes and the token is put in per
request: two links of the same scope share the page, and a page never shows one reader another's link.
The version is read before the data: a change that lands while a page renders leaves it under the
older version, which the next request no longer asks for.

A page missing from the cache is rendered once however many ask for it at the same moment: after a
change every open page reloads at once (`handlers.live`), and a thousand readers of one page should cost
one render, not a thousand. The others wait for it; if it fails or its request goes away, the next one
renders instead.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from urllib.parse import quote

from aiohttp import web

from handlers.web import DEPS_KEY

MAX_ENTRIES = 512
MAX_AGE_SECONDS = 60.0
TOKEN_MARK = f"tok{secrets.token_hex(12)}"  # stands for the reader's token in kept HTML


class RenderCache:
    def __init__(self, *, max_entries: int = MAX_ENTRIES, max_age: float = MAX_AGE_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.max_entries, self.max_age, self.clock = max_entries, max_age, clock
        self._entries: OrderedDict[Hashable, tuple[float, str]] = OrderedDict()
        self._rendering: dict[Hashable, tuple[asyncio.Lock, list[int]]] = {}  # a lock and how many hold or wait
        self.hits = self.misses = self.renders = 0

    def get(self, key: Hashable) -> str | None:
        entry = self._entries.get(key)
        if entry is None or self.clock() - entry[0] > self.max_age:
            if entry is not None:
                del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry[1]

    def put(self, key: Hashable, value: str) -> None:
        self._entries[key] = (self.clock(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    async def get_or_render(self, key: Hashable, render: Callable[[], Awaitable[str]]) -> str:
        """The text kept under `key`, or rendered now by one caller while the others wait for it."""
        text = self.get(key)
        if text is not None:
            return text
        lock, users = self._rendering.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                text = self._fresh(key)
                if text is None:
                    self.renders += 1
                    text = await render()
                    self.put(key, text)
                return text
        finally:
            users[0] -= 1
            if not users[0]:
                del self._rendering[key]

    def _fresh(self, key: Hashable) -> str | None:
        """What another caller rendered while this one waited (not counted as a hit or miss)."""
        entry = self._entries.get(key)
        return entry[1] if entry is not None and self.clock() - entry[0] <= self.max_age else None


CACHE_KEY = web.AppKey("dashboard_cache", RenderCache)


def install(web_app: web.Application) -> None:
    """Give the app its cache (once, whichever dashboard module registers first)."""
    if CACHE_KEY not in web_app:
        web_app[CACHE_KEY] = RenderCache()


def version(request: web.Request, campaign_id: int | None) -> int:
    """The change version of what a page shows: one campaign's, or the workspace's."""
    live = request.app[DEPS_KEY].live
    return live.version if campaign_id is None else live.version_of(campaign_id)


async def kept(
    request: web.Request, key: tuple[Hashable, ...], *, campaign_id: int | None, render: Callable[[], Awaitable[str]]
) -> str:
    """The text kept under `key` at the current version of what it shows, rendered now if there is none."""
    return await request.app[CACHE_KEY].get_or_render((*key, version(request, campaign_id)), render)


def with_token(html: str, token: str) -> str:
    """Kept HTML with the reader's token where TOKEN_MARK stands (quoted, though a checked token needs none)."""
    return html.replace(TOKEN_MARK, quote(token, safe=""))
