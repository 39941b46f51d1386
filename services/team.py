"""Team members: who they are, found or created on first contact."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import TeamMember, utcnow
from models.upsert import insert_ignore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Profile:
    """What the chat platform tells us about a person; every field may be unknown."""

    name: str | None = None
    email: str | None = None
    timezone: str | None = None


ProfileFetcher = Callable[[str], Awaitable[Profile | None]]


async def ensure_member(*, db: AsyncSession, slack_user_id: str, fetch_profile: ProfileFetcher) -> TeamMember:
    """Return the member for a Slack user, creating them from their profile on first contact.

    A profile lookup that fails still creates the member (named by id) so the person's request goes
    through; the next contact fills the profile in.
    """
    member = await find_member(db=db, slack_user_id=slack_user_id)
    if member is not None and member.profile_synced_at is not None:
        return member
    profile = await _fetch_quietly(fetch_profile, slack_user_id)
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


async def find_member(*, db: AsyncSession, slack_user_id: str) -> TeamMember | None:
    return await db.scalar(select(TeamMember).where(TeamMember.slack_user_id == slack_user_id))


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


async def _fetch_quietly(fetch_profile: ProfileFetcher, slack_user_id: str) -> Profile | None:
    try:
        return await fetch_profile(slack_user_id)
    except Exception:  # a profile is a nicety; never fail the person's request over it
        log.warning("profile lookup failed for %s", slack_user_id, exc_info=True)
        return None
