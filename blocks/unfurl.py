"""The card a dashboard link unfolds into when pasted in Slack (`chat.unfurl`): what it opens, at a glance."""

from __future__ import annotations

from typing import Any

from blocks.text import context, fit_escaped, section
from services.refs import RefKind, format_ref
from services.unfurls import CampaignCard, Card, WorkspaceCard

RISK_ICONS = {"on track": ":large_green_circle:", "at risk": ":large_yellow_circle:", "late": ":red_circle:"}
NAME_LIMIT = 120


def unfurls(cards: dict[str, Card]) -> dict[str, Any]:
    """`chat.unfurl`'s `unfurls` argument: the blocks of each URL's card."""
    return {url: {"blocks": card_blocks(card)} for url, card in cards.items()}


def card_blocks(card: Card) -> list[dict[str, Any]]:
    if isinstance(card, CampaignCard):
        return _campaign(card)
    return _workspace(card)


def _campaign(card: CampaignCard) -> list[dict[str, Any]]:
    ref = format_ref(RefKind.CAMPAIGN, card.ref_id)
    risk = f"{RISK_ICONS.get(card.risk, ':white_circle:')} {card.risk}" if card.risk else "no plan yet"
    launch = f"launch {card.launch_date:%a %d %b %Y}"
    if card.projected_launch is not None and card.projected_launch != card.launch_date:
        launch += f", projected {card.projected_launch:%a %d %b}"
    facts = [risk, launch, card.status]
    if card.progress_pct is not None:
        facts.append(f"{card.progress_pct:.0f}% done")
    if card.buffer_left_pct is not None:
        facts.append(f"{card.buffer_left_pct:.0f}% of the buffer left")
    return [section(f"*{ref} {fit_escaped(card.name, NAME_LIMIT)}*"), context(" · ".join(facts)),
            context("Read-only dashboard link · Campaign Manager")]


def _workspace(card: WorkspaceCard) -> list[dict[str, Any]]:
    facts = [f"{card.open_campaigns} open campaigns", f"{card.at_risk} at risk", f"{card.late} late",
             f"{card.open_tasks} open tasks"]
    lines = [section("*Campaign dashboard: every campaign*"), context(" · ".join(facts))]
    if card.next_launch is not None:
        name, day = card.next_launch
        lines.append(context(f"Next launch: {fit_escaped(name, NAME_LIMIT)} on {day:%a %d %b %Y}"))
    return lines
