"""Read a person's profile from Slack's `users.info` into the domain's `Profile`."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from services.team import Profile


async def fetch_profile(client: AsyncWebClient, slack_user_id: str) -> Profile:
    response = await client.users_info(user=slack_user_id)
    user = response.get("user") or {}
    profile = user.get("profile") or {}
    name = profile.get("real_name") or profile.get("display_name") or user.get("real_name") or user.get("name")
    return Profile(name=name, email=profile.get("email"), timezone=user.get("tz"))
