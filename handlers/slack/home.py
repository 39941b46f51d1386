"""App Home: publish a person's overview when they open the Home tab, and after they act on it.

The inbox marks what it shows as read when the person opens the tab (not on the re-publishes that
follow a click elsewhere, which the person may not be looking at), and only once Slack took the view.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from blocks.home import home_view
from handlers.deps import Deps
from handlers.slack import inflight
from handlers.slack.context import Work, deps_of, unit_of_work
from handlers.slack.dashboard import signed_link
from handlers.slack.errors import replying_errors
from models import TeamMember
from services import home

log = logging.getLogger(__name__)

DASHBOARD_PATH = "/dashboard"


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(home_opened)


async def home_opened(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
    if event.get("tab") != "home":  # the event also fires for the Messages tab
        return
    async with replying_errors(None):
        async with unit_of_work(context, client, reading=True) as work:
            data = await _gather(work)
            view = _render(work, data)
        await client.views_publish(user_id=work.actor.slack_user_id, view=view)
        if data.unread_shown_ids:
            async with deps_of(context).sessions.begin() as db:
                await home.mark_read(db=db, member=work.actor, notification_ids=data.unread_shown_ids, now=data.now)


async def republish_home(deps: Deps, client: AsyncWebClient, member: TeamMember) -> None:
    """Build the person's Home afresh and publish it, after a change of theirs has committed.

    In a reading transaction of its own, not in the change's: that one holds its campaign's lock (on
    SQLite, the one write lock) and should not also wait for the Home's queries. Best effort: the change
    is saved whatever happens here.
    """
    sessions = deps.reading_sessions or deps.sessions
    try:
        async with inflight.slot(deps.inflight), sessions.begin() as db:
            work = Work(db=db, actor=member, deps=deps)
            view = _render(work, await _gather(work))
        await client.views_publish(user_id=member.slack_user_id, view=view)
    except Exception:
        log.warning("could not re-publish the home of %s", member.slack_user_id, exc_info=True)


async def _gather(work: Work) -> home.HomeData:
    return await home.gather(db=work.db, member=work.actor, now=datetime.now(UTC))


def _render(work: Work, data: home.HomeData) -> dict[str, Any]:
    # The signed link where one can be made; the bare page (which will ask for a link) otherwise.
    url = signed_link(work.deps.settings) or work.deps.settings.public_url + DASHBOARD_PATH
    return home_view(data, dashboard_url=url)
