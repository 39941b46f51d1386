"""The App Home tab: a person's own overview."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from blocks.campaigns import STATUS_BADGES, launch_phrase
from blocks.help import CAMPAIGN_USAGE
from blocks.text import context, divider, fit_escaped, header, section
from models import Campaign, TeamMember
from services.campaigns import campaign_ref

HOME_BLOCK_LIMIT = 100


def home_view(member: TeamMember, owned: Sequence[Campaign], *, owned_total: int, today: date) -> dict[str, Any]:
    # Until the profile arrives the stored name is the Slack id, no way to greet anyone.
    first_name = member.name.split()[0] if member.profile_synced_at and member.name.strip() else "there"
    blocks: list[dict[str, Any]] = [
        header(f"Hi {first_name}, here is your campaign overview"),
        section("*Campaigns you own*"),
    ]
    if not owned:
        blocks.append(section("None yet. Start one with `/campaign new \"Spring launch\" product_launch 2027-03-01`."))
    for campaign in owned:
        blocks.append(
            section(
                f"*{campaign_ref(campaign)}*  {fit_escaped(campaign.name, 150)}\n"
                f"{STATUS_BADGES[campaign.status]} · launches {launch_phrase(campaign, today)}"
            )
        )
    if owned_total > len(owned):
        blocks.append(context(f"{owned_total - len(owned)} more: `/campaign list all`."))
    blocks += [divider(), section("*Commands*\n" + "\n".join(f"{usage}: {what}" for usage, what in CAMPAIGN_USAGE))]
    return {"type": "home", "blocks": blocks[:HOME_BLOCK_LIMIT]}
