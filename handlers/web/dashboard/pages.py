"""The dashboard's pages: overview, week, day, campaign list, campaign detail and metrics (server-rendered).

Each handler checks the link first (`access_of`: 401/403 before anything else is read), then the query
(a bad value is a 400 page, never a 500), then answers from the render cache or renders: the data from
`services.dashboard_*` in one read-only unit of work, the HTML from a template (`cache` explains the
keys and the token placeholder). A campaign link sees only its campaign: the services read with its
scope, a page of another campaign is a 403, and its overview is that campaign's page.

`/dashboard/{token}` is the catch-all of the dashboard's paths, so this module registers last.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Hashable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.web import DEPS_KEY
from handlers.web.dashboard import cache
from handlers.web.dashboard.access import Access, access_of, reading_sessions
from handlers.web.dashboard.render import refusal, templates
from models import CampaignStatus
from services import dashboard_params as params
from services.dashboard import HEALTH_ORDER, campaign_ref
from services.dashboard_campaigns import CampaignFilters, campaign_list
from services.dashboard_detail import campaign_detail
from services.dashboard_metrics import metrics
from services.dashboard_overview import overview
from services.dashboard_schedule import CARDS_PER_DAY, CARDS_PER_DAY_IN_WEEK, WEEK_DAYS, schedule
from services.errors import InvalidInput, NotAllowed, NotFound
from services.refs import RefKind, parse_ref

PREFIX = "/dashboard/{token}"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def register(web_app: web.Application) -> None:
    cache.install(web_app)
    router = web_app.router
    router.add_get("/dashboard", overview_page)  # a link passed as ?token=
    router.add_get(PREFIX, overview_page)
    router.add_get(PREFIX + "/week", week_page)
    router.add_get(PREFIX + "/day", day_page)
    router.add_get(PREFIX + "/campaigns", campaigns_page)
    router.add_get(PREFIX + "/campaigns/{ref}", campaign_page)
    router.add_get(PREFIX + "/metrics", metrics_page)


def answering(*, json: bool) -> Callable[[Handler], Handler]:
    """Domain errors as plain pages (or JSON): bad input 400, nothing there 404, not allowed 403."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def answer(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except InvalidInput as error:
                return refusal(400, str(error), json=json)
            except NotFound as error:
                return refusal(404, str(error), json=json)
            except NotAllowed as error:
                return refusal(403, str(error), json=json)

        return answer

    return decorate


answers = answering(json=False)


def now() -> datetime:
    return datetime.now(UTC)


def live_scope(campaign_id: int | None) -> str:
    """What the live script listens for: every change, or one campaign's."""
    return "all" if campaign_id is None else f"campaign:{campaign_id}"


def campaign_of(text: str) -> int:
    """A campaign ref from the path (CM-12, cm12 or 12), or a 400."""
    try:
        return parse_ref(text, RefKind.CAMPAIGN)
    except InvalidInput:
        raise InvalidInput("That is not a campaign reference; they look like CM-12.") from None


async def campaign_asked(request: web.Request) -> tuple[Access, int, ZoneInfo]:
    """A campaign's page or JSON: the link's access, the campaign from the path (in the link's scope, or
    403), and the reader's zone. The link is checked first: a bad link is 401 whatever else is wrong."""
    access = await access_of(request)
    campaign_id = campaign_of(request.match_info["ref"])
    access.require(campaign_id)
    return access, campaign_id, params.parse_zone(request.query.get("tz"))


class Links:
    """Builds the page's links: the token's placeholder, the path, the query, and the reader's `tz`."""

    def __init__(self, zone_param: str | None):
        self.zone_param = zone_param or None

    def __call__(self, path: str = "", **query: object) -> str:
        pairs = [(key, str(value)) for key, value in query.items() if value not in (None, "")]
        if self.zone_param:
            pairs.append(("tz", self.zone_param))
        return f"/dashboard/{cache.TOKEN_MARK}{path}" + (f"?{urlencode(pairs)}" if pairs else "")

    def path(self, path: str = "") -> str:
        """A path alone, for a form's action (a GET form replaces the query with its fields)."""
        return f"/dashboard/{cache.TOKEN_MARK}{path}"

    @property
    def tz_suffix(self) -> str:
        return f"?{urlencode({'tz': self.zone_param})}" if self.zone_param else ""


async def rendered(
    request: web.Request, access: Access, *, route: str, key: tuple[Hashable, ...], campaign_id: int | None,
    template: str, load: Callable[[AsyncSession], Awaitable[Mapping[str, Any]]], zone: ZoneInfo,
    **context: Any,
) -> web.Response:
    """The page from the cache, or loaded and rendered now; with the reader's token put in."""

    async def render() -> str:
        # Read before the data: the live script asks its stream for every change after this one.
        version = request.app[DEPS_KEY].live.version
        async with reading_sessions(request).begin() as db:
            data = await load(db)
        links = Links(request.query.get("tz"))
        return templates.get_template(template).render(
            token=cache.TOKEN_MARK, href=links, tz_suffix=links.tz_suffix, tz=zone.key, current=route,
            live_scope=live_scope(campaign_id), live_version=version, scoped=access.campaign_id is not None,
            **data, **context,
        )

    # Keyed by the `tz` asked for, not only the zone: the page's links repeat it (or leave it out) as asked.
    asked_zone = request.query.get("tz") or ""
    html = await cache.kept(request, (access.scope, route, asked_zone, *key), campaign_id=campaign_id, render=render)
    return web.Response(text=cache.with_token(html, access.token), content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


@answers
async def overview_page(request: web.Request) -> web.StreamResponse:
    access = await access_of(request)
    zone = params.parse_zone(request.query.get("tz"))
    if access.campaign_id is not None:  # a campaign's link: its overview is the campaign's own page
        links = Links(request.query.get("tz"))
        target = links(f"/campaigns/{campaign_ref(access.campaign_id)}")
        raise web.HTTPFound(cache.with_token(target, access.token))
    moment = now()

    async def load(db: AsyncSession) -> dict[str, Any]:
        return {"data": await overview(db=db, campaign_id=None, zone=zone, now=moment)}

    return await rendered(request, access, route="overview", key=(moment.astimezone(zone).date(),),
                          campaign_id=None, template="overview.html", load=load, zone=zone)


@answers
async def week_page(request: web.Request) -> web.StreamResponse:
    access = await access_of(request)
    zone = params.parse_zone(request.query.get("tz"))
    start = params.parse_day(request.query.get("start"), field="start")
    moment = now()
    first = params.monday_of(start or moment.astimezone(zone).date())

    async def load(db: AsyncSession) -> dict[str, Any]:
        week = await schedule(db=db, campaign_id=access.campaign_id, first=first, days=WEEK_DAYS, zone=zone,
                              now=moment, per_day=CARDS_PER_DAY_IN_WEEK)
        return {"week": week}

    return await rendered(request, access, route="week", key=(first,), campaign_id=access.campaign_id,
                          template="week.html", load=load, zone=zone)


@answers
async def day_page(request: web.Request) -> web.StreamResponse:
    access = await access_of(request)
    zone = params.parse_zone(request.query.get("tz"))
    day = params.parse_day(request.query.get("date"), field="date")
    moment = now()
    day = day or moment.astimezone(zone).date()

    async def load(db: AsyncSession) -> dict[str, Any]:
        found = await schedule(db=db, campaign_id=access.campaign_id, first=day, days=1, zone=zone, now=moment,
                               per_day=CARDS_PER_DAY)
        return {"schedule": found, "day": found.days[0]}

    return await rendered(request, access, route="day", key=(day,), campaign_id=access.campaign_id,
                          template="day.html", load=load, zone=zone)


@answers
async def campaigns_page(request: web.Request) -> web.StreamResponse:
    access = await access_of(request)
    query = request.query
    zone = params.parse_zone(query.get("tz"))
    filters = CampaignFilters(
        status=params.parse_status(query.get("status")), owner=params.parse_owner(query.get("owner")),
        template=params.parse_template(query.get("template")), month=params.parse_month(query.get("month")),
        health=params.parse_health(query.get("health")), page=params.parse_page(query.get("page")),
    )

    async def load(db: AsyncSession) -> dict[str, Any]:
        return {"listing": await campaign_list(db=db, campaign_id=access.campaign_id, filters=filters)}

    return await rendered(request, access, route="campaigns", key=(filters,), campaign_id=access.campaign_id,
                          template="campaigns.html", load=load, zone=zone, filters=filters,
                          filter_query=filter_query(filters), statuses=STATUS_CHOICES, healths=HEALTH_CHOICES)


STATUS_CHOICES = [(status.value, status.value.capitalize()) for status in CampaignStatus]
HEALTH_CHOICES = [(health.value, health.label) for health in HEALTH_ORDER]


def filter_query(filters: CampaignFilters) -> dict[str, str]:
    """The filters as the list's URL spells them (the defaults left out), to keep them across pages."""
    query = {"status": filters.status.word if filters.status.word != "open" else "",
             "owner": filters.owner or "", "template": filters.template or "",
             "month": filters.month.strftime("%Y-%m") if filters.month else "",
             "health": filters.health.value if filters.health else ""}
    return {key: value for key, value in query.items() if value}


@answers
async def campaign_page(request: web.Request) -> web.StreamResponse:
    access, campaign_id, zone = await campaign_asked(request)
    moment = now()

    async def load(db: AsyncSession) -> dict[str, Any]:
        return {"detail": await campaign_detail(db=db, campaign_id=campaign_id, zone=zone, now=moment)}

    return await rendered(request, access, route="campaign", key=(campaign_id,), campaign_id=campaign_id,
                          template="campaign.html", load=load, zone=zone)


@answers
async def metrics_page(request: web.Request) -> web.StreamResponse:
    access = await access_of(request)
    zone = params.parse_zone(request.query.get("tz"))
    moment = now()
    first, last = params.parse_range(request.query.get("from"), request.query.get("to"),
                                     today=moment.astimezone(zone).date())

    async def load(db: AsyncSession) -> dict[str, Any]:
        return {"metrics": await metrics(db=db, campaign_id=access.campaign_id, first=first, last=last,
                                         zone=zone, now=moment)}

    return await rendered(request, access, route="metrics", key=(first, last), campaign_id=access.campaign_id,
                          template="metrics.html", load=load, zone=zone)
