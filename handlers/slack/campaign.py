"""`/campaign`: create (with a plan, typed or in a form), list, show, staff, move through its lifecycle, set its
channel, browse templates, and its assets and content checks (`/campaign asset …`, `/campaign checks`: in
`handlers.slack.assets`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from blocks.campaigns import campaign_created as created_message
from blocks.campaigns import (
    campaign_detail,
    campaign_list,
    channel_set,
    status_changed,
    templates_message,
)
from blocks.help import campaign_help
from blocks.modals import CAMPAIGN_MODAL
from blocks.tasks import assignment_results
from blocks.text import escape, fit_escaped, truncate
from handlers.slack import assets as asset_handlers
from handlers.slack import campaign_form
from handlers.slack.args import (
    looks_like_date,
    parse_channel,
    parse_date,
    parse_person,
    person_id,
    split_words,
)
from handlers.slack.campaign_policy import escalation
from handlers.slack.context import Work, deps_of, in_unit_of_work
from handlers.slack.errors import replying_errors
from models import Campaign, TeamMember
from services import approval_stages, assets, campaign_created, campaigns, email_events, plans, staffing, team
from services.errors import InvalidInput
from services.refs import RefKind, format_ref, parse_ref

Reply = dict[str, Any]
NEW_USAGE = 'Usage: `/campaign new "Spring launch" product_launch 2027-03-01 [owner=@dana]`'


def register(app: AsyncApp) -> None:
    app.command("/campaign")(campaign_command)
    app.view(CAMPAIGN_MODAL)(campaign_form.submitted)


async def campaign_command(
    ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    await ack()
    async with replying_errors(respond):
        words = split_words(command.get("text") or "")
        subcommand = words[0].lower() if words else "help"
        template_names = deps_of(context).templates.names()
        if subcommand in ("help", "?"):
            await respond(**campaign_help(templates=template_names), response_type="ephemeral")
            return
        if subcommand in ("new", "create") and len(words) == 1:
            await campaign_form.open_form(client, command, deps_of(context))  # the trigger_id lives 3 s
            return
        if subcommand == "asset" and len(words) > 1 and words[1].lower() == "draft":
            await asset_handlers.open_draft_form(words[2:], command, respond, context, client)  # a form, too
            return
        action = SUBCOMMANDS.get(subcommand)
        if action is None:
            note = f"`/campaign {escape(truncate(words[0], 40))}` is not a command I know."
            await respond(**campaign_help(note, templates=template_names), response_type="ephemeral")
            return
        reply = await in_unit_of_work(context, client, lambda work: action(work, words[1:], command),
                                      reading=subcommand in READING)
        await respond(**reply)


async def new_campaign(work: Work, args: list[str], command: dict[str, Any]) -> Reply:
    args, owner_word = _owner_option(args)
    owner_ref = parse_person(owner_word) if owner_word is not None else None  # refused before any lookup
    if len(args) < 3:
        raise InvalidInput(f"A new campaign needs a name, a template and a launch date. {NEW_USAGE}")
    *name_words, template_name, when = args
    if not looks_like_date(when) and any(looks_like_date(word) for word in args):
        raise InvalidInput(f"Put the launch date last. {NEW_USAGE}")
    launch_date = parse_date(when)
    template = work.deps.templates.resolve(template_name)
    owner = work.actor if owner_ref is None else await _owner(work, await person_id(owner_ref, db=work.db))
    channel_id = command.get("channel_id")
    now = datetime.now(UTC)
    plan = await campaigns.create_campaign(
        db=work.db,
        name=" ".join(name_words),
        template=template,
        launch_date=launch_date,
        owner=owner,
        now=now,
        holidays=work.holidays,
        channel_id=channel_id if channel_id and channel_id.startswith(("C", "G")) else None,
        created_by=work.actor,
    )
    # The reply is the announcement, in the channel it was typed in: no outbox row (`announce` left off).
    created = campaign_created.notice(plan, template_title=template.title, requester=work.actor, now=now)
    return {**created_message(created.to_payload()), "response_type": "in_channel"}


def _owner_option(args: list[str]) -> tuple[list[str], str | None]:
    """`owner=@dana` anywhere after `new`: the rest of the words, and the person typed (if any)."""
    owners = [word for word in args if word.lower().startswith("owner=")]
    if len(owners) > 1:
        raise InvalidInput("`owner=` is given twice.")
    rest = [word for word in args if not word.lower().startswith("owner=")]
    return rest, owners[0][len("owner="):] if owners else None


async def _owner(work: Work, slack_user_id: str) -> TeamMember:
    """The member named by `owner=`: someone already on the team (the form is the way to pick anyone else)."""
    if slack_user_id == work.actor.slack_user_id:
        return work.actor
    member = await team.find_member(db=work.db, slack_user_id=slack_user_id)
    if member is None or not member.is_active:
        raise InvalidInput(f"`owner=`: {slack_user_id} is not on the team yet. Add them with `/team add @them` "
                           "first.")
    return member


async def list_campaigns(work: Work, args: list[str], command: dict[str, Any]) -> Reply:
    label = args[0].lower() if args else "open"
    page = await campaigns.list_campaigns(db=work.db, statuses=campaigns.parse_status_filter(label))
    return {
        **campaign_list(page.campaigns, total=page.total, today=work.today, filter_label=escape(label)),
        "response_type": "ephemeral",
    }


async def show_campaign(work: Work, args: list[str], command: dict[str, Any]) -> Reply:
    campaign = await _one_campaign(work, args, "show")
    plan = await plans.load_plan(db=work.db, campaign=campaign)
    stages = approval_stages.stage_lines(await approval_stages.campaign_stages(
        work.db, campaign.id, stored=plan.timeline.approval_stages if plan is not None else []))
    change = await plans.last_change(db=work.db, campaign=campaign) if plan is not None else None
    email = (await email_events.results(db=work.db, campaign_ids=[campaign.id])).get(campaign.id)
    listed = await assets.list_assets(db=work.db, campaign=campaign)
    detail = campaign_detail(campaign, plan, stages=stages, template_title=_template_title(work, campaign.template),
                             today=work.today, viewer_tz=work.actor.timezone, change=change,
                             email=email.to_payload() if email is not None else None, assets=listed)
    return {**detail, "response_type": "ephemeral"}


async def assign_campaign(work: Work, args: list[str], command: dict[str, Any]) -> Reply:
    campaign = await _one_campaign(work, args, "assign")
    results = await staffing.assign_unstaffed(db=work.db, campaign=campaign, actor=work.authz_actor,
                                              now=datetime.now(UTC))
    return {**assignment_results(campaign, results), "response_type": "ephemeral"}


async def list_templates(work: Work, args: list[str], command: dict[str, Any]) -> Reply:
    library = work.deps.templates
    ordered = sorted(library.templates.values(), key=lambda template: template.typical_length_days())
    return {**templates_message(ordered), "response_type": "ephemeral"}


def _mover(move: campaigns.Move) -> Callable[[Work, list[str], dict[str, Any]], Awaitable[Reply]]:
    async def move_campaign(work: Work, args: list[str], command: dict[str, Any]) -> Reply:
        campaign = await _one_campaign(work, args, move.value)
        change = await campaigns.change_status(db=work.db, campaign=campaign, move=move, actor=work.authz_actor,
                                               hand_off_to_agent=work.deps.settings.marketing_agent_url is not None)
        return {**status_changed(change, actor=work.actor.slack_user_id), "response_type": "in_channel"}

    return move_campaign


async def set_channel(work: Work, args: list[str], command: dict[str, Any]) -> Reply:
    if len(args) != 2:
        raise InvalidInput("Which campaign and channel? Usage: `/campaign channel CM-12 #spring-launch` "
                           "(or `none` to forget it)")
    campaign = await campaigns.get_campaign(db=work.db, campaign_id=parse_ref(args[0], RefKind.CAMPAIGN))
    channel_id = None if args[1].lower() in ("none", "off") else parse_channel(args[1])
    await campaigns.set_channel(db=work.db, campaign=campaign, channel_id=channel_id, actor=work.authz_actor)
    return {**channel_set(campaign), "response_type": "ephemeral"}


def _muter(muted: bool) -> Callable[[Work, list[str], dict[str, Any]], Awaitable[Reply]]:
    """`/campaign mute CM-12` / `unmute`: only for the person asking; the sweep skips muted reminders."""
    verb = "mute" if muted else "unmute"

    async def mute_campaign(work: Work, args: list[str], command: dict[str, Any]) -> Reply:
        campaign = await _one_campaign(work, args, verb)
        changed = team.set_muted(db=work.db, member=work.actor, campaign_id=campaign.id, muted=muted)
        ref, name = format_ref(RefKind.CAMPAIGN, campaign.id), fit_escaped(campaign.name, 80)
        if muted:
            text = (f":mute: Muted reminders for {ref} *{name}*. Escalations of late work still reach you. "
                    f"`/campaign unmute {ref}` to hear them again.") if changed else \
                f"{ref} *{name}* was already muted for you."
        else:
            text = f":bell: You will get reminders for {ref} *{name}* again." if changed else \
                f"{ref} *{name}* was not muted for you."
        return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
                "response_type": "ephemeral"}

    return mute_campaign


async def _one_campaign(work: Work, args: list[str], verb: str) -> Campaign:
    if len(args) != 1:
        raise InvalidInput(f"Which campaign? Usage: `/campaign {verb} CM-12`")
    return await campaigns.get_campaign(db=work.db, campaign_id=parse_ref(args[0], RefKind.CAMPAIGN))


def _template_title(work: Work, name: str) -> str:
    template = work.deps.templates.templates.get(name)
    return template.title if template else name


READING = {"list", "ls", "show", "view", "templates", "checks"}  # change nothing: see context.unit_of_work(reading=)
SUBCOMMANDS: dict[str, Callable[[Work, list[str], dict[str, Any]], Awaitable[Reply]]] = {
    "new": new_campaign,
    "create": new_campaign,
    "list": list_campaigns,
    "ls": list_campaigns,
    "show": show_campaign,
    "view": show_campaign,
    "assign": assign_campaign,
    "templates": list_templates,
    "channel": set_channel,
    "mute": _muter(True),
    "unmute": _muter(False),
    "escalation": escalation,
    "policy": escalation,
    "asset": asset_handlers.asset_command,
    "assets": asset_handlers.asset_command,
    "checks": asset_handlers.checks_command,
    **{move.value: _mover(move) for move in campaigns.Move},
}
