"""The dashboard's JSON, opened with the same link (`?token=`): the week's schedule, one campaign, the metrics.

The bodies are the services' own dataclasses, dumped by pydantic (dates as ISO 8601, times with the
reader's offset, enums as their values), so the JSON says exactly what the pages show. Errors are JSON
too: `{"error": ..., "hint": ...}` with 400 (bad query), 401 (no good link), 403 (another campaign) or
404 (no such campaign). Answers are kept in the render cache like the pages (`cache`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter

from handlers.web.dashboard import cache
from handlers.web.dashboard.access import Access, access_of, reading_sessions
from handlers.web.dashboard.pages import answering, campaign_asked
from services import dashboard_params as params
from services.dashboard_detail import CampaignDetail, campaign_detail
from services.dashboard_metrics import Metrics, metrics
from services.dashboard_schedule import CARDS_PER_DAY_IN_WEEK, WEEK_DAYS, Schedule, schedule

API = "/api/dashboard"
SCHEDULE_JSON = TypeAdapter(Schedule)
CAMPAIGN_JSON = TypeAdapter(CampaignDetail)
METRICS_JSON = TypeAdapter(Metrics)


def register(web_app: web.Application) -> None:
    cache.install(web_app)
    web_app.router.add_get(API + "/schedule", schedule_json)
    web_app.router.add_get(API + "/campaigns/{ref}", campaign_json)
    web_app.router.add_get(API + "/metrics", metrics_json)


answers = answering(json=True)


async def kept_json(
    request: web.Request, access: Access, *, key: tuple[Hashable, ...], campaign_id: int | None,
    load: Callable[[Any], Awaitable[bytes]],
) -> web.Response:
    async def render() -> str:
        async with reading_sessions(request).begin() as db:
            return (await load(db)).decode()

    body = await cache.kept(request, (access.scope, "api", *key), campaign_id=campaign_id, render=render)
    return web.Response(text=body, content_type="application/json", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


@answers
async def schedule_json(request: web.Request) -> web.StreamResponse:
    access = await access_of(request)
    zone = params.parse_zone(request.query.get("tz"))
    start = params.parse_day(request.query.get("start"), field="start")
    now = datetime.now(UTC)
    first = params.monday_of(start or now.astimezone(zone).date())

    async def load(db: Any) -> bytes:
        week = await schedule(db=db, campaign_id=access.campaign_id, first=first, days=WEEK_DAYS, zone=zone,
                              now=now, per_day=CARDS_PER_DAY_IN_WEEK)
        return SCHEDULE_JSON.dump_json(week)

    return await kept_json(request, access, key=("schedule", zone.key, first), campaign_id=access.campaign_id,
                           load=load)


@answers
async def campaign_json(request: web.Request) -> web.StreamResponse:
    access, campaign_id, zone = await campaign_asked(request)
    now = datetime.now(UTC)

    async def load(db: Any) -> bytes:
        return CAMPAIGN_JSON.dump_json(await campaign_detail(db=db, campaign_id=campaign_id, zone=zone, now=now))

    return await kept_json(request, access, key=("campaign", zone.key, campaign_id), campaign_id=campaign_id,
                           load=load)


@answers
async def metrics_json(request: web.Request) -> web.StreamResponse:
    access = await access_of(request)
    zone = params.parse_zone(request.query.get("tz"))
    now = datetime.now(UTC)
    first, last = params.parse_range(request.query.get("from"), request.query.get("to"),
                                     today=now.astimezone(zone).date())

    async def load(db: Any) -> bytes:
        return METRICS_JSON.dump_json(await metrics(db=db, campaign_id=access.campaign_id, first=first, last=last,
                                                    zone=zone, now=now))

    return await kept_json(request, access, key=("metrics", zone.key, first, last), campaign_id=access.campaign_id,
                           load=load)
