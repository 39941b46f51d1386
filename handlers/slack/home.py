"""App Home: the person's overview, published afresh when they open the Home tab.

The listener only asks for it: a Kind.HOME_VIEW outbox row (`services.home_views`), which the delivery
job renders from the database and publishes with `views.publish`, like every message that leaves. So a
Slack hiccup delays a Home instead of losing it, and Homes asked for while one is on its way coalesce
into one more publish. Marked `opened`, the inbox it shows is marked read once Slack took the view.
A change made from the Home asks for its refresh in the change's own transaction (`Work.refresh_home`).

The Home's "Open dashboard" button carries no link (delivery renders the Home and must not write one):
a click issues a fresh stored link for the person who clicked and shows it in a small modal.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from blocks.help import DASHBOARD_LINK_OPENED, HOME_OPEN_DASHBOARD, dashboard_link_view
from blocks.modals import notice_view
from handlers.links import secret_of
from handlers.slack.context import Work, deps_of, in_unit_of_work, unit_of_work
from handlers.slack.dashboard import NOT_CONFIGURED, IssuedUrl, issue_link
from handlers.slack.errors import Source, answering_errors, replying_errors


def register(app: AsyncApp) -> None:
    app.event("app_home_opened")(home_opened)
    app.action(HOME_OPEN_DASHBOARD)(open_dashboard_clicked)
    app.action(DASHBOARD_LINK_OPENED)(link_opened)


async def home_opened(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
    if event.get("tab") != "home":  # the event also fires for the Messages tab
        return
    async with replying_errors(None):
        async with unit_of_work(context, client) as work:
            await work.refresh_home(opened=True)


async def open_dashboard_clicked(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    """A fresh link to every campaign for whoever clicked, in a modal (the click's trigger_id lasts 3 s:
    issuing the link is one INSERT, well within it)."""
    await ack()
    source = Source.click(body, respond, client)
    async with answering_errors(source):
        secret = secret_of(deps_of(context).settings)
        if secret is None:
            await client.views_open(trigger_id=body["trigger_id"], view=notice_view(NOT_CONFIGURED))
            return

        async def run(work: Work) -> IssuedUrl:
            return await issue_link(work, secret)

        issued = await in_unit_of_work(context, client, run)
        view = dashboard_link_view(issued.url, what=issued.what, link_id=issued.link_id, expires_at=issued.expires_at)
        await client.views_open(trigger_id=body["trigger_id"], view=view)


async def link_opened(ack: AsyncAck) -> None:
    """A click on the modal's link button: the browser opens the link; Slack only wants to hear we got it."""
    await ack()
