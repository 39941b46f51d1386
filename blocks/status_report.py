"""The weekly campaign status post, rendered at delivery from the payload `services.status_reports` wrote.

The same message goes to a campaign channel or to the owner's DM, so dates are Slack `<!date^...>`
tokens (each reader sees their own zone). Names and titles are typed by people: escaped and cut here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from blocks.campaigns import RISK_BADGES, STATUS_BADGES, email_results_line
from blocks.text import context, escape, fit_escaped, message, section, user_mention

Payload = Mapping[str, Any]
TASKS_SHOWN, APPROVALS_SHOWN = 5, 3  # what the service sends at most; a longer list is cut here too
_STATUS = {str(status): badge for status, badge in STATUS_BADGES.items()}  # payloads hold the plain value


def _n(payload: Payload, key: str) -> int:
    try:
        return int(payload.get(key) or 0)
    except (TypeError, ValueError):
        return 0


def _day(iso: Any) -> str:
    """`Mon, March 15th` in the reader's zone; the ISO text as the fallback Slack shows when it cannot."""
    text = str(iso or "")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return escape(text) or "no date"
    if moment.tzinfo is None:  # a calendar day (the launch): no zone to convert, show it as it is
        return f"{moment.date():%a %d %b %Y}"
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}}|{escape(text[:10])}>"


def _plural(count: float, word: str) -> str:
    return f"{count:g} {word}" if count == 1 else f"{count:g} {word}s"


def _f(payload: Payload, key: str) -> float:
    try:
        return float(payload.get(key) or 0)
    except (TypeError, ValueError):
        return 0.0


def _s(entry: Mapping[str, Any], key: str) -> str:
    return str(entry.get(key) or "")


def _more(lines: list[str], total: int) -> str:
    return "\n".join([*lines, f"…and {total - len(lines)} more"] if total > len(lines) else lines)


def _task_lines(entries: Any, total: int) -> str:
    lines = []
    for entry in list(entries or [])[:TASKS_SHOWN]:
        flag = ":triangular_flag_on_post: " if entry.get("milestone") else ""
        who = user_mention(_s(entry, "assignee")) if entry.get("assignee") else "_unassigned_"
        lines.append(f"• {flag}*{escape(_s(entry, 'task'))}* {fit_escaped(_s(entry, 'title'), 120)} · {who}"
                     f" · due {_day(entry.get('due'))}")
    return _more(lines, total)


def _approval_lines(entries: Any, total: int) -> str:
    lines = []
    for entry in list(entries or [])[:APPROVALS_SHOWN]:
        deadline = f" · deadline {_day(entry['deadline'])}" if entry.get("deadline") else ""
        lines.append(f"• *{fit_escaped(_s(entry, 'stage'), 100)}* ({escape(_s(entry, 'approval'))})"
                     f" · {user_mention(_s(entry, 'approver'))} · asked {_day(entry.get('requested'))}{deadline}")
    return _more(lines, total)


def _timeline_link(payload: Payload) -> str:
    """The read-only timeline link the service put in (posts written before it did have none)."""
    url = payload.get("timeline_url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")) or len(url) > 1000:
        return ""
    until = f", until {_day(payload.get('timeline_expires'))}" if payload.get("timeline_expires") else ""
    # A link, not a URL button: a button would send the app a click to acknowledge from every reader.
    return f":chart_with_upwards_trend: <{escape(url)}|Timeline>: the plan as a Gantt chart, read-only{until}"


def campaign_status(payload: Payload) -> dict[str, Any]:
    ref, risk, status = escape(_s(payload, "campaign")), _s(payload, "risk"), _s(payload, "status")
    launch = f"Launch {_day(payload.get('launch_date'))}"
    if payload.get("projected_launch") and payload.get("projected_launch") != payload.get("launch_date"):
        launch += f", projected {_day(payload.get('projected_launch'))}"
    done, total, recent = _n(payload, "tasks_done"), _n(payload, "tasks_total"), _n(payload, "done_last_7_days")
    overdue, soon = _n(payload, "overdue_count"), _n(payload, "due_soon_count")
    approvals = _n(payload, "approvals_waiting")
    fields = [
        f"*Progress*\n{done} of {_plural(total, 'task')} done ({_n(payload, 'tasks_done_pct')}%) · "
        f"{_f(payload, 'progress_pct'):.0f}% of the work",
        f"*Buffer left*\n{_f(payload, 'buffer_left_days'):g} of {_plural(_f(payload, 'buffer_days'), 'day')} "
        f"({_f(payload, 'buffer_left_pct'):.0f}%)",
        f"*Done in the last 7 days*\n{_plural(recent, 'task')}",
        f"*Approvals waiting*\n{approvals}",
    ]
    headline = (f":bar_chart: *Weekly status: {ref} {fit_escaped(_s(payload, 'campaign_name'), 120)}*\n"
                f"{RISK_BADGES.get(risk, escape(risk))} · {_STATUS.get(status, escape(status))} · {launch}")
    blocks: list[dict[str, Any]] = [section(headline, fields=fields)]
    if overdue:
        blocks.append(section(f"*Overdue ({overdue})*\n{_task_lines(payload.get('overdue'), overdue)}"))
    if soon:
        blocks.append(section(f"*Due in the next 7 days ({soon})*\n{_task_lines(payload.get('due_soon'), soon)}"))
    if approvals:
        waiting = _approval_lines(payload.get("oldest_approvals"), approvals)
        blocks.append(section(f"*Waiting for a decision ({approvals})*\n{waiting}"))
    if not (overdue or soon or approvals):
        blocks.append(section("Nothing overdue, nothing due in the next 7 days, no decision waiting."))
    email = payload.get("email")
    if isinstance(email, Mapping):  # Mailjet's results, once it has reported on the campaign's emails
        blocks.append(section(email_results_line(email)))
    timeline = _timeline_link(payload)
    if timeline:
        blocks.append(section(timeline))
    blocks.append(context(f"Every Monday at 09:00 (the owner's time). Details: `/campaign show {ref}`."))
    text = (f"Weekly status {ref} {fit_escaped(_s(payload, 'campaign_name'), 80)}: {escape(risk)}, "
            f"{done}/{total} tasks done, {overdue} overdue")
    return message(text, blocks)
