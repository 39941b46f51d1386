"""Campaign messages: created, list, details, templates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from blocks.text import (
    channel_mention,
    context,
    divider,
    escape,
    fit_escaped,
    header,
    message,
    section,
    user_mention,
)
from models import Campaign, CampaignStatus
from services.campaigns import campaign_ref
from services.templates import CATALOGUE

STATUS_BADGES = {
    CampaignStatus.PLANNING: ":spiral_note_pad: planning",
    CampaignStatus.ACTIVE: ":large_green_circle: active",
    CampaignStatus.PAUSED: ":double_vertical_bar: paused",
    CampaignStatus.COMPLETED: ":white_check_mark: completed",
    CampaignStatus.CANCELLED: ":x: cancelled",
}


def _name(campaign: Campaign, limit: int = 200) -> str:
    return fit_escaped(campaign.name, limit)


def launch_phrase(campaign: Campaign, today: date) -> str:
    days = (campaign.launch_date - today).days
    when = "today" if days == 0 else f"in {days} days" if days > 0 else f"{-days} days ago"
    return f"{campaign.launch_date:%a %d %b %Y} ({when})"


def campaign_created(campaign: Campaign, *, today: date) -> dict[str, Any]:
    ref = campaign_ref(campaign)
    title = f"{ref} created: *{_name(campaign)}*"
    blocks = [
        section(
            f":rocket: {title}",
            fields=[
                f"*Template*\n{CATALOGUE[campaign.template].title if campaign.template in CATALOGUE else escape(campaign.template)}",
                f"*Launch*\n{launch_phrase(campaign, today)}",
                f"*Owner*\n{user_mention(campaign.owner.slack_user_id)}",
                f"*Status*\n{STATUS_BADGES[campaign.status]}",
            ],
        ),
        context(f"See it any time with `/campaign show {ref}`."),
    ]
    return message(f"{ref} created: {_name(campaign)}", blocks)


def campaign_list(campaigns: Sequence[Campaign], *, total: int, today: date, filter_label: str) -> dict[str, Any]:
    if not campaigns:
        return message(
            f"No {filter_label} campaigns.",
            [section(f"No {filter_label} campaigns yet. Start one with `/campaign new \"Name\" product_launch 2027-03-01`.")],
        )
    blocks: list[dict[str, Any]] = [header(f"Campaigns ({filter_label}): {total}")]
    for campaign in campaigns:
        blocks.append(
            section(
                f"*{campaign_ref(campaign)}*  {_name(campaign, 150)}\n"
                f"{STATUS_BADGES[campaign.status]} · launches {launch_phrase(campaign, today)} · "
                f"owner {user_mention(campaign.owner.slack_user_id)}"
            )
        )
    if total > len(campaigns):
        blocks.append(context(f"Showing the first {len(campaigns)} of {total}, soonest launch first."))
    return message(f"{total} {filter_label} campaigns", blocks)


def campaign_detail(campaign: Campaign, *, today: date) -> dict[str, Any]:
    ref = campaign_ref(campaign)
    template = CATALOGUE.get(campaign.template)
    fields = [
        f"*Status*\n{STATUS_BADGES[campaign.status]}",
        f"*Launch*\n{launch_phrase(campaign, today)}",
        f"*Owner*\n{user_mention(campaign.owner.slack_user_id)}",
        f"*Template*\n{template.title if template else escape(campaign.template)}",
    ]
    if campaign.channel_id:
        fields.append(f"*Channel*\n{channel_mention(campaign.channel_id)}")
    blocks = [header(f"{ref} · {campaign.name}"), section(f"*{_name(campaign)}*", fields=fields)]
    if campaign.description:
        blocks.append(section(fit_escaped(campaign.description, 2900)))
    blocks += [divider(), context(f"Created {campaign.created_at:%d %b %Y}. Ref `{ref}`.")]
    return message(f"{ref}: {_name(campaign)}", blocks)


def template_lines() -> str:
    return "\n".join(f"• `{info.name}`: {info.description}" for info in CATALOGUE.values())
