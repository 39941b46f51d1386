"""Outbox messages, rendered from a notification's kind and payload at delivery time.

Payloads hold plain data (ids, names, texts as typed), so every user string is escaped here. The only
exception is a field whose name ends in `_mrkdwn`: text our own code built and escaped when the
notification was written (e.g. a plan alert's "because", which already carries an escaped name).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from blocks.reminders import approval_notice, digest, task_notice
from blocks.status_report import campaign_status
from blocks.text import channel_mention, context, escape, fit_escaped, message, section, user_mention
from services.refs import RefKind, format_ref

PLAN_ALERT = "plan_alert"
DELIVERY_FAILED = "delivery_failed"

Payload = Mapping[str, Any]


def render(kind: str, payload: Payload) -> dict[str, Any]:
    """A `chat.postMessage` payload (text + blocks) for a notification."""
    return RENDERERS.get(kind, generic)(payload)


def plan_alert_payload(*, campaign_id: int, campaign_name: str, alerts: list[str], because_mrkdwn: str) -> dict[str, Any]:
    return {"campaign_id": campaign_id, "campaign_name": campaign_name, "alerts": list(alerts),
            "because_mrkdwn": because_mrkdwn}


def plan_alert(payload: Payload) -> dict[str, Any]:
    """The owner's alert after a re-plan, from the data stored with the notification."""
    ref = format_ref(RefKind.CAMPAIGN, int(payload["campaign_id"]))
    name = str(payload.get("campaign_name") or "")
    lines = "\n".join(f"• {escape(str(alert))}" for alert in payload.get("alerts") or [])
    because = str(payload.get("because_mrkdwn") or "")
    notes = [f"After: {because}. See `/campaign show {ref}`."] if because else [f"See `/campaign show {ref}`."]
    return message(
        f"{ref} {fit_escaped(name, 80)}: plan alert",
        [section(f":rotating_light: *{ref} {fit_escaped(name, 120)}*\n{lines}"), context(*notes)],
    )


def delivery_failed_payload(*, campaign_id: int | None, campaign_name: str | None, kind: str,
                            recipient_user: str | None, recipient_channel: str | None, reason: str) -> dict[str, Any]:
    return {"campaign_id": campaign_id, "campaign_name": campaign_name, "kind": kind,
            "recipient_user": recipient_user, "recipient_channel": recipient_channel, "reason": reason}


def delivery_failed(payload: Payload) -> dict[str, Any]:
    """Told once to a campaign's owner: a message for someone (or a channel) could not be delivered."""
    user, channel = payload.get("recipient_user"), payload.get("recipient_channel")
    if user:
        whom = user_mention(str(user))
    elif channel:
        whom = channel_mention(str(channel))
    else:
        whom = "someone"
    campaign_id = payload.get("campaign_id")
    ref = format_ref(RefKind.CAMPAIGN, int(campaign_id)) if campaign_id is not None else ""
    name = fit_escaped(str(payload.get("campaign_name") or ""), 120)
    about = f" about {ref} *{name}*" if ref else ""
    reason = escape(str(payload.get("reason") or "unknown"))
    what = escape(str(payload.get("kind") or "message").replace("_", " "))
    hint = HINTS.get(str(payload.get("reason") or ""), "")
    return message(
        f"A {what} could not be delivered",
        [section(f":warning: I could not deliver a {what}{about} to {whom}: `{reason}`."),
         *([context(hint)] if hint else [])],
    )


HINTS = {
    "not_in_channel": "Invite me to the channel (`/invite @Campaign Manager`) so I can post there.",
    "is_archived": "The channel is archived: pick another channel for the campaign.",
    "channel_not_found": "The channel is gone or private: pick another channel, or invite me to it.",
    "account_inactive": "That person's account is deactivated: reassign their work.",
    "user_not_found": "That person is no longer in the workspace: reassign their work.",
}


def generic(payload: Payload) -> dict[str, Any]:
    """Any kind without its own renderer: the payload's `summary` (bold) and `text`, escaped."""
    summary = str(payload.get("summary") or "")
    text = str(payload.get("text") or "")
    if not summary and not text:
        summary = "You have a notification from Campaign Manager."
    body = "\n".join(part for part in (f"*{fit_escaped(summary, 150)}*" if summary else "", fit_escaped(text, 2900))
                     if part)
    return message(fit_escaped(summary or text, 150), [section(body)])


RENDERERS: dict[str, Callable[[Payload], dict[str, Any]]] = {
    PLAN_ALERT: plan_alert,
    DELIVERY_FAILED: delivery_failed,
    "task_reminder": task_notice,
    "task_overdue": task_notice,
    "task_escalation": task_notice,
    "approval_reminder": approval_notice,
    "approval_escalation": approval_notice,
    "digest": digest,
    "campaign_status": campaign_status,
}
