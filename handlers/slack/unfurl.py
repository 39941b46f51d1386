"""`link_shared`: dashboard links pasted in Slack unfold into a summary card.

Slack sends the event for links to the app's unfurl domain (manifest.yml). Only links to this server's
dashboard whose token still opens something are unfolded, and only through the outbox
(`services.unfurls`): the card is rendered and sent by the delivery job. A forged or revoked link is
silently left as a plain link: whoever pasted it hears nothing they could not see already.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from handlers.links import secret_of
from handlers.slack.context import Work, deps_of, in_unit_of_work
from handlers.slack.errors import replying_errors
from services import dashboard_links, unfurls
from services.dashboard_links import LinkRefused

DASHBOARD_PATH = "/dashboard/"
MAX_URL = 2000  # longer than any link we issue


def register(app: AsyncApp) -> None:
    app.event("link_shared")(link_shared)


async def link_shared(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
    secret = secret_of(deps_of(context).settings)
    prefix = deps_of(context).settings.public_url.rstrip("/") + DASHBOARD_PATH
    urls = [str(link.get("url") or "") for link in event.get("links") or [] if isinstance(link, dict)]
    tokens = {url: token for url in urls if (token := _token_in(url, prefix))}
    if secret is None or not tokens or not isinstance(event.get("channel"), str):
        return

    async def run(work: Work) -> None:
        now = datetime.now(UTC)
        found = []
        for url, token in tokens.items():
            try:
                checked = await dashboard_links.check(db=work.db, secret=secret, token=token, now=now)
            except LinkRefused:
                continue
            found.append((url, checked.link_id))
        request = unfurls.UnfurlRequest(channel=event["channel"], ts=_text(event.get("message_ts")),
                                        unfurl_id=_text(event.get("unfurl_id")), source=_text(event.get("source")),
                                        links=unfurls.shared_links(found))
        await unfurls.request(db=work.db, unfurl=request, now=now)

    async with replying_errors(None):
        await in_unit_of_work(context, client, run)


def _token_in(url: str, prefix: str) -> str | None:
    """The token of a link to this dashboard (`<public url>/dashboard/<token>[/...]`), else None."""
    if len(url) > MAX_URL or not url.startswith(prefix):
        return None
    token = url.removeprefix(prefix).split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return token or None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
