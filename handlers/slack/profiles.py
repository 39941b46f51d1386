"""People's profiles from Slack's `users.info`, looked up before a transaction opens.

A lookup is a network round trip: made inside a transaction it would hold the transaction's connection
and locks (on SQLite the one write lock) for as long as Slack takes. So the entry points ask first who
among the people a request names is new (`newcomers`), look those up with no transaction open, and
hand the profiles to `services.team.ensure_member`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from slack_sdk.web.async_client import AsyncWebClient

from handlers.deps import Deps
from services import team
from services.team import Profile

log = logging.getLogger(__name__)

# Members this process has seen with a profile. A member keeps their profile once it is filled in, so
# they need no lookup again; the set only spares the read that tells. Bounded: emptied when it is full.
KNOWN_LIMIT = 50_000


async def fetch_profile(client: AsyncWebClient, slack_user_id: str) -> Profile:
    response = await client.users_info(user=slack_user_id)
    user = response.get("user") or {}
    profile = user.get("profile") or {}
    name = profile.get("real_name") or profile.get("display_name") or user.get("real_name") or user.get("name")
    return Profile(name=name, email=profile.get("email"), timezone=user.get("tz"))


async def newcomers(deps: Deps, client: AsyncWebClient, slack_user_ids: Iterable[str]) -> dict[str, Profile | None]:
    """The people among `slack_user_ids` who are not members with a profile yet, each with what Slack
    says of them (None when it would not say: the member is then created by id and filled in later)."""
    # Only ids Slack could have sent: a forged one is refused by ensure_member, and is not worth a call.
    wanted = {uid for uid in slack_user_ids
              if uid not in deps.known_members and team.SLACK_USER_ID.fullmatch(uid or "")}
    if not wanted:
        return {}
    sessions = deps.reading_sessions or deps.sessions
    async with sessions.begin() as db:
        known = await team.known_ids(db=db, slack_user_ids=wanted)
    remember(deps, known)
    new = sorted(wanted - known)
    found = await asyncio.gather(*(lookup_quietly(client, uid) for uid in new))
    return dict(zip(new, found, strict=True))


def remember(deps: Deps, slack_user_ids: Iterable[str]) -> None:
    """Note members seen with a profile (after the transaction that gave it to them committed)."""
    if len(deps.known_members) >= KNOWN_LIMIT:
        deps.known_members.clear()
    deps.known_members.update(slack_user_ids)


async def lookup_quietly(client: AsyncWebClient, slack_user_id: str) -> Profile | None:
    try:
        return await fetch_profile(client, slack_user_id)
    except Exception:  # a profile is a nicety; never fail the person's request over it
        log.warning("profile lookup failed for %s", slack_user_id, exc_info=True)
        return None
