"""App Home: the person's overview, published afresh when they open the Home tab.

The listener only asks for it: a Kind.HOME_VIEW outbox row (`services.home_views`), which the delivery
job renders from the database and publishes with `views.publish`, like every message that leaves. So a
Slack hiccup delays a Home instead of losing it, and Homes asked for while one is on its way coalesce
into one more publish. Marked `opened`, the inbox it shows is marked read once Slack took the view.
A change made from the Home asks for its refresh in the change's own transaction (`Work.refresh_home`).
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from handlers.slack.context import unit_of_work
from handlers.slack.errors import replying_errors


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(home_opened)


async def home_opened(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
    if event.get("tab") != "home":  # the event also fires for the Messages tab
        return
    async with replying_errors(None):
        async with unit_of_work(context, client) as work:
            await work.refresh_home(opened=True)
