"""Profiles over the API: `PATCH /team/me` as `/team me` in Slack, `PATCH /team/{slack_user_id}` as an
admin's `/team add @someone ...` on someone already here. The text formats (`mon-fri 9-17`, time zone
names, skills) are parsed by the same `services.availability` functions, and the one writer,
`services.team.write_profile`, decides who may: people themselves, and admins anyone.
"""

from __future__ import annotations

from handlers.web.api_v1 import schemas as s
from handlers.web.api_v1.errors import parsed
from handlers.web.api_v1.registry import Call, route
from handlers.web.api_v1.work import ApiWork, changing
from services import availability, team
from services.errors import NotFound
from services.fields import InvalidField


def _changes(update: s.ProfileUpdate) -> team.MemberChanges:
    """The request as `/team me` options would be; a value the Slack parser refuses names its field."""
    changes = team.MemberChanges()
    if update.skills is not None:
        changes.skills = parsed("skills", availability.parse_skills, ",".join(update.skills))
    if update.timezone is not None:
        changes.timezone = parsed("timezone", availability.parse_timezone, update.timezone)
    if update.weekly_hours is not None:
        changes.weekly_availability = parsed("weekly_hours", availability.parse_hours, update.weekly_hours)
    if update.capacity is not None:
        changes.max_concurrent_tasks = update.capacity
    if "out_of_office" in update.model_fields_set:
        away = update.out_of_office
        if away is not None and away.end < away.start:
            raise InvalidField("out_of_office", "The out-of-office range ends before it starts.")
        changes.out_of_office = (away.start, away.end) if away else None
        changes.clear_out_of_office = away is None
    return changes


async def _update(call: Call, slack_user_id: str | None) -> s.ProfileOut:
    update: s.ProfileUpdate = call.body
    changes = _changes(update)
    if changes.is_empty():
        raise InvalidField("body", "Say what to change: skills, timezone, weekly_hours, capacity or out_of_office.")

    async def body(work: ApiWork) -> s.ProfileOut:
        target = slack_user_id or work.member.slack_user_id
        # Someone not on the team is not made here (Slack's `/team add` asks Slack for their name first).
        if await team.find_member(db=work.db, slack_user_id=target) is None:
            raise NotFound(f"{target} is not on the team.")
        written = await team.write_profile(db=work.db, actor=work.actor, slack_user_id=target, changes=changes)
        await work.db.flush()
        loads = await team.list_members(db=work.db)
        open_tasks = next((load.active_tasks for load in loads if load.member.id == written.member.id), 0)
        return s.from_profile(written.member, open_tasks, written.changed)

    return await changing(call, body)


@route("PATCH", "/team/me", "Change your own profile: skills, time zone, weekly hours, capacity, out of office",
       response=s.ProfileOut, body=s.ProfileUpdate, scope="write", tag="team")
async def update_my_profile(call: Call) -> s.ProfileOut:
    return await _update(call, None)


@route("PATCH", "/team/{slack_user_id}", "Change a member's profile (admins; anyone their own)",
       response=s.ProfileOut, body=s.ProfileUpdate, scope="write", tag="team")
async def update_profile(call: Call) -> s.ProfileOut:
    return await _update(call, call.person)
