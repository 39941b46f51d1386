"""The campaign timeline page: the plan as a Gantt (links, milestones, the critical path, late work, today)
and the buffer fever chart beside it, both drawn on the server as SVG, with the same facts as tables.

`GET /dashboard/{token}/campaigns/{ref}/timeline?tz=Area/City`. As every page (`pages`): the link first,
so a bad link learns nothing about refs; then a ref that is not a campaign's is a 400, one of no campaign
a 404, one outside a campaign link's scope a 403, a time zone nobody knows a 400. The answer is kept in
the render cache under the campaign's live version (`cache`); it ages out within a minute, which is as
far as the today line and what counts as late may lag the clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from blocks.charts import fever_svg, gantt_svg
from handlers.web.dashboard.pages import PREFIX, answers, campaign_asked, now, rendered
from services.plan_view import FeverPoint, campaign_timeline

TIMELINE_PATH = PREFIX + "/campaigns/{ref}/timeline"
HISTORY_ROWS = 30  # the latest re-plans listed under the fever chart


def register(web_app: web.Application) -> None:
    web_app.router.add_get(TIMELINE_PATH, timeline_page)


@answers
async def timeline_page(request: web.Request) -> web.StreamResponse:
    access, campaign_id, zone = await campaign_asked(request)
    moment = now()

    async def load(db: AsyncSession) -> dict[str, Any]:
        view = await campaign_timeline(db=db, campaign_id=campaign_id, now=moment)
        return {"view": view, "history": latest_first(view.fever)}

    # The charts are drawn while the template renders, after the reading transaction has ended.
    return await rendered(request, access, route="timeline", key=(campaign_id,), campaign_id=campaign_id,
                          template="timeline.html", load=load, zone=zone, zone_info=zone,
                          gantt_svg=gantt_svg, fever_svg=fever_svg, local=local_to(zone))


def latest_first(points: list[FeverPoint]) -> list[FeverPoint]:
    return list(reversed(points[-HISTORY_ROWS:]))


def local_to(zone: ZoneInfo) -> Any:
    """For the template: a stored (UTC) moment on the reader's clock, or None kept as None."""

    def local(moment: datetime | None) -> datetime | None:
        return moment.astimezone(zone) if moment is not None else None

    return local
