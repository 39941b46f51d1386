"""App Home: publish a person's overview when they open the Home tab."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from blocks.home import home_view
from handlers.slack.context import unit_of_work
from handlers.slack.errors import replying_errors
from services import campaigns

HOME_CAMPAIGN_LIMIT = 15


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(home_opened)


async def home_opened(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
    if event.get("tab") != "home":  # the event also fires for the Messages tab
        return
    async with replying_errors(None):
        async with unit_of_work(context, client) as work:
            page = await campaigns.list_campaigns(db=work.db, owner=work.actor, limit=HOME_CAMPAIGN_LIMIT)
            view = home_view(work.actor, page.campaigns, owned_total=page.total, today=work.today)
        await client.views_publish(user_id=work.actor.slack_user_id, view=view)
