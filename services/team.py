"""Team members: who they are, found or created on first contact."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Campaign, Task, TaskStatus, TeamMember, utcnow
from models.upsert import insert_ignore
from services import audit, authz
from services.errors import InvalidInput

ACTIVE_TASK_STATUSES = (TaskStatus.TODO, TaskStatus.IN_PROGRESS, TaskStatus.BLOCKED)


@dataclass(frozen=True)
class Profile:
    """What the chat platform tells us about a person; every field may be unknown."""

    name: str | None = None
    email: str | None = None
    timezone: str | None = None


# A Slack user id: `U` (or `W` on Enterprise Grid), then capitals and digits; the column holds 32.
SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,31}", re.ASCII)


def require_slack_user_id(slack_user_id: object) -> str:
    """The id itself, or InvalidInput: nobody becomes a member under an id Slack would never send."""
    if isinstance(slack_user_id, str) and SLACK_USER_ID.fullmatch(slack_user_id):
        return slack_user_id
    if not slack_user_id or not isinstance(slack_user_id, str):
        raise InvalidInput("I can't tell who sent this, so I did nothing. Try again from Slack.")
    raise InvalidInput(f"`{_shorten(slack_user_id)}` is not someone in this Slack workspace.")


async def ensure_member(
    *, db: AsyncSession, slack_user_id: str, profile: Profile | None = None
) -> TeamMember:
    """Return the member for a Slack user, creating them on first contact.

    `profile`: what Slack said about the person, looked up by the caller BEFORE the transaction began
    (a lookup inside it would hold the transaction, and on SQLite the one write lock, for a round trip).
    None when the caller knew the member or the lookup failed: a new member is then named by id so the
    person's request goes through, and the profile is filled in later. An id Slack would not send is
    refused (InvalidInput).
    """
    require_slack_user_id(slack_user_id)
    member = await find_member(db=db, slack_user_id=slack_user_id)
    if member is not None and member.profile_synced_at is not None:
        return member
    if member is None:
        # Two first requests from one person can race: the unique slack_user_id decides, no error.
        await insert_ignore(
            db, TeamMember, {"slack_user_id": slack_user_id, "name": slack_user_id}, conflict=["slack_user_id"]
        )
        member = await find_member(db=db, slack_user_id=slack_user_id)
        assert member is not None
    if profile is not None:
        apply_profile(member, profile)
    return member


def apply_profile(member: TeamMember, profile: Profile) -> None:
    member.name = (profile.name or member.name)[:200]
    member.email = profile.email or member.email
    if profile.timezone and valid_timezone(profile.timezone):
        member.timezone = profile.timezone
    member.profile_synced_at = utcnow()


async def known_ids(*, db: AsyncSession, slack_user_ids: Iterable[str]) -> set[str]:
    """Those of `slack_user_ids` for whom `ensure_member` would find the member and write nothing."""
    wanted = sorted(set(slack_user_ids))
    if not wanted:
        return set()
    return set(await db.scalars(select(TeamMember.slack_user_id).where(
        TeamMember.slack_user_id.in_(wanted), TeamMember.profile_synced_at.is_not(None))))


async def find_member(*, db: AsyncSession, slack_user_id: str) -> TeamMember | None:
    return await db.scalar(select(TeamMember).where(TeamMember.slack_user_id == slack_user_id))


# Spaces, dots, underscores and hyphens are how a name becomes a Slack handle: `Julia Weber` -> `julia.weber`.
_HANDLE_SEPARATORS = re.compile(r"[\s._-]+")
AMBIGUOUS_LISTED = 5  # people named in a "could be" answer; the rest are counted


def _handle(text: str) -> str:
    return _HANDLE_SEPARATORS.sub("", text.casefold())


async def find_members_by_name(*, db: AsyncSession, name: str) -> list[TeamMember]:
    """The active members a typed `@name` can mean, case-insensitively; several when it is ambiguous.

    The whole name (spelled with or without spaces and dots) or the Slack id wins over a first name, so
    `@julia.weber` is one person even when two Julias work here. The store keeps one name per member
    (Slack's real name, else its display name), so that is what a name is matched against.
    """
    wanted = name.strip().removeprefix("@").strip()
    if not _handle(wanted):
        return []
    # Compared in Python: SQLite's lower() only folds ASCII, and a team is small enough to read whole.
    members = (await db.scalars(select(TeamMember).where(TeamMember.is_active.is_(True))
                                .order_by(TeamMember.id))).all()
    whole = [m for m in members if _handle(wanted) in (_handle(m.name), m.slack_user_id.casefold())]
    if whole:
        return whole
    return [m for m in members if m.name.split() and m.name.split()[0].casefold() == wanted.casefold()]


def only_member(found: Sequence[TeamMember], *, typed: str) -> TeamMember:
    """The one member `find_members_by_name` found for `typed`; InvalidInput says why when it is not one."""
    shown = "@" + _shorten(typed.strip().removeprefix("@"))
    if not found:
        raise InvalidInput(f"I don't know {shown}; `/team list` shows who is here.")
    if len(found) > 1:
        listed = ", ".join(f"{_shorten(m.name)} (@{m.slack_user_id})" for m in found[:AMBIGUOUS_LISTED])
        more = f" and {len(found) - AMBIGUOUS_LISTED} more" if len(found) > AMBIGUOUS_LISTED else ""
        raise InvalidInput(f"{shown} could be {listed}{more}. Type the one you mean by id, "
                           f"like `@{found[0].slack_user_id}`.")
    return found[0]


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass
class MemberChanges:
    """What `/team add` or `/team me` asked to change; None leaves a field as it is."""

    role: str | None = None
    skills: list[str] | None = None
    timezone: str | None = None
    weekly_availability: dict[str, Any] | None = None
    max_concurrent_tasks: int | None = None
    out_of_office: tuple[date, date] | None = None
    clear_out_of_office: bool = False
    notify_via: str | None = None  # "slack" | "email" | "in_app"

    def is_empty(self) -> bool:
        return self == MemberChanges()

    def fields(self) -> set[str]:
        """The profile fields this asks to set (or clear)."""
        names = {name for name in ("role", "skills", "timezone", "weekly_availability", "max_concurrent_tasks",
                                   "notify_via") if getattr(self, name) is not None}
        return names | ({"out_of_office"} if self.out_of_office is not None or self.clear_out_of_office else set())


@dataclass(frozen=True)
class ProfileWrite:
    member: TeamMember
    changed: list[str]
    added: bool  # the person was not on the team before


async def write_profile(
    *, db: AsyncSession, actor: authz.Actor, slack_user_id: str, changes: MemberChanges, profile: Profile | None = None
) -> ProfileWrite:
    """`/team me` and `/team add`: the one way a profile is written, and who may write it.

    People set their own profile and admins anyone's; the owner of an open campaign may add someone who
    has not used the app yet, with skills only. Looking at someone already here (no changes) is anyone's.
    """
    require_slack_user_id(slack_user_id)
    existing = await find_member(db=db, slack_user_id=slack_user_id)
    if existing is None:
        owns = await owns_open_campaign(db=db, member=actor.member)
        authz.require(actor.is_admin or owns, "Only a campaign owner or an admin can add someone to the team; "
                                              "anyone else joins by using the app.")
        authz.require(authz.can_add_member(actor, owns_open_campaign=owns, fields=changes.fields()),
                      "Only an admin can set more than `skills=` for someone new; the rest of a profile is "
                      "theirs to set with `/team me`.")
    elif not changes.is_empty():
        authz.require(authz.can_edit_member(actor, existing), "Only an admin can change someone else's profile.")
    member = existing or await ensure_member(db=db, slack_user_id=slack_user_id, profile=profile)
    changed = apply_changes(db=db, member=member, changes=changes, actor=actor.member)
    return ProfileWrite(member=member, changed=changed, added=existing is None)


async def owns_open_campaign(*, db: AsyncSession, member: TeamMember) -> bool:
    from services.campaigns import FINAL_STATUSES  # services.campaigns imports this module

    found = await db.scalar(select(Campaign.id).where(Campaign.owner_id == member.id,
                                                      Campaign.status.not_in(FINAL_STATUSES)).limit(1))
    return found is not None


def apply_changes(*, db: AsyncSession, member: TeamMember, changes: MemberChanges, actor: TeamMember) -> list[str]:
    """Apply and audit the changes; returns the names of the fields that changed."""
    changed: dict[str, Any] = {}
    for field in ("role", "skills", "timezone", "weekly_availability", "max_concurrent_tasks", "notify_via"):
        value = getattr(changes, field)
        if value is not None and value != getattr(member, field):
            setattr(member, field, value)
            changed[field] = value
    if changes.clear_out_of_office or changes.out_of_office is not None:
        start, end = changes.out_of_office or (None, None)
        if (member.out_of_office_from, member.out_of_office_until) != (start, end):
            member.out_of_office_from, member.out_of_office_until = start, end
            changed["out_of_office"] = [start.isoformat(), end.isoformat()] if start and end else None
    if changed:
        audit.record(db=db, actor=actor.slack_user_id, action="member.updated", entity_type="member",
                     entity_id=member.id, **changed)
    return list(changed)


def muted_campaign_ids(stored: Iterable[Any] | None) -> frozenset[int]:
    """The campaign ids in a member's `muted_campaigns` JSON list (anything unreadable is ignored)."""
    return frozenset(int(x) for x in (stored or []) if str(x).isdigit())


def set_muted(*, db: AsyncSession, member: TeamMember, campaign_id: int, muted: bool) -> bool:
    """Mute or unmute a campaign's reminders for `member` (escalations still come); True if it changed."""
    current = muted_campaign_ids(member.muted_campaigns)
    if (campaign_id in current) == muted:
        return False
    # A new list, so the JSON column sees the change.
    member.muted_campaigns = sorted(current | {campaign_id} if muted else current - {campaign_id})
    audit.record(db=db, actor=member.slack_user_id, action="member.muted" if muted else "member.unmuted",
                 entity_type="campaign", entity_id=campaign_id)
    return True


@dataclass(frozen=True)
class MemberLoad:
    member: TeamMember
    active_tasks: int


async def list_members(*, db: AsyncSession) -> list[MemberLoad]:
    """Active members with how many open tasks each carries, by name."""
    open_tasks = (
        select(Task.assignee_id, func.count().label("open"))
        .where(Task.status.in_(ACTIVE_TASK_STATUSES), Task.assignee_id.is_not(None))
        .group_by(Task.assignee_id)
        .subquery()
    )
    rows = await db.execute(
        select(TeamMember, func.coalesce(open_tasks.c.open, 0))
        .outerjoin(open_tasks, open_tasks.c.assignee_id == TeamMember.id)
        .where(TeamMember.is_active.is_(True))
        .order_by(func.lower(TeamMember.name), TeamMember.id)
    )
    return [MemberLoad(member=member, active_tasks=int(count)) for member, count in rows.all()]
