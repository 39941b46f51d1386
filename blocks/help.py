"""Usage text for the slash commands."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from blocks.text import context, escape, header, message, section

CAMPAIGN_USAGE = [
    ('`/campaign new "Spring launch" product_launch 2027-03-01`', "create a campaign"),
    ("`/campaign list [open|all|<status>]`", "campaigns, soonest launch first"),
    ("`/campaign show CM-12`", "one campaign's plan: milestones, critical path, buffer, risk"),
    ("`/campaign new`", "the same in a form: name, template, launch date, owner, channel"),
    ("`/campaign assign CM-12`", "pick people for every unassigned task (owner or admin)"),
    ("`/campaign launch|pause|resume|complete|cancel CM-12`",
     "move it along: planning → active ⇄ paused → completed, or cancelled (owner or admin)"),
    ("`/campaign channel CM-12 #spring-launch`", "where its news is posted (owner or admin)"),
    ("`/campaign mute CM-12` / `unmute CM-12`", "stop or restart its reminders for you (escalations still come)"),
    ("`/campaign escalation CM-12 [grace=1d contact=@dana …|reset]`",
     "when reminders go out and who hears about late work (anyone looks; owner or admin changes)"),
    ("`/campaign templates`", "the templates a campaign can start from"),
    ("`/dashboard` · `/dashboard CM-12`", "a read-only link to every campaign, or to one"),
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


DASHBOARD_USAGE = [
    ("`/dashboard`", "a read-only link to the dashboard of every campaign"),
    ("`/dashboard CM-12`", "a read-only link to one campaign's dashboard"),
]


def dashboard_help(note: str | None = None) -> dict[str, Any]:
    """`note` is already escaped."""
    lines = "\n".join(f"{usage}: {what}" for usage, what in DASHBOARD_USAGE)
    blocks = [section(f":warning: {note}")] if note else []
    blocks += [header("Campaign Manager: /dashboard"), section(lines),
               context("Only you see the link. Anyone you give it to can read what it opens.")]
    return message(note or "How to use /dashboard", blocks)


def dashboard_link(url: str, *, what: str) -> dict[str, Any]:
    """`url` is ours (PUBLIC_URL and a signed token); `what` is escaped: "every campaign", "CM-3 Spring"."""
    link = f"<{escape(url)}|Open the dashboard>"
    return message(
        f"Read-only dashboard of {what}: {escape(url)}",
        [section(f":bar_chart: Read-only dashboard of {what}: {link}"),
         context("Only you see this. Anyone with the link can read it without signing in, so share it with care.")],
    )


def not_configured(text: str) -> dict[str, Any]:
    """`text` is already escaped."""
    return message(text, [section(f":construction: {text}")])
