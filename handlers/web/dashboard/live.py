"""Live updates for open pages: server-sent events that say which campaigns changed.

`GET /dashboard/{token}/events` streams `text/event-stream` to the page's script (static/live.js), which
reads its page afresh when a change concerns it. The token is checked before anything is streamed
(a refused link gets its 401/403 page). `?scope=campaign:N` narrows a workspace link's stream to one
campaign (a campaign's page needs no other); a campaign link's stream is its campaign's whatever it asks.

Each event is `id: <version>`, `event: change` and `data: {"campaigns": [...]}` with only the campaigns
the stream may see (`"everything": true` when the hub cannot say which: the page reads afresh). A page
that reconnects sends the last id it saw (`Last-Event-ID`, or `?last=` for the version it was rendered
at); if anything changed since, one catch-up event goes out at once. The first lines give the id the
stream starts from, so even a stream that carried no change reconnects without a gap. Ids compare across instances
(`handlers.live`), so a page can reconnect to any.

A comment every HEARTBEAT_SECONDS keeps proxies from closing an idle stream. A stream ends after
STREAM_SECONDS and the browser reconnects at once (`retry`), catching up from its last id: so the link
is checked again (a revoked or expired link stops streaming within that time, and the page's script
then stops), and long-lived connections spread over instances again. At most MAX_STREAMS streams per
process (each holds a connection): beyond that a page is answered 503 with Retry-After, and its script
retries later. On shutdown every stream ends cleanly, so the server does not wait out its grace period
for them.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
from dataclasses import dataclass, field

from aiohttp import web

from handlers.live import Change, Listener
from handlers.web import DEPS_KEY
from handlers.web.dashboard.access import Access, access_of
from handlers.web.dashboard.render import HEADERS, refusal

log = logging.getLogger(__name__)

EVENTS_PATH = "/dashboard/{token}/events"
MAX_STREAMS = 2_000  # per process
HEARTBEAT_SECONDS = 15.0
WATCH_SECONDS = 1.0  # how often the streams are looked at: gone pages, heartbeats, time up
SLOW_PAGE_BYTES = 32 * 1024  # unsent to one page: it does not read, let it go (it reconnects and catches up)
HEARTBEAT = b": still here\n\n"
STREAM_SECONDS = 300.0  # then the browser reconnects, and the link is checked again
RETRY_MS = 2_000  # how soon a browser reconnects a dropped stream
BUSY_RETRY_AFTER_SECONDS = 10
STREAM_HEADERS = {**HEADERS, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

_CAMPAIGN_SCOPE = re.compile(r"^campaign:([1-9][0-9]{0,9})$")
_EVENT_ID = re.compile(r"^[0-9]{1,19}$")


@dataclass(eq=False)
class OpenStream:
    """One stream: its page's request and response, its listener, and when it last wrote."""

    request: web.Request
    response: web.StreamResponse
    listener: Listener
    opened_at: float
    wrote_at: float
    done: asyncio.Event = field(default_factory=asyncio.Event)  # set: the stream ends


class Streams:
    """The open streams of one web app: how many (the limit), and the two tasks that write to them.

    A change is written to every stream it concerns by one task (`_write_changes`), stream after
    stream, not by a task per stream: waking a thousand tasks costs more than the writes themselves.
    A write never waits: a page that does not read what it is sent (SLOW_PAGE_BYTES unsent) is let go,
    and its browser reconnects and catches up. Every WATCH_SECONDS another task ends streams whose page
    went away (a write would only notice at the next heartbeat; this way they stop counting against
    the limit at once) or whose STREAM_SECONDS are up, and writes a heartbeat where nothing was written
    for HEARTBEAT_SECONDS.
    """

    def __init__(self, limit: int = MAX_STREAMS):
        self.limit = limit
        self.open: dict[Listener, OpenStream] = {}
        self.closing = False
        self._due: dict[OpenStream, None] = {}  # streams with changes to write, in the order they came
        self._writer: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None

    def add(self, request: web.Request, response: web.StreamResponse, listener: Listener) -> OpenStream:
        now = asyncio.get_running_loop().time()
        stream = self.open[listener] = OpenStream(request, response, listener, opened_at=now, wrote_at=now)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="dashboard-live-watch")
        return stream

    def start(self, stream: OpenStream) -> None:
        """From now on its changes are written by the writer (the stream's own first lines are out)."""
        stream.listener.on_change = lambda listener: self._changed(stream)
        if stream.listener.waiting:
            self._changed(stream)

    def remove(self, stream: OpenStream) -> None:
        stream.listener.on_change = None
        self.open.pop(stream.listener, None)
        self._due.pop(stream, None)

    def close_all(self) -> None:
        self.closing = True
        for stream in self.open.values():
            stream.done.set()
        for task in (self._writer, self._watcher):
            if task is not None:
                task.cancel()

    def _changed(self, stream: OpenStream) -> None:
        self._due[stream] = None
        if self._writer is None and not self.closing:
            self._writer = asyncio.get_running_loop().create_task(self._write_changes(), name="dashboard-live-write")

    async def _write_changes(self) -> None:
        try:
            while self._due:
                due, self._due = self._due, {}
                for stream in due:
                    change = stream.listener.take()
                    if change is not None and not stream.done.is_set():
                        await self._write(stream, encode(change))
        finally:
            self._writer = None

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while self.open and not self.closing:
            await asyncio.sleep(WATCH_SECONDS)
            now = loop.time()
            for stream in list(self.open.values()):
                transport = stream.request.transport
                if transport is None or transport.is_closing() or now - stream.opened_at >= STREAM_SECONDS:
                    stream.done.set()
                elif now - stream.wrote_at >= HEARTBEAT_SECONDS:
                    await self._write(stream, HEARTBEAT)

    async def _write(self, stream: OpenStream, data: bytes) -> None:
        transport = stream.request.transport
        if transport is None or transport.is_closing() or transport.get_write_buffer_size() > SLOW_PAGE_BYTES:
            stream.done.set()
            return
        try:
            await stream.response.write(data)
        except ConnectionError:
            stream.done.set()
            return
        stream.wrote_at = asyncio.get_running_loop().time()


STREAMS_KEY = web.AppKey("dashboard_live_streams", Streams)


def register(web_app: web.Application) -> None:
    web_app[STREAMS_KEY] = Streams()
    web_app.router.add_get(EVENTS_PATH, events)
    web_app.on_shutdown.append(_close_streams)


async def events(request: web.Request) -> web.StreamResponse:
    access = await access_of(request)  # refused: the 401/403 page, nothing streamed
    campaign_id = _campaign_of(request, access)
    last = _last_seen(request)
    streams = request.app[STREAMS_KEY]
    if streams.closing or len(streams.open) >= streams.limit:
        busy = refusal(503, "Too many live pages are open on this server right now; the page tries again shortly.")
        busy.headers["Retry-After"] = str(BUSY_RETRY_AFTER_SECONDS)
        return busy
    hub = request.app[DEPS_KEY].live
    response = web.StreamResponse(headers=STREAM_HEADERS)
    response.content_type = "text/event-stream"
    response.charset = "utf-8"
    listener = hub.listen(campaign_id)  # before the first byte: a change from now on is not missed
    listening_since = hub.version
    stream = streams.add(request, response, listener)
    try:
        await response.prepare(request)
        # An id without data is no event, but the browser keeps it: a page that reconnects before any
        # change came still says where it was, and misses nothing in between.
        await response.write(f"retry: {RETRY_MS}\nid: {listening_since}\n\n".encode())
        caught_up = hub.catch_up(last, campaign_id) if last is not None else None
        if caught_up is not None:
            await response.write(encode(caught_up))
        streams.start(stream)
        await stream.done.wait()
    except ConnectionError:
        pass  # the page went away: nobody to answer
    except Exception:  # the stream has begun: no error page can follow, end it
        log.exception("a live stream failed")
    finally:
        hub.forget(listener)
        streams.remove(stream)
    return response


@functools.lru_cache(maxsize=256)  # one change goes to many pages alike: encoded once
def encode(change: Change) -> bytes:
    data: dict[str, object] = {"campaigns": sorted(change.campaign_ids)}
    if change.everything:
        data["everything"] = True
    return f"id: {change.event_id}\nevent: change\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _campaign_of(request: web.Request, access: Access) -> int | None:
    """The campaign the stream is for: the link's, or one a workspace link's page asks for; None: all."""
    asked = request.query.get("scope", "all")
    if asked == "all":
        return access.campaign_id
    matched = _CAMPAIGN_SCOPE.match(asked)
    if matched is None:
        raise web.HTTPBadRequest(reason="The scope must be all or campaign:<number>.")
    campaign_id = int(matched.group(1))
    access.require(campaign_id)
    return campaign_id


def _last_seen(request: web.Request) -> int | None:
    """The last id the page saw: the browser's Last-Event-ID on a reconnect, else `?last=`; a value
    that is not an id is ignored (the stream then starts from now)."""
    for value in (request.headers.get("Last-Event-ID"), request.query.get("last")):
        if value is not None and _EVENT_ID.match(value.strip()):
            return int(value.strip())
    return None


async def _close_streams(web_app: web.Application) -> None:
    web_app[STREAMS_KEY].close_all()
