"""Adding a task in a form: `/task new` without arguments, and the message shortcut "Create task from message".

Both open the same form. The campaign list comes from one short read (the campaigns the person may add
to), so the form opens well inside the trigger_id's 3 seconds; the shortcut also asks Slack for the
message's permalink at the same time. On submit the task is created and the campaign re-planned before
the ack when that is quick, so a bad value (a loop between tasks, say) is shown under its field; when it
is not, the form says "Adding the task…" and shows the result later (`forms.answer_in_time`). The form's
view id makes a repeat (a retry, a second click) answer with the task the first submission added.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from blocks.codec import UnreadableValue, decode_campaign
from blocks.help import error_message
from blocks.modals import (
    ADDING_TASK,
    AFTER,
    ASSIGNEE,
    BEFORE,
    CAMPAIGN,
    DESCRIPTION,
    DUE,
    ESTIMATE,
    PRIORITY,
    TITLE,
    notice_view,
    task_added_view,
    task_modal,
)
from blocks.text import truncate
from handlers.slack.args import plain_message_text
from handlers.slack.context import Work, in_unit_of_work, unit_of_work
from handlers.slack.errors import form_refusal, replying_errors
from handlers.slack.forms import Answer, Form, answer_in_time
from models import Campaign, Priority, TeamMember
from services import tasks, team
from services.fields import InvalidField

log = logging.getLogger(__name__)

SHORTCUT = "create_task_from_message"
FIELDS = {CAMPAIGN, TITLE, DESCRIPTION, ESTIMATE, DUE, ASSIGNEE, PRIORITY, AFTER, BEFORE}
# What a submission's transaction hands to the steps after its commit: the task and the form's new view.
_Added = tuple[Work, tasks.CreatedTask, dict[str, Any]]
NO_CAMPAIGNS = ("There is no open campaign you can add tasks to: that takes owning one, or having a task in "
                "it. Start one with `/campaign new`.")


async def open_from_command(
    command: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    """`/task new`: the form, with the campaign of the channel it was typed in already chosen."""
    choices = await campaign_choices(context, client)
    if not choices:
        await respond(**error_message(NO_CAMPAIGNS), response_type="ephemeral")
        return
    await client.views_open(trigger_id=command["trigger_id"],
                            view=task_modal(choices, selected=campaign_of_channel(choices, command.get("channel_id"))))


async def from_message(
    ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    """The message shortcut: the form with the message's first line as title, the text and a link as description."""
    await ack()
    async with replying_errors(respond):
        found = await shortcut_source(body, context, client)
        if not found.choices:
            await client.views_open(trigger_id=body["trigger_id"], view=notice_view(NO_CAMPAIGNS))
            return
        text = plain_message_text(str(found.message.get("text") or "")).replace("\x00", "").strip()
        source = f"From {found.permalink}" if found.permalink else (
            f"From a message in #{found.channel.get('name') or found.channel_id} "
            f"(channel {found.channel_id}, message {found.ts})")
        view = task_modal(found.choices, selected=campaign_of_channel(found.choices, found.channel_id),
                          title=message_title(text), description=_description(text, source), from_message=True)
        await client.views_open(trigger_id=body["trigger_id"], view=view)


async def submitted(
    ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    form = Form(view)

    async def run(work: Work) -> _Added:
        new = tasks.NewTask(
            campaign_id=chosen_campaign_id(form.option(CAMPAIGN)), title=form.text(TITLE),
            description=form.text(DESCRIPTION), estimate=form.text(ESTIMATE), due=form.day(DUE),
            assignee=await _assignee(work, form.user(ASSIGNEE)),
            priority=_priority(form.option(PRIORITY)), after=form.text(AFTER), before=form.text(BEFORE),
        )
        created = await tasks.create_task(db=work.db, new=new, ctx=work.task_context(),
                                          submission_id=form.view_id)
        return work, created, task_added_view(created, viewer_tz=work.actor.timezone)

    def answer(added: _Added) -> Answer:
        shown = added[2]
        return Answer(ack={"response_action": "update", "view": shown}, view=shown)

    def refusal(error: Exception) -> dict[str, Any]:
        return form_refusal(error, fields=FIELDS, fallback=CAMPAIGN)

    assignee = form.user(ASSIGNEE)
    adding = in_unit_of_work(context, client, run, people=[assignee] if assignee else [])
    # Nothing to do after the commit: the owner's plan alert went into the outbox with the task.
    await answer_in_time(ack, client, form.view_id, adding, working=ADDING_TASK, answer=answer, refusal=refusal,
                         not_done="The task was not added:")


def message_title(text: str) -> str:
    """A task title from a message: its first line with words in it, cut to fit."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return truncate(" ".join(first.split()), tasks.MAX_TITLE)


def _description(text: str, source: str) -> str:
    room = tasks.MAX_DESCRIPTION - len(source) - 2
    return f"{truncate(text, room)}\n\n{source}" if text else source


async def campaign_choices(context: AsyncBoltContext, client: AsyncWebClient) -> list[Campaign]:
    async with unit_of_work(context, client) as work:
        return await tasks.campaigns_open_to(db=work.db, actor=work.authz_actor)


def campaign_of_channel(choices: list[Campaign], channel_id: object) -> int | None:
    return next((c.id for c in choices if channel_id and c.channel_id == channel_id), None)


@dataclass(frozen=True)
class ShortcutSource:
    """What a message shortcut acts on: the message, where it is, its link, and the campaigns to pick from."""

    message: dict[str, Any]
    channel: dict[str, Any]
    channel_id: str
    ts: str
    permalink: str | None
    choices: list[Any]


async def shortcut_source(body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> ShortcutSource:
    """The shortcut's message, and its permalink and the campaign choices asked of Slack side by side."""
    message, channel = body.get("message") or {}, body.get("channel") or {}
    channel_id = str(channel.get("id") or "")
    ts = str(message.get("ts") or body.get("message_ts") or "")
    permalink, choices = await asyncio.gather(message_permalink(client, channel_id, ts), campaign_choices(context, client))
    return ShortcutSource(message=message, channel=channel, channel_id=channel_id, ts=ts, permalink=permalink,
                          choices=list(choices))


async def message_permalink(client: AsyncWebClient, channel_id: str, ts: str) -> str | None:
    """The message's link; None when Slack won't say (a private channel the bot is not in, say)."""
    if not channel_id or not ts:
        return None
    try:
        response = await client.chat_getPermalink(channel=channel_id, message_ts=ts)
    except Exception:
        log.info("no permalink for %s/%s", channel_id, ts, exc_info=True)
        return None
    link = response.get("permalink")
    return link if isinstance(link, str) and link.startswith("https://") else None


def chosen_campaign_id(value: str | None) -> int:
    if not value:
        raise InvalidField(CAMPAIGN, "Pick a campaign.")
    try:
        return decode_campaign(value)
    except UnreadableValue:
        raise InvalidField(CAMPAIGN, "Pick a campaign.") from None


def _priority(value: str | None) -> Priority:
    try:
        return Priority(value or Priority.NORMAL.value)
    except ValueError:
        raise InvalidField(PRIORITY, "Pick a priority.") from None


async def _assignee(work: Work, slack_user_id: str | None) -> TeamMember | None:
    if not slack_user_id:
        return None
    if slack_user_id == work.actor.slack_user_id:
        return work.actor
    return await team.ensure_member(db=work.db, slack_user_id=slack_user_id, profile=work.profile_of(slack_user_id))


