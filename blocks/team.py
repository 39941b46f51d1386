"""Team messages: a member's card, the team list, /team help."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from blocks.text import context, escape, fit_escaped, header, message, section, user_mention
from models import TeamMember
from services.availability import describe_hours
from services.team import MemberLoad

TEAM_USAGE = [
    ("`/team list`", "everyone, their skills, hours and load"),
    ("`/team me`", "your profile"),
    ("`/team me skills=copywriting,email tz=Europe/Berlin hours=mon-fri 9-17 capacity=4`", "update yourself"),
    ("`/team me ooo=2027-01-04..2027-01-08` (or `ooo=off`)", "out of office"),
    ("`/team me notify=slack|email|in_app`", "how reminders reach you (in_app: only your Home tab)"),
    ("`/team add @alice skills=design,video`", "add a teammate: campaign owners with skills only, admins with "
                                               "anything (and admins may edit anyone)"),
]


def _out_of_office(member: TeamMember) -> str | None:
    if member.out_of_office_from and member.out_of_office_until:
        return f"out of office {member.out_of_office_from:%d %b} – {member.out_of_office_until:%d %b %Y}"
    return None


_NOTIFY_WORDS = {"slack": "reminders by Slack DM", "email": "reminders by email",
                 "in_app": "reminders in the Home tab only"}


def _notify(member: TeamMember) -> str:
    via = member.notify_via or "slack"
    words = _NOTIFY_WORDS.get(via, escape(via))
    if via == "email" and not (member.email and "@" in member.email):
        words += " (no email address known: Slack DM instead)"
    return words


def member_line(load: MemberLoad) -> str:
    member = load.member
    skills = ", ".join(escape(skill) for skill in member.skills) or "no skills set"
    parts = [
        f"*{fit_escaped(member.name, 80)}* {user_mention(member.slack_user_id)}",
        escape(member.role) if member.role else None,
        skills,
        f"{load.active_tasks} of {member.max_concurrent_tasks} slots busy",
        f"{describe_hours(member.weekly_availability)} {escape(member.timezone)}",
        _out_of_office(member),
        _notify(member),
    ]
    return " · ".join(part for part in parts if part)


def member_card(load: MemberLoad, *, note: str | None = None) -> dict[str, Any]:
    blocks = []
    if note:
        blocks.append(section(note))
    blocks.append(section(member_line(load)))
    blocks.append(context("Change it with `/team me skills=… tz=… hours=… capacity=… ooo=… notify=slack|email|in_app`."))
    return message(note or f"Profile of {fit_escaped(load.member.name, 80)}", blocks)


def team_list(loads: Sequence[MemberLoad]) -> dict[str, Any]:
    if not loads:
        return message("No team members yet.", [section("No team members yet. Add one with `/team add @alice`.")])
    shown = loads[:45]
    blocks = [header(f"Team: {len(loads)} people")] + [section(member_line(load)) for load in shown]
    if len(loads) > len(shown):
        blocks.append(context(f"…and {len(loads) - len(shown)} more."))
    return message(f"Team: {len(loads)} people", blocks)


def team_help(note: str | None = None) -> dict[str, Any]:
    lines = "\n".join(f"{usage}: {what}" for usage, what in TEAM_USAGE)
    blocks = [section(f":warning: {note}")] if note else []
    blocks += [header("Campaign Manager: /team"), section(lines),
               context("Hours are in your own time zone. Skills match the skills tasks ask for.")]
    return message(note or "How to use /team", blocks)
