"""Outbox notifications as email: a subject, a plain-text body and a simple HTML body, from the same
payload the Slack renderers read (`blocks.notifications`).

Payloads hold text as people typed it: the plain-text part shows it as is, the HTML part escapes every
piece with `html.escape`, and the subject drops line breaks (no header injection).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

Payload = Mapping[str, Any]
SUBJECT_MAX = 150
FOOTER = "You get this by email because you chose it: change it with `/team me notify=slack` in Slack."


@dataclass(frozen=True)
class Email:
    subject: str
    text: str
    html: str

    def message(self, *, to: str, sender: str) -> EmailMessage:
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = self.subject, sender, to
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        return message


def _s(payload: Payload, key: str) -> str:
    value = payload.get(key)
    return "" if value is None else str(value)


def _one_line(text: str, limit: int = SUBJECT_MAX) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _build(subject: str, lines: list[str]) -> Email:
    """Plain lines in; the HTML is one paragraph per line, each escaped."""
    lines = [line for line in lines if line]
    text = "\n\n".join([*lines, FOOTER]) + "\n"
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    body = (f"<!DOCTYPE html><html><body>{paragraphs}"
            f"<p style=\"color:#666;font-size:small\">{html.escape(FOOTER)}</p></body></html>")
    return Email(subject=_one_line(subject) or "Campaign Manager", text=text, html=body)


_TASK_WORDS = {"task_reminder": "Coming up", "task_overdue": "Overdue", "task_escalation": "Late work"}
_APPROVAL_WORDS = {"approval_reminder": "Decision due", "approval_escalation": "Decision late"}


def task_email(payload: Payload) -> Email:
    words = _TASK_WORDS.get(_s(payload, "kind"), "Task")
    head = f"{words}: {_s(payload, 'task')} {_s(payload, 'title')}".strip()
    campaign = f"{_s(payload, 'campaign')} {_s(payload, 'campaign_name')}".strip()
    return _build(head, [head, f"Due {_s(payload, 'due') or 'no date'} · {campaign}",
                         "Mark it done or snooze it from the Slack app (`/task mine`)."])


def approval_email(payload: Payload) -> Email:
    words = _APPROVAL_WORDS.get(_s(payload, "kind"), "Approval")
    head = f"{words}: {_s(payload, 'stage')} ({_s(payload, 'approval')})"
    campaign = f"{_s(payload, 'campaign')} {_s(payload, 'campaign_name')}".strip()
    return _build(head, [head, f"{campaign} · deadline {_s(payload, 'deadline') or 'none'}",
                         "Decide it in Slack with `/approval mine`."])


def digest_email(payload: Payload) -> Email:
    counts = [(int(payload.get(key) or 0), what) for key, what in
              (("due_today", "due today"), ("overdue", "overdue"), ("approvals_waiting", "approvals waiting for you"))]
    summary = " · ".join(f"{n} {what}" for n, what in counts if n) or "Nothing urgent today."
    return _build(f"Good morning: {summary}", [f"Good morning. {summary}", "Your Home tab in Slack has the details."])


def plan_alert_email(payload: Payload) -> Email:
    name = _s(payload, "campaign_name")
    campaign_id = payload.get("campaign_id")
    ref = f"CM-{campaign_id}" if campaign_id is not None else ""
    alerts = [f"• {alert}" for alert in payload.get("alerts") or []]
    return _build(f"{ref} {name}: plan alert", [f"{ref} {name}: plan alert", *alerts])


def delivery_failed_email(payload: Payload) -> Email:
    what = _s(payload, "kind").replace("_", " ") or "message"
    whom = _s(payload, "recipient_user") or _s(payload, "recipient_channel") or "someone"
    name = _s(payload, "campaign_name")
    about = f" about {name}" if name else ""
    return _build(f"A {what} could not be delivered",
                  [f"I could not deliver a {what}{about} to {whom}: {_s(payload, 'reason') or 'unknown'}."])


def generic_email(payload: Payload) -> Email:
    summary, text = _s(payload, "summary"), _s(payload, "text")
    if not summary and not text:
        summary = "You have a notification from Campaign Manager."
    return _build(summary or text, [summary, text])


RENDERERS: dict[str, Callable[[Payload], Email]] = {
    "plan_alert": plan_alert_email,
    "delivery_failed": delivery_failed_email,
    "task_reminder": task_email,
    "task_overdue": task_email,
    "task_escalation": task_email,
    "approval_reminder": approval_email,
    "approval_escalation": approval_email,
    "digest": digest_email,
}


def render_email(kind: str, payload: Payload) -> Email:
    return RENDERERS.get(kind, generic_email)(payload)
