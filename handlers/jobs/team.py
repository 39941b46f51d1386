"""Team jobs: fill in a member's profile when the lookup at first contact failed."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from handlers.jobs.environment import JobEnvironment
from handlers.jobs.registry import job
from handlers.slack.profiles import fetch_profile
from models import TeamMember
from services import team

log = logging.getLogger(__name__)

# Errors that no retry will fix: the person is gone or the app may not read profiles.
PERMANENT_ERRORS = {"user_not_found", "account_inactive", "missing_scope", "not_authed", "invalid_auth"}


@job("team.refresh_profile", max_retries=6, min_backoff=30_000, max_backoff=3_600_000)
async def refresh_profile(env: JobEnvironment, *, member_id: int) -> None:
    resources = await env.resources()
    if resources.slack is None:
        log.info("no Slack token: profile of member %s stays as it is", member_id)
        return
    async with resources.sessions.begin() as db:  # who, read first: Slack is asked with no transaction open
        member = await db.get(TeamMember, member_id)
        slack_user_id = None if member is None or member.profile_synced_at is not None else member.slack_user_id
    if slack_user_id is None:
        return  # deleted meanwhile, or another contact already filled it in
    try:
        profile = await fetch_profile(resources.slack, slack_user_id)
    except SlackApiError as error:
        if error.response.get("error") in PERMANENT_ERRORS:
            log.warning("profile of %s cannot be read: %s", slack_user_id, error.response.get("error"))
            return
        raise  # Dramatiq retries with backoff
    async with resources.sessions.begin() as db:
        member = await db.get(TeamMember, member_id)
        if member is not None and member.profile_synced_at is None:
            team.apply_profile(member, profile)
