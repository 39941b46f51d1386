"""`/campaign`: create, list and show campaigns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from blocks.campaigns import campaign_created, campaign_detail, campaign_list
from blocks.help import campaign_help
from blocks.text import escape, truncate
from handlers.slack.args import looks_like_date, parse_date, split_words
from handlers.slack.context import Work, unit_of_work
from handlers.slack.errors import replying_errors
from services import campaigns
from services.errors import InvalidInput
from services.refs import RefKind, parse_ref

Reply = dict[str, Any]
NEW_USAGE = 'Usage: `/campaign new "Spring launch" product_launch 2027-03-01`'


def register(app: AsyncApp) -> None:
    app.command("/campaign")(campaign_command)


async def campaign_command(
    ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    await ack()
    async with replying_errors(respond):
        words = split_words(command.get("text") or "")
        subcommand = words[0].lower() if words else "help"
        if subcommand in ("help", "?"):
            await respond(**campaign_help(), response_type="ephemeral")
            return
        action = SUBCOMMANDS.get(subcommand)
        if action is None:
            note = f"`/campaign {escape(truncate(words[0], 40))}` is not a command I know."
            await respond(**campaign_help(note), response_type="ephemeral")
            return
        async with unit_of_work(context, client) as work:
            reply = await action(work, words[1:], command)
        await respond(**reply)


async def new_campaign(work: Work, args: list[str], command: dict[str, Any]) -> Reply:
    if len(args) < 3:
        raise InvalidInput(f"A new campaign needs a name, a template and a launch date. {NEW_USAGE}")
    *name_words, template, when = args
    if not looks_like_date(when) and any(looks_like_date(word) for word in args):
        raise InvalidInput(f"Put the launch date last. {NEW_USAGE}")
    launch_date = parse_date(when)
    channel_id = command.get("channel_id")
    campaign = await campaigns.create_campaign(
        db=work.db,
        name=" ".join(name_words),
        template=template,
        launch_date=launch_date,
        owner=work.actor,
        today=work.today,
        channel_id=channel_id if channel_id and channel_id.startswith(("C", "G")) else None,
    )
    return {**campaign_created(campaign, today=work.today), "response_type": "in_channel"}


async def list_campaigns(work: Work, args: list[str], command: dict[str, Any]) -> Reply:
    label = args[0].lower() if args else "open"
    page = await campaigns.list_campaigns(db=work.db, statuses=campaigns.parse_status_filter(label))
    return {
        **campaign_list(page.campaigns, total=page.total, today=work.today, filter_label=escape(label)),
        "response_type": "ephemeral",
    }


async def show_campaign(work: Work, args: list[str], command: dict[str, Any]) -> Reply:
    if len(args) != 1:
        raise InvalidInput("Which campaign? Usage: `/campaign show CM-12`")
    campaign = await campaigns.get_campaign(db=work.db, campaign_id=parse_ref(args[0], RefKind.CAMPAIGN))
    return {**campaign_detail(campaign, today=work.today), "response_type": "ephemeral"}


SUBCOMMANDS: dict[str, Callable[[Work, list[str], dict[str, Any]], Awaitable[Reply]]] = {
    "new": new_campaign,
    "create": new_campaign,
    "list": list_campaigns,
    "ls": list_campaigns,
    "show": show_campaign,
    "view": show_campaign,
}
