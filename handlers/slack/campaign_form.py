"""`/campaign new` without arguments: a form (name, template, launch date, owner, channel) and its submit.

The form opens right after the ack: a trigger_id lives 3 seconds, and nothing is looked up first. On
submit the campaign and its plan are created before the ack, so a bad value is shown under its field;
the form then turns into the result. The same "created" message as the quick form goes to the chosen
channel (or, without one, to the requester) through the outbox: the service writes it with the campaign.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from blocks.campaigns import campaign_created as created_message
from blocks.modals import (
    CHANNEL,
    LAUNCH_DATE,
    NAME,
    OWNER,
    TEMPLATE,
    campaign_modal,
    done_view,
)
from blocks.text import channel_mention
from blocks.text import context as context_block
from handlers.deps import Deps
from handlers.slack.context import deps_of, unit_of_work
from handlers.slack.errors import errors_for
from handlers.slack.forms import Form
from services import campaign_created, campaigns, team
from services.errors import InvalidInput
from services.fields import InvalidField
from services.planning.templates import Template

FIELDS = {NAME, TEMPLATE, LAUNCH_DATE, OWNER, CHANNEL}


async def open_form(client: AsyncWebClient, command: dict[str, Any], deps: Deps) -> None:
    view = campaign_modal(list(deps.templates.templates.values()), requester=str(command.get("user_id") or ""))
    await client.views_open(trigger_id=command["trigger_id"], view=view)


async def submitted(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    form = Form(view)
    requester = str((body.get("user") or {}).get("id") or "")
    name, template_name, launch_date = form.text(NAME), form.option(TEMPLATE), form.day(LAUNCH_DATE)
    owner_id = form.user(OWNER) or requester
    channel = form.conversation(CHANNEL)
    channel = channel if channel and channel.startswith(("C", "G")) else None
    missing = {block: text for block, text in ((NAME, "Give the campaign a name." if not name.strip() else ""),
                                               (TEMPLATE, "Pick a template." if template_name is None else ""),
                                               (LAUNCH_DATE, "Pick the launch date." if launch_date is None else ""))
               if text}
    if missing:
        await ack(response_action="errors", errors=missing)
        return
    assert template_name is not None and launch_date is not None
    try:
        template = _template(context, template_name)
        async with unit_of_work(context, client, people=[owner_id] if owner_id else []) as work:
            owner = work.actor if owner_id == work.actor.slack_user_id else await team.ensure_member(
                db=work.db, slack_user_id=owner_id, profile=work.profile_of(owner_id))
            now = datetime.now(UTC)
            plan = await campaigns.create_campaign(
                db=work.db, name=name, template=template, launch_date=launch_date, owner=owner,
                now=now, holidays=work.holidays, channel_id=channel, created_by=work.actor, announce=True,
            )
            notice = campaign_created.notice(plan, template_title=template.title, requester=work.actor, now=now)
            created = created_message(notice.to_payload())  # what the outbox row will show
    except Exception as error:
        await ack(response_action="errors", errors=errors_for(error, fields=FIELDS, fallback=NAME))
        return
    where = channel_mention(channel) if channel else "your direct messages"
    await ack(response_action="update",
              view=done_view("Campaign created", [*created["blocks"], context_block(f"Also posted to {where}.")]))


def _template(context: AsyncBoltContext, name: str) -> Template:
    try:
        return deps_of(context).templates.resolve(name)
    except InvalidInput as error:
        raise InvalidField(TEMPLATE, str(error)) from None
