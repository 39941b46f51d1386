"""Usage text for the slash commands."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from blocks.text import context, escape, header, message, section

CAMPAIGN_USAGE = [
    ('`/campaign new "Spring launch" product_launch 2027-03-01`', "create a campaign"),
    ("`/campaign list [open|all|<status>]`", "campaigns, soonest launch first"),
    ("`/campaign show CM-12`", "one campaign's plan: milestones, critical path, buffer, risk"),
    ("`/campaign assign CM-12`", "pick people for every unassigned task (owner or admin)"),
    ("`/campaign templates`", "the templates a campaign can start from"),
    ("`/campaign help`", "this message"),
]


def campaign_help(note: str | None = None, templates: Sequence[str] = ()) -> dict[str, Any]:
    """`note` is an already-escaped line explaining why help is shown (an unknown subcommand, say)."""
    lines = "\n".join(f"{usage}: {what}" for usage, what in CAMPAIGN_USAGE)
    if templates:
        lines += "\n*Templates:* " + ", ".join(f"`{escape(name)}`" for name in templates)
    blocks = []
    if note:
        blocks.append(section(f":warning: {note}"))
    blocks += [
        header("Campaign Manager: /campaign"),
        section(lines),
        context("Dates are YYYY-MM-DD. Quotes (straight or curly) keep a name with spaces together."),
    ]
    return message(note or "How to use /campaign", blocks)


def error_message(text: str) -> dict[str, Any]:
    """`text` is already escaped."""
    return message(text, [section(f":warning: {text}")])
