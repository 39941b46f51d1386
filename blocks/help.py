"""Usage text for the slash commands."""

from __future__ import annotations

from typing import Any

from blocks.campaigns import template_lines
from blocks.text import context, header, message, section

CAMPAIGN_USAGE = [
    ('`/campaign new "Spring launch" product_launch 2027-03-01`', "create a campaign"),
    ("`/campaign list [open|all|<status>]`", "campaigns, soonest launch first"),
    ("`/campaign show CM-12`", "one campaign's details"),
    ("`/campaign help`", "this message"),
]


def campaign_help(note: str | None = None) -> dict[str, Any]:
    """`note` is an already-escaped line explaining why help is shown (an unknown subcommand, say)."""
    lines = "\n".join(f"{usage}: {what}" for usage, what in CAMPAIGN_USAGE)
    blocks = []
    if note:
        blocks.append(section(f":warning: {note}"))
    blocks += [
        header("Campaign Manager: /campaign"),
        section(lines),
        section(f"*Templates*\n{template_lines()}"),
        context("Dates are YYYY-MM-DD. Quotes (straight or curly) keep a name with spaces together."),
    ]
    return message(note or "How to use /campaign", blocks)


def error_message(text: str) -> dict[str, Any]:
    """`text` is already escaped."""
    return message(text, [section(f":warning: {text}")])
