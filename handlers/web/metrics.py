"""`GET /metrics` in Prometheus' text format, and the middleware that counts and times every request.

What the process counted (`handlers.metrics`, the client's default registry) goes out together with
gauges read at scrape time: the outbox by status and its oldest due age, the email event batches waiting,
open live streams, the database pool. The database is read with a short timeout, in a task of its own: a
slow database never holds a scrape up; the scrape shows the last values read, and how old they are
(`cm_scrape_database_read_age_seconds`). Only operators may scrape (`handlers.web.operators`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from handlers.deps import Deps
from handlers.metrics import HTTP_DURATION, HTTP_REQUESTS, method_label, status_class
from handlers.web import DEPS_KEY
from handlers.web.operators import may_see_internals, not_found
from services import email_events, notifications

log = logging.getLogger(__name__)

PATH = "/metrics"
READ_TIMEOUT_SECONDS = 1.0  # a scrape waits this long for the database, then answers with the last values
UNMATCHED = "unmatched"  # a path no route takes: never the raw path, which anyone can make up

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def register(web_app: web.Application) -> None:
    """Call first: the middleware must be the outermost, to see the status the other middlewares settle on."""
    scrape = Scrape.of(web_app[DEPS_KEY])
    web_app[SCRAPE_KEY] = scrape
    web_app.middlewares.append(count_requests)
    web_app.router.add_get(PATH, metrics)
    web_app.on_cleanup.append(lambda _app: scrape.gauges.stop())


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = "cancelled"  # the peer went away before it was answered
    try:
        response = await handler(request)
        status = status_class(response.status)
        return response
    except web.HTTPException as refusal:
        status = status_class(refusal.status)
        raise
    except Exception:
        status = "5xx"
        raise
    finally:
        route = route_of(request)
        HTTP_REQUESTS.labels(route, method_label(request.method), status).inc()
        HTTP_DURATION.labels(route).observe(time.perf_counter() - started)


def route_of(request: web.Request) -> str:
    """The matched route's template (`/api/v1/tasks/{ref}`), never the path as sent."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


async def metrics(request: web.Request) -> web.Response:
    if not may_see_internals(request):
        return not_found()
    scrape = request.app[SCRAPE_KEY]
    await scrape.gauges.refresh()
    return web.Response(body=generate_latest(scrape.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


# ------------------------------------------------------------------ gauges read at scrape time


@dataclass(frozen=True)
class Reading:
    at: float  # monotonic
    due: int
    scheduled: int
    sending: int
    failed_last_day: int
    oldest_due_seconds: float
    email_batches_pending: int


class ScrapeGauges(Collector):
    """This app's gauges: the last database reading, the live streams and the pool as they are now."""

    def __init__(self, deps: Deps, *, timeout: float = READ_TIMEOUT_SECONDS):  # noqa: ASYNC109
        self.deps = deps
        self.timeout = timeout
        self.last: Reading | None = None
        self.last_failed = False
        self._reading: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        """Read the database, waiting at most `timeout`; a read still going on is joined, never doubled."""
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._read(), name="metrics-read")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._reading), self.timeout)

    async def stop(self) -> None:
        task, self._reading = self._reading, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _read(self) -> None:
        try:
            async with (self.deps.reading_sessions or self.deps.sessions)() as db:
                stats = await notifications.outbox_stats(db=db, now=datetime.now(UTC))
                batches = await email_events.pending_batches(db=db)
        except Exception as error:  # the database is the answer's subject, not our bug: keep the last values
            if not self.last_failed:
                log.warning("metrics: could not read the outbox (%s); showing the last values", type(error).__name__)
            self.last_failed = True
            return
        self.last_failed = False
        self.last = Reading(at=time.monotonic(), due=stats.due, scheduled=stats.scheduled, sending=stats.sending,
                            failed_last_day=stats.failed_last_day, oldest_due_seconds=stats.oldest_due_seconds or 0.0,
                            email_batches_pending=batches)

    def collect(self) -> Iterator[Metric]:
        yield _gauge("cm_live_streams", "Open live-update streams (dashboard pages) on this process.",
                     self.deps.live.listeners)
        yield from self._pool()
        yield _gauge("cm_scrape_database_read_ok", "1 if the last scrape-time database read succeeded.",
                     0 if self.last_failed or self.last is None else 1)
        last = self.last
        if last is None:
            return
        yield _gauge("cm_scrape_database_read_age_seconds", "How old the outbox and email batch values are.",
                     time.monotonic() - last.at)
        outbox = GaugeMetricFamily("cm_outbox_notifications", "Open outbox rows by status: due (waiting to go out), "
                                   "scheduled (due later), sending (claimed by a worker).", labels=["status"])
        for status, value in (("due", last.due), ("scheduled", last.scheduled), ("sending", last.sending)):
            outbox.add_metric([status], value)
        yield outbox
        yield _gauge("cm_outbox_failed_last_day", "Outbox rows that failed for good, of those due in the last day.",
                     last.failed_last_day)
        yield _gauge("cm_outbox_oldest_due_age_seconds", "How long the oldest due row has waited (0: none due).",
                     last.oldest_due_seconds)
        yield _gauge("cm_email_event_batches_pending", "Mailjet posts stored and not yet processed.",
                     last.email_batches_pending)

    def _pool(self) -> Iterable[Metric]:
        pool = self.deps.engine.pool
        checked_out, idle = getattr(pool, "checkedout", None), getattr(pool, "checkedin", None)
        if not callable(checked_out) or not callable(idle):  # SQLite's pools keep no such count
            return
        family = GaugeMetricFamily("cm_database_pool_connections", "This process's database connections by state.",
                                   labels=["state"])
        family.add_metric(["in_use"], checked_out())
        family.add_metric(["idle"], idle())
        yield family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class _ProcessMetrics(Collector):
    """Everything the process counted (the default registry), served beside this app's own gauges."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


@dataclass
class Scrape:
    registry: CollectorRegistry
    gauges: ScrapeGauges

    @classmethod
    def of(cls, deps: Deps) -> Scrape:
        # One registry per app: several apps in one process (the tests) each show their own gauges.
        registry = CollectorRegistry(auto_describe=False)
        gauges = ScrapeGauges(deps)
        registry.register(_ProcessMetrics())
        registry.register(gauges)
        return cls(registry, gauges)


SCRAPE_KEY = web.AppKey("metrics_scrape", Scrape)
