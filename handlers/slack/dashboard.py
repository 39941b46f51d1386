"""`/dashboard [CM-12]`: a read-only link to the dashboard, for every campaign or one, signed so it can't be
edited into another (see `services.links`). Only the person who asked sees it.

The signing key is DASHBOARD_SECRET, or, when that is unset, a key derived from SLACK_SIGNING_SECRET, so
links work on any install that talks to Slack over HTTP. Without either (Socket Mode with no signing
secret) the command says the dashboard is not configured.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from blocks.help import dashboard_help, dashboard_link, not_configured
from blocks.text import escape, fit_escaped
from handlers.links import secret_of
from handlers.slack.args import split_words, truncate_word
from handlers.slack.context import deps_of, unit_of_work
from handlers.slack.errors import replying_errors
from services import campaigns, links
from services.errors import InvalidInput
from services.refs import RefKind, parse_ref

NOT_CONFIGURED = "The dashboard is not configured yet: an admin sets DASHBOARD_SECRET (or SLACK_SIGNING_SECRET)."


def register(app: AsyncApp) -> None:
    app.command("/dashboard")(dashboard_command)


async def dashboard_command(
    ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    await ack()
    async with replying_errors(respond):
        words = split_words(command.get("text") or "")
        if words and words[0].lower() in ("help", "?"):
            await respond(**dashboard_help(), response_type="ephemeral")
            return
        if len(words) > 1:
            raise InvalidInput("Usage: `/dashboard` for every campaign, `/dashboard CM-12` for one.")
        settings = deps_of(context).settings
        secret = secret_of(settings)
        if secret is None:
            await respond(**not_configured(NOT_CONFIGURED), response_type="ephemeral")
            return
        if words and not _looks_like_ref(words[0]):
            note = f"`/dashboard {escape(truncate_word(words[0]))}` is not something I know."
            await respond(**dashboard_help(note), response_type="ephemeral")
            return
        async with unit_of_work(context, client) as work:
            if words:
                campaign = await campaigns.get_campaign(db=work.db, campaign_id=parse_ref(words[0], RefKind.CAMPAIGN))
                scope = links.campaign_scope(campaign.id)
                what = f"{campaigns.campaign_ref(campaign)} *{fit_escaped(campaign.name, 150)}*"
            else:
                scope, what = links.SCOPE_ALL, "every campaign"
        url = links.dashboard_url(settings.public_url, links.dashboard_token(secret, scope))
        await respond(**dashboard_link(url, what=what), response_type="ephemeral")


def _looks_like_ref(word: str) -> bool:
    """A campaign ref, or another kind of ref (parse_ref then says which kind it wants)."""
    return any(char.isdigit() for char in word)
