"""`/task`: my tasks; add (in a form), list, assign, start, finish, block, re-date, re-estimate and comment on tasks."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from blocks.assets import deliverable_prompt
from blocks.modals import TASK_MODAL
from blocks.tasks import comment_added, my_tasks, task_changed, task_help, task_list
from blocks.text import escape, fit_escaped
from handlers.slack import task_form
from handlers.slack.args import (
    mentioned_ids,
    parse_date,
    resolve_person,
    split_words,
    truncate_word,
    unescape_slack,
)
from handlers.slack.context import Work, in_unit_of_work, unit_of_work
from handlers.slack.errors import replying_errors
from models import Task
from services import campaigns, home, plans, staffing, tasks, team
from services.errors import InvalidInput
from services.planning.templates import parse_duration
from services.refs import RefKind, parse_ref

Reply = dict[str, Any]
# A subcommand: the reply to the actor. What others hear (the owner's plan alert, sign-off requests) the
# services write to the outbox with the change; the unit of work hands it out after the commit.
Action = Callable[[Work, list[str], AsyncWebClient], Awaitable[Reply]]


def register(app: AsyncApp) -> None:
    app.command("/task")(task_command)
    app.view(TASK_MODAL)(task_form.submitted)
    app.shortcut(task_form.SHORTCUT)(task_form.from_message)


async def task_command(
    ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    await ack()
    async with replying_errors(respond):
        raw = command.get("text") or ""
        first, rest = _first_word(raw)
        if first == "comment":  # free text: taken as typed, quotes and all, not split into words
            async with unit_of_work(context, client) as work:
                reply = await comment_on_task(work, rest)
            await respond(**reply, response_type="ephemeral")
            return
        if first == "new" and not rest.strip():
            await task_form.open_from_command(command, respond, context, client)  # the trigger_id lives 3 s
            return
        words = split_words(raw)
        subcommand = words[0].lower() if words else "help"
        action = SUBCOMMANDS.get(subcommand)
        if action is None:
            note = None if subcommand == "help" else f"`/task {escape(truncate_word(words[0]))}` is not a command I know."
            await respond(**task_help(note), response_type="ephemeral")
            return
        reply = await in_unit_of_work(context, client, lambda work: action(work, words[1:], client),
                                      reading=subcommand in READING, people=mentioned_ids(words[1:]))
        await respond(**reply, response_type="ephemeral")


def _first_word(text: str) -> tuple[str, str]:
    parts = re.split(r"\s+", text.strip(), maxsplit=1)
    return parts[0].lower(), parts[1] if len(parts) > 1 else ""


COMMENT_USAGE = "/task comment T-42 The copy is ready"


async def comment_on_task(work: Work, text: str) -> Reply:
    ref, body = (re.split(r"\s+", unescape_slack(text).strip(), maxsplit=1) + [""])[:2]
    if not ref:
        raise InvalidInput(f"Which task? Usage: `{COMMENT_USAGE}`")
    task = await tasks.get_task(db=work.db, task_id=parse_ref(ref, RefKind.TASK))
    comment = await tasks.add_comment(db=work.db, task=task, body=body, ctx=work.task_context())
    return comment_added(task, comment)


async def mine(work: Work, args: list[str], client: AsyncWebClient) -> Reply:
    groups = await home.my_tasks(db=work.db, member=work.actor, today=work.today)
    return my_tasks(groups, viewer_tz=work.actor.timezone, today=work.today)


async def new_with_words(work: Work, args: list[str], client: AsyncWebClient) -> Reply:
    raise InvalidInput("`/task new` opens a form: send it with nothing after it. "
                       "Or use the message shortcut *Create task from message*.")


async def _task(work: Work, args: list[str], usage: str) -> Task:
    if not args:
        raise InvalidInput(f"Which task? Usage: `{usage}`")
    return await tasks.get_task(db=work.db, task_id=parse_ref(args[0], RefKind.TASK))


def _changed(work: Work, task: Task, icon: str, what: str, plan: plans.PlanSummary | None) -> Reply:
    """The reply to the actor (`what` is mrkdwn, escaped by the caller), with the re-plan if there was one."""
    return task_changed(task, f"{icon} {what}", plan, viewer_tz=work.actor.timezone)


async def list_campaign_tasks(work: Work, args: list[str], client: AsyncWebClient) -> Reply:
    if len(args) != 1:
        raise InvalidInput("Which campaign? Usage: `/task list CM-12`")
    campaign = await campaigns.get_campaign(db=work.db, campaign_id=parse_ref(args[0], RefKind.CAMPAIGN))
    listed = await tasks.list_tasks(db=work.db, campaign=campaign)
    return task_list(campaign, listed, viewer_tz=work.actor.timezone)


async def start_task(work: Work, args: list[str], client: AsyncWebClient) -> Reply:
    task = await _task(work, args, "/task start T-42")
    await tasks.start(db=work.db, task=task, ctx=work.task_context())
    return _changed(work, task, ":arrow_forward:", f"Started {tasks.task_ref(task)}", None)


async def complete_task(work: Work, args: list[str], client: AsyncWebClient) -> Reply:
    """`/task done T-42 [anyway]`: a task that hands over an asset and has none asks first (`anyway` does not)."""
    task = await _task(work, args, "/task done T-42")
    anyway = any(word.lower() == "anyway" for word in args[1:])
    try:
        plan = await tasks.complete(db=work.db, task=task, ctx=work.task_context(), anyway=anyway)
    except tasks.DeliverableMissing as missing:  # nothing changed: the question, with a "Done anyway" button
        return deliverable_prompt(missing)
    return _changed(work, task, ":white_check_mark:", f"{tasks.task_ref(task)} is done", plan)


async def block_task(work: Work, args: list[str], client: AsyncWebClient) -> Reply:
    task = await _task(work, args, "/task block T-42 waiting for legal")
    plan = await tasks.block(db=work.db, task=task, reason=" ".join(args[1:]), ctx=work.task_context())
    return _changed(work, task, ":no_entry:", f"{tasks.task_ref(task)} is blocked", plan)


async def set_due(work: Work, args: list[str], client: AsyncWebClient) -> Reply:
    task = await _task(work, args, "/task due T-42 2027-03-01")
    if len(args) != 2:
        raise InvalidInput("Usage: `/task due T-42 2027-03-01`")
    plan = await tasks.set_due(db=work.db, task=task, due=parse_date(args[1]), ctx=work.task_context())
    return _changed(work, task, ":calendar:", f"{tasks.task_ref(task)} is now due {escape(args[1])}", plan)


async def estimate_task(work: Work, args: list[str], client: AsyncWebClient) -> Reply:
    task = await _task(work, args, "/task estimate T-42 3d")
    if len(args) != 2:
        raise InvalidInput("Usage: `/task estimate T-42 3d` (or `6h`, `1.5d`)")
    try:
        hours = parse_duration(args[1])
    except ValueError as error:
        raise InvalidInput(str(error)) from None
    plan = await tasks.reestimate(db=work.db, task=task, hours=hours, ctx=work.task_context())
    return _changed(work, task, ":hourglass:", f"{tasks.task_ref(task)} now takes {escape(args[1])}", plan)


async def assign_task(work: Work, args: list[str], client: AsyncWebClient) -> Reply:
    task = await _task(work, args, "/task assign T-42 @alice (or auto)")
    if len(args) != 2:
        raise InvalidInput("Usage: `/task assign T-42 @alice` or `/task assign T-42 auto`")
    if args[1].lower() == "auto":
        results = await staffing.auto_assign(db=work.db, campaign=task.campaign, tasks=[task],
                                             actor=work.authz_actor, now=datetime.now(UTC))
        if not results:  # auto_assign leaves out milestones and closed tasks
            why = "a milestone: it marks a moment and needs nobody" if task.is_milestone else (
                f"{task.status.value}; there is nothing left to assign")
            raise InvalidInput(f"{tasks.task_ref(task)} is {why}.")
        [(_, choice)] = results
        if choice.member_id is None:
            raise InvalidInput(f"{tasks.task_ref(task)} stays unassigned. {choice.explanation}")
        await work.db.refresh(task, ["assignee"])
        what = f"{tasks.task_ref(task)}: {escape(choice.explanation)}"
    else:
        slack_user_id = await resolve_person(args[1], db=work.db)
        member = await team.ensure_member(db=work.db, slack_user_id=slack_user_id,
                                          profile=work.profile_of(slack_user_id))
        await staffing.assign_to(db=work.db, task=task, member=member, actor=work.authz_actor)
        what = f"{tasks.task_ref(task)} is now {fit_escaped(member.name, 80)}'s"
    return _changed(work, task, ":bust_in_silhouette:", what, None)


READING = {"mine", "list"}  # change nothing: see context.unit_of_work(reading=)
SUBCOMMANDS: dict[str, Action] = {
    "mine": mine,
    "new": new_with_words,
    "list": list_campaign_tasks,
    "start": start_task,
    "done": complete_task,
    "finish": complete_task,
    "block": block_task,
    "due": set_due,
    "estimate": estimate_task,
    "assign": assign_task,
}
