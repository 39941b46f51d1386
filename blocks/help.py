"""Usage text for the slash commands."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from blocks.text import (
    BUTTON_TEXT_LIMIT,
    MODAL_TITLE_LIMIT,
    context,
    escape,
    fit_escaped,
    header,
    message,
    plain,
    section,
)
from models import DashboardLink
from services import dashboard_links

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
    ("`/campaign asset add CM-12 https://… [kind] [title] [deliverable=T-12]`",
     "attach a link or file; `asset draft CM-12` writes an email draft in a form; `asset list|remove|tie` "
     "(`/campaign asset help`)"),
    ("`/campaign checks CM-12`", "the content checks on its assets: errors hold a sign-off stage, warnings go to the approvers"),
    ("`/campaign templates`", "the templates a campaign can start from"),
    ("`/dashboard` · `/dashboard CM-12`", "a read-only link to every campaign, or to one (`/dashboard help`)"),
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
    ("`/dashboard links`", "the links you made: number, what they open, until when"),
    ("`/dashboard revoke 12`", "end link 12 now (yours; admins can end any)"),
]
# The App Home's "Open dashboard" button, and the link button in the modal it opens. Slack tells the app
# about a click on a link button too, so that one has a listener that only acknowledges it.
HOME_OPEN_DASHBOARD = "home_open_dashboard"
DASHBOARD_LINK_OPENED = "dashboard_link_opened"
LINKS_SHOWN = 20
_STATE_WORDS = {"active": ":large_green_circle: active", "expired": ":white_circle: expired",
                "revoked": ":no_entry_sign: revoked"}


def dashboard_help(note: str | None = None) -> dict[str, Any]:
    """`note` is already escaped."""
    lines = "\n".join(f"{usage}: {what}" for usage, what in DASHBOARD_USAGE)
    blocks = [section(f":warning: {note}")] if note else []
    blocks += [header("Campaign Manager: /dashboard"), section(lines),
               context("Only you see the link. Anyone you give it to can read what it opens until it expires "
                       "or you revoke it.")]
    return message(note or "How to use /dashboard", blocks)


def when(moment: datetime) -> str:
    """A moment each reader sees in their own zone, with a UTC fallback."""
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{moment:%Y-%m-%d %H:%M} UTC>"


def dashboard_link(url: str, *, what: str, link_id: int, expires_at: datetime) -> dict[str, Any]:
    """`url` is ours (PUBLIC_URL and a signed token); `what` is escaped: "every campaign", "CM-3 Spring"."""
    link = f"<{escape(url)}|Open the dashboard>"
    return message(
        f"Read-only dashboard of {what}: {escape(url)}",
        [section(f":bar_chart: Read-only dashboard of {what}: {link}"),
         context(f"Link {link_id}, good until {when(expires_at)}. Only you see this; anyone with the link can "
                 f"read it without signing in, so share it with care. `/dashboard revoke {link_id}` ends it.")],
    )


def dashboard_link_view(url: str, *, what: str, link_id: int, expires_at: datetime) -> dict[str, Any]:
    """The modal the Home's button opens: a fresh link as a button. `what` is escaped."""
    button = {"type": "button", "text": plain("Open dashboard", BUTTON_TEXT_LIMIT), "url": url,
              "action_id": DASHBOARD_LINK_OPENED, "style": "primary"}
    return {
        "type": "modal", "title": plain("Dashboard", MODAL_TITLE_LIMIT), "close": plain("Close", MODAL_TITLE_LIMIT),
        "blocks": [
            section(f":bar_chart: A read-only link to the dashboard of {what}, good until {when(expires_at)}."),
            {"type": "actions", "elements": [button]},
            context(f"Link {link_id}. Anyone with it can read the dashboard without signing in: share it with care. "
                    f"`/dashboard links` lists your links; `/dashboard revoke {link_id}` ends this one."),
        ],
    }


def dashboard_links_list(rows: Sequence[DashboardLink], *, now: datetime) -> dict[str, Any]:
    """`/dashboard links`: the links someone made, still working or lately ended."""
    if not rows:
        text = "You have no dashboard links that work or ended this week. `/dashboard` makes one."
        return message(text, [section(text)])
    lines = [_link_line(link, now) for link in rows[:LINKS_SHOWN]]
    blocks = [header("Your dashboard links"), section("\n".join(lines)),
              context("`/dashboard revoke <number>` ends one now. Links that ended more than a week ago are "
                      "not shown.")]
    return message(f"Your dashboard links: {len(rows)}", blocks)


def _link_line(link: DashboardLink, now: datetime) -> str:
    state = dashboard_links.state_of(link, now)
    if state is dashboard_links.LinkState.REVOKED and link.revoked_at is not None:
        ends = f"revoked {when(link.revoked_at)}"
    elif state is dashboard_links.LinkState.EXPIRED:
        ends = f"expired {when(link.expires_at)}"
    else:
        ends = f"until {when(link.expires_at)}"
    opens = escape(dashboard_links.scope_words(link.scope))
    label = fit_escaped(link.label, 80)
    what = label if label.startswith(opens) else f"{opens} ({label})"  # "CM-3 Spring", "CM-3 (Weekly status…)"
    return f"*{link.id}* · {what} · {ends} · {_STATE_WORDS[state]}"


def link_revoked(link: DashboardLink, *, changed: bool) -> dict[str, Any]:
    opens = escape(dashboard_links.scope_words(link.scope))
    text = (f"Dashboard link {link.id} ({opens}) is revoked: it opens nothing any more." if changed
            else f"Dashboard link {link.id} ({opens}) was revoked already.")
    return message(text, [section(f":no_entry_sign: {text}")])


def not_configured(text: str) -> dict[str, Any]:
    """`text` is already escaped."""
    return message(text, [section(f":construction: {text}")])
