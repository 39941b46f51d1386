"""Reminder, escalation and digest messages, rendered at delivery from the payload the sweep wrote."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeGuard

from blocks.codec import encode_id
from blocks.ids import TASK_BLOCK, TASK_DONE, TASK_SNOOZE_HOUR, TASK_SNOOZE_TOMORROW
from blocks.text import button, context, escape, fit_escaped, message, section
from services.kinds import Kind
from services.refs import MAX_ID

Payload = Mapping[str, Any]

# kind: (emoji, words); the words alone are the notification text, the emoji only decorates the blocks.
_TASK_LEADS: dict[str, tuple[str, str]] = {
    Kind.TASK_REMINDER: (":alarm_clock:", "Coming up"),
    Kind.TASK_OVERDUE: (":hourglass:", "Overdue"),
    Kind.TASK_ESCALATION: (":rotating_light:", "Late work"),
}
_APPROVAL_LEADS: dict[str, tuple[str, str]] = {
    Kind.APPROVAL_REMINDER: (":hourglass_flowing_sand:", "Decision due"),
    Kind.APPROVAL_ESCALATION: (":rotating_light:", "Decision late"),
}


def _when(iso: str | None) -> str:
    """Slack renders the date in each reader's own time zone."""
    if not iso:
        return "no date"
    try:
        stamp = int(datetime.fromisoformat(iso).timestamp())
    except ValueError:
        return escape(iso)
    return f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{escape(iso[:16])}>"


def task_notice(payload: Payload) -> dict[str, Any]:
    kind = str(payload.get("kind") or Kind.TASK_REMINDER)
    task, title = escape(str(payload.get("task") or "")), fit_escaped(str(payload.get("title") or ""), 200)
    campaign = f"{escape(str(payload.get('campaign') or ''))} {fit_escaped(str(payload.get('campaign_name') or ''), 100)}"
    emoji, words = _TASK_LEADS.get(kind, (":bell:", "Task"))
    text = f"{emoji} {words}: *{task}* {title}\nDue {_when(payload.get('due'))} · {campaign}"
    blocks: list[dict[str, Any]] = [section(text)]
    task_id = payload.get("task_id")
    if kind != Kind.TASK_ESCALATION:  # the assignee can act; the owner being told cannot finish it for them
        if _is_id(task_id):  # a payload without a usable id still tells; its buttons could only fail
            value = encode_id(task_id)
            blocks.append({"type": "actions", "elements": [
                button("Done", TASK_DONE, value, style="primary"), button("Snooze 1 h", TASK_SNOOZE_HOUR, value),
                button("Until tomorrow", TASK_SNOOZE_TOMORROW, value), button("Block", TASK_BLOCK, value)]})
    else:
        blocks.append(context(f"Assigned work is late. See `/task list {escape(str(payload.get('campaign') or ''))}`."))
    return message(f"{words}: {task} {title}", blocks)


def _is_id(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def approval_notice(payload: Payload) -> dict[str, Any]:
    kind = str(payload.get("kind") or Kind.APPROVAL_REMINDER)
    emoji, words = _APPROVAL_LEADS.get(kind, (":bell:", "Approval"))
    stage = fit_escaped(str(payload.get("stage") or ""), 100)
    ref = escape(str(payload.get("approval") or ""))
    campaign = f"{escape(str(payload.get('campaign') or ''))} {fit_escaped(str(payload.get('campaign_name') or ''), 100)}"
    text = f"{emoji} {words}: *{stage}* ({ref}) · {campaign}\nDeadline {_when(payload.get('deadline'))}"
    hint = "Decide it with the buttons in the request, or `/approval mine`." if kind == Kind.APPROVAL_REMINDER \
        else "The approver has not decided yet; nudge them or ask them to delegate."
    return message(f"{words}: {stage} {ref}", [section(text), context(hint)])


def digest(payload: Payload) -> dict[str, Any]:
    due, overdue, approvals = (int(payload.get(key) or 0) for key in ("due_today", "overdue", "approvals_waiting"))
    parts = [f"*{due}* due today" if due else "", f"*{overdue}* overdue" if overdue else "",
             f"*{approvals}* approvals waiting for you" if approvals else ""]
    summary = " · ".join(part for part in parts if part) or "Nothing urgent today."
    return message(f"Good morning: {summary.replace('*', '')}",
                   [section(f":sunrise: Good morning. {summary}"), context("Your Home tab has the details; `/task mine` lists them.")])
