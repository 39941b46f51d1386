"""Outbox messages, rendered from a notification's kind and payload at delivery time.

Payloads hold plain data (ids, names, texts as typed), so every user string is escaped here. The only
exception is a field whose name ends in `_mrkdwn`: text our own code built and escaped when the
notification was written (a plan alert's "because" in rows written before `PlanAlert` had it plain).

RENDERERS has one entry per `services.kinds.Kind` (tests/test_kinds.py checks it); `generic` is for rows
of a kind this code does not know.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from blocks import codec
from blocks.approvals import owner_update, request_fallback, request_notice
from blocks.campaigns import campaign_created
from blocks.content import content_held
from blocks.reminders import approval_notice, digest, task_notice
from blocks.status_report import campaign_status
from blocks.text import (
    BUTTON_TEXT_LIMIT,
    channel_mention,
    context,
    escape,
    fit_escaped,
    message,
    plain,
    section,
    user_mention,
)
from services.agent_handoff import HandoffResult
from services.approval_notices import RENDERED_FROM_STAGE
from services.approval_stages import StageView
from services.delivery import DeliveryFailed
from services.delivery_retry import RETRY_WINDOW
from services.kinds import Kind
from services.plan_alerts import PlanAlert
from services.refs import RefKind, format_ref
from services.signoffs import StageUnstaffed

RETRY_DELIVERY = "delivery_retry"  # the "Try again" button on a delivery-failed notice
RETRY_DAYS = RETRY_WINDOW.days  # how far back "Try again" reaches

Payload = Mapping[str, Any]


def render(kind: str, payload: Payload, *, stage: StageView | None = None) -> dict[str, Any]:
    """A `chat.postMessage` (or `chat.update`) payload (text + blocks) for a notification. `stage`: the
    approval stage as it is at delivery, for the kinds rendered from it (`RENDERED_FROM_STAGE`)."""
    if stage is not None and kind in RENDERED_FROM_STAGE:
        return request_notice(payload, stage)
    return RENDERERS.get(kind, generic)(payload)


def plan_alert(payload: Payload) -> dict[str, Any]:
    """The owner's alert after a re-plan, from the data stored with the notification."""
    alert = PlanAlert.from_payload(payload)
    ref = format_ref(RefKind.CAMPAIGN, alert.campaign_id)
    lines = "\n".join(f"• {escape(line)}" for line in alert.alerts)
    because = alert.because_mrkdwn or fit_escaped(alert.because, 300)
    notes = [f"After: {because}. See `/campaign show {ref}`."] if because else [f"See `/campaign show {ref}`."]
    return message(
        f"{ref} {fit_escaped(alert.campaign_name, 80)}: plan alert",
        [section(f":rotating_light: *{ref} {fit_escaped(alert.campaign_name, 120)}*\n{lines}"), context(*notes)],
    )


def stage_unstaffed(payload: Payload) -> dict[str, Any]:
    """The owner's notice that nobody has the role a sign-off stage asks for, with the two ways out."""
    notice = StageUnstaffed.from_payload(payload)
    stage, role = fit_escaped(notice.stage, 150), fit_escaped(notice.role, 80)
    name = fit_escaped(notice.campaign_name, 120)
    when = "is due to open" if notice.opening else "will need approvers"
    return message(
        f"{notice.ref} {fit_escaped(notice.campaign_name, 80)}: nobody can approve \"{fit_escaped(notice.stage, 60)}\"",
        [section(f":busts_in_silhouette: *{notice.ref} {name}*: nobody can approve \"{stage}\"\n"
                 f"It {when}, and nobody on the team has the role \"{role}\"."),
         context(f"Name the approvers: `{escape(notice.request_command)}`, "
                 f"or give someone the role: `{escape(notice.role_command)}`.")],
    )


def agent_handoff_result(payload: Payload) -> dict[str, Any]:
    """The owner's notice: a launch reached the marketing agent, or could not, and why. The launch stands."""
    result = HandoffResult.from_payload(payload)
    name = fit_escaped(result.campaign_name, 120)
    if result.went_through:
        return message(fit_escaped(result.summary, 150),
                       [section(f":robot_face: {result.ref} *{name}* was handed to the marketing agent.")])
    reason = fit_escaped(result.reason or "unknown", 300)
    return message(
        fit_escaped(result.summary, 150),
        [section(f":warning: {result.ref} *{name}* could not be handed to the marketing agent: {reason}."),
         context("The launch itself stands; only the agent was not told.")],
    )


@dataclass(frozen=True)
class RetryTarget:
    """What the "Try again" button points at: one campaign's failed messages to one channel or one member.

    The button's value is only a pointer: the listener re-reads the campaign and asks authz before anything.
    """

    campaign_id: int
    recipient_channel: str | None = None
    recipient_id: int | None = None

    @property
    def value(self) -> str:
        """The button's value (`blocks.codec` writes and reads it); ValueError if it is not a valid target."""
        return codec.encode_retry(self.campaign_id, recipient_channel=self.recipient_channel,
                                  recipient_id=self.recipient_id)

    @classmethod
    def parse(cls, value: str) -> RetryTarget | None:
        """The target a button value names, or None when it is not one of ours."""
        try:
            pointer = codec.decode_retry(value)
        except codec.UnreadableValue:
            return None
        return cls(pointer.campaign_id, recipient_channel=pointer.recipient_channel, recipient_id=pointer.recipient_id)


def retry_target(payload: Payload) -> RetryTarget | None:
    """The button's target, or None: an old payload (no `recipient_id` key), no campaign, or nobody to retry."""
    if "recipient_id" not in payload:
        return None
    campaign_id, member = _id(payload.get("campaign_id")), _id(payload.get("recipient_id"))
    channel = payload.get("recipient_channel")
    if campaign_id is None:
        return None
    if channel:
        target = RetryTarget(campaign_id, recipient_channel=str(channel))
    elif member is not None:
        target = RetryTarget(campaign_id, recipient_id=member)
    else:
        return None
    try:
        return target if RetryTarget.parse(target.value) == target else None  # only what the listener would accept
    except ValueError:  # e.g. a channel id that is not one
        return None


def _id(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def delivery_failed(payload: Payload) -> dict[str, Any]:
    """Told once to a campaign's owner: a message for someone (or a channel) could not be delivered.

    With a retry target in the payload, a "Try again" button sends that recipient's failed messages again.
    """
    notice = DeliveryFailed.from_payload(payload)
    whom = _whom(notice.recipient_channel, notice.recipient_user)
    ref = format_ref(RefKind.CAMPAIGN, notice.campaign_id) if notice.campaign_id is not None else ""
    name = fit_escaped(notice.campaign_name or "", 120)
    about = f" about {ref} *{name}*" if ref else ""
    reason = escape(notice.reason)
    what = escape(notice.kind.replace("_", " "))
    hint = HINTS.get(notice.reason, "")
    target = retry_target(payload)
    blocks = [section(f":warning: I could not deliver a {what}{about} to {whom}: `{reason}`."),
              *([context(hint)] if hint else [])]
    if target is not None:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": plain("Try again", BUTTON_TEXT_LIMIT), "action_id": RETRY_DELIVERY,
             "value": target.value, "style": "primary"}]})
        blocks.append(context(f"Once that is fixed, *Try again* sends every message of this campaign to {whom} "
                              f"that failed in the last {RETRY_DAYS} days."))
    return message(f"A {what} could not be delivered", blocks)


def delivery_retried(*, campaign_id: int, campaign_name: str, sent: int, recipient_channel: str | None,
                     recipient_user: str | None, at: datetime) -> dict[str, Any]:
    """What the clicked notice becomes: how many messages went back to the outbox, for whom, and when."""
    ref = format_ref(RefKind.CAMPAIGN, campaign_id)
    whom = _whom(recipient_channel, recipient_user)
    plural = "message" if sent == 1 else "messages"
    return message(
        f"Sent again {sent} {plural} to {whom}",
        [section(f":repeat: Sent again {sent} {plural} about {ref} *{fit_escaped(campaign_name, 120)}* to {whom}"
                 f" — {_when(at)}."),
         context("If they fail again, I will tell you.")],
    )


def nothing_to_retry(*, recipient_channel: str | None, recipient_user: str | None) -> dict[str, Any]:
    """A second click, or one after everything went out again: nothing changed."""
    whom = _whom(recipient_channel, recipient_user)
    text = (f"Nothing to send again to {whom}: those messages were already sent again, or are more than "
            f"{RETRY_DAYS} days old.")
    return message(text, [section(f":information_source: {text}")])


def _whom(channel: object, user: object) -> str:
    if user:
        return user_mention(str(user))
    if channel:
        return channel_mention(str(channel))
    return "someone"


def _when(at: datetime) -> str:
    """Slack shows the moment in each reader's own time zone; the fallback is UTC."""
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} at {{time}}|{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC>"


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


RENDERERS: dict[str, Callable[[Payload], dict[str, Any]]] = {  # by Kind
    Kind.PLAN_ALERT: plan_alert,
    Kind.DELIVERY_FAILED: delivery_failed,
    Kind.STAGE_UNSTAFFED: stage_unstaffed,
    Kind.TASK_REMINDER: task_notice,
    Kind.TASK_OVERDUE: task_notice,
    Kind.TASK_ESCALATION: task_notice,
    Kind.APPROVAL_REMINDER: approval_notice,
    Kind.APPROVAL_ESCALATION: approval_notice,
    Kind.DIGEST: digest,
    Kind.CAMPAIGN_STATUS: campaign_status,
    Kind.APPROVAL_REQUEST: request_fallback,
    Kind.APPROVAL_COPY_UPDATE: request_fallback,
    Kind.APPROVAL_OUTCOME: owner_update,
    Kind.CAMPAIGN_CREATED: campaign_created,
    Kind.CONTENT_CHECKS_FAILED: content_held,
    Kind.AGENT_HANDOFF_RESULT: agent_handoff_result,
}
