"""`GET /dashboard/calendar.ics?token=…`: the calendar feed calendar apps subscribe to.

The token rides in the query (a subscription URL is one opaque address; calendar apps keep it whole).
A campaign link's feed holds only its campaign. Calendar apps poll, some every few minutes, so a poll
of an unchanged feed should cost two small queries and nothing more:
- the body is the same bytes while nothing changed (`services.calendar_feed`), and its hash is a strong
  ETag: a matching `If-None-Match` gets an empty 304;
- writing the iCalendar text is the slow part, so bodies are kept by the fingerprint of what they were
  written from (a few, most recent first): another reader of the same feed gets the kept bytes, and a
  changed plan has a new fingerprint, so nothing stale is ever served.
A feed that must be written is written on a worker thread, so the event loop keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import UTC, datetime

from aiohttp import web

from handlers.web import DEPS_KEY
from handlers.web.dashboard.access import access_of, reading_sessions
from services import calendar_feed, links

CALENDAR_PATH = "/dashboard/calendar.ics"
FILE_NAME = "campaigns.ics"
# Private: the URL carries the token, so no shared cache may keep it; no-cache: ask again, cheaply (304).
CACHE_CONTROL = "private, no-cache"
BODIES_KEPT = 16


class WrittenFeeds:
    """The last few feed bodies written, with their ETags, by fingerprint (least recently used goes)."""

    def __init__(self, size: int = BODIES_KEPT):
        self.size = size
        self._kept: OrderedDict[str, tuple[bytes, str]] = OrderedDict()

    def get(self, key: str) -> tuple[bytes, str] | None:
        found = self._kept.get(key)
        if found is not None:
            self._kept.move_to_end(key)
        return found

    def keep(self, key: str, body: bytes) -> tuple[bytes, str]:
        kept = (body, calendar_feed.etag_of(body))
        self._kept[key] = kept
        self._kept.move_to_end(key)
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)
        return kept


WRITTEN_FEEDS = web.AppKey("calendar_written_feeds", WrittenFeeds)


def register(web_app: web.Application) -> None:
    web_app[WRITTEN_FEEDS] = WrittenFeeds()
    web_app.router.add_get(CALENDAR_PATH, calendar_feed_ics)


async def calendar_feed_ics(request: web.Request) -> web.Response:
    access = await access_of(request)
    base = links.dashboard_url(request.app[DEPS_KEY].settings.public_url, access.token)

    def page_url(ref: str) -> str:
        return f"{base}/campaigns/{ref}"

    async with reading_sessions(request).begin() as db:
        events = await calendar_feed.calendar_events(db=db, campaign_id=access.campaign_id,
                                                     now=datetime.now(UTC), page_url=page_url)
        name = await calendar_feed.calendar_name(db=db, campaign_id=access.campaign_id)
    written = request.app[WRITTEN_FEEDS]
    key = calendar_feed.fingerprint(events, name=name)
    kept = written.get(key)
    if kept is None:
        body = await asyncio.to_thread(calendar_feed.feed_ical, events, name=name)
        kept = written.keep(key, body)
    body, etag = kept
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL}
    if _matches(request, etag):
        return web.Response(status=304, headers=headers)
    headers["Content-Disposition"] = f'inline; filename="{FILE_NAME}"'
    return web.Response(body=body, content_type="text/calendar", charset="utf-8", headers=headers)


def _matches(request: web.Request, etag: str) -> bool:
    """If-None-Match compares weakly (RFC 9110 13.1.2): a `W/` tag of the same bytes matches too."""
    wanted = request.if_none_match
    if not wanted:
        return False
    value = etag.strip('"')
    return any(tag.value in (value, "*") for tag in wanted)
