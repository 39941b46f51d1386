"""`/team`: who is on the team, their skills, hours, capacity and time off."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from blocks.team import member_card, team_help, team_list
from blocks.text import escape, fit_escaped
from handlers.slack.args import parse_options, parse_person, resolve_person, split_words, truncate_word
from handlers.slack.context import Work, unit_of_work
from handlers.slack.errors import replying_errors
from services import team
from services.availability import (
    parse_capacity,
    parse_hours,
    parse_notify_via,
    parse_out_of_office,
    parse_skills,
    parse_timezone,
)
from services.errors import InvalidInput

OPTIONS = ("role", "skills", "tz", "hours", "capacity", "ooo", "notify")


def register(app: AsyncApp) -> None:
    app.command("/team")(team_command)


async def team_command(
    ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    await ack()
    async with replying_errors(respond):
        words = split_words(command.get("text") or "")
        subcommand = words[0].lower() if words else "help"
        if subcommand not in ("list", "me", "add"):
            note = None if subcommand == "help" else f"`/team {escape(truncate_word(words[0]))}` is not a command I know."
            await respond(**team_help(note), response_type="ephemeral")
            return
        # Someone `/team add` names who is new gets their profile from Slack before the transaction opens.
        typed = _typed_id(words[1:]) if subcommand == "add" else None
        async with unit_of_work(context, client, reading=subcommand == "list", people=[typed] if typed else []) as work:
            if subcommand == "list":
                reply = team_list(await team.list_members(db=work.db))
            elif subcommand == "me":
                reply = await _update(work, work.actor.slack_user_id, words[1:])
            else:
                reply = await _add(work, words[1:])
        await respond(**reply, response_type="ephemeral")


def _typed_id(args: list[str]) -> str | None:
    """The Slack id `/team add` names when it is a mention (a name is someone here already)."""
    return parse_person(args[0]).slack_user_id if args else None


async def _add(work: Work, args: list[str]) -> dict[str, Any]:
    if not args:
        raise InvalidInput("Who? Usage: `/team add @alice skills=design,video`")
    slack_user_id = await resolve_person(args[0], db=work.db)
    return await _update(work, slack_user_id, args[1:])


async def _update(work: Work, slack_user_id: str, args: list[str]) -> dict[str, Any]:
    written = await team.write_profile(
        db=work.db, actor=work.authz_actor, slack_user_id=slack_user_id, changes=parse_changes(args),
        profile=work.profile_of(slack_user_id),
    )
    await work.db.flush()
    member = written.member
    load = next(load for load in await team.list_members(db=work.db) if load.member.id == member.id)
    name = fit_escaped(member.name, 80)
    if written.added:
        note = f":wave: {name} is on the team."
    elif written.changed:
        note = f":white_check_mark: Updated {', '.join(field.replace('_', ' ') for field in written.changed)}."
    else:
        note = None
    return member_card(load, note=note)


def parse_changes(args: list[str]) -> team.MemberChanges:
    options = parse_options(args, OPTIONS)
    changes = team.MemberChanges()
    if "role" in options:
        role = " ".join(options["role"].split())
        if not role or len(role) > 64:
            raise InvalidInput("A role is 1 to 64 characters, like `designer`.")
        changes.role = role
    if "skills" in options:
        changes.skills = parse_skills(options["skills"])
    if "tz" in options:
        changes.timezone = parse_timezone(options["tz"])
    if "hours" in options:
        changes.weekly_availability = parse_hours(options["hours"])
    if "capacity" in options:
        changes.max_concurrent_tasks = parse_capacity(options["capacity"])
    if "ooo" in options:
        changes.out_of_office = parse_out_of_office(options["ooo"])
        changes.clear_out_of_office = changes.out_of_office is None
    if "notify" in options:
        changes.notify_via = parse_notify_via(options["notify"])
    return changes
