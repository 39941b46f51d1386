"""Outbox notifications as email: a subject, a plain-text body and a simple HTML body, from the same
payload the Slack renderers read (`blocks.notifications`).

Payloads hold text as people typed it: the plain-text part shows it as is, the HTML part escapes every
piece with `html.escape`, and the subject drops line breaks (no header injection).

Dates: Slack formats `<!date^...>` tokens in each reader's zone, email cannot, so `render_email` takes the
recipient's IANA zone (`TeamMember.timezone`) and every date printed from a payload goes through
`local_when`: an instant reads "Tue 1 Dec 2026, 14:00 (Europe/Berlin)", a plain date "Tue 1 Dec 2026". The
year is always shown (a pure renderer has no "this year" to compare with). No zone, an empty or an unknown
one is UTC, and says so.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from email.message import EmailMessage
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from blocks.campaigns import campaign_created_mail, email_results_text
from blocks.content import content_held_mail
from services.agent_handoff import HandoffResult
from services.approval_notices import RequestNotice, StageOutcome
from services.approval_stages import StageState, StageView
from services.campaign_content import finding_line
from services.delivery import DeliveryFailed
from services.kinds import Kind
from services.plan_alerts import PlanAlert
from services.signoffs import StageUnstaffed

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


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # not %a/%b: those follow the process locale
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _zone(name: str | None) -> tuple[tzinfo, str]:
    """The reader's zone and the name to print; none, empty or not a known IANA key is UTC."""
    key = name.strip() if isinstance(name, str) else ""
    if key:
        try:
            return ZoneInfo(key), key
        except (ZoneInfoNotFoundError, ValueError, OSError):  # unknown, not a key ("../x"), unreadable
            pass
    return UTC, "UTC"


def _day(day: date) -> str:
    return f"{_DAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]} {day.year}"


def local_when(value: Any, tz: str | None) -> str:
    """A date or time from a payload as the reader reads it; "" when there is none.

    An ISO instant (naive means UTC) is shown in zone `tz`: "Tue 1 Dec 2026, 14:00 (Europe/Berlin)". A plain
    ISO date is a calendar day, not an instant, so it is not shifted: "Tue 1 Dec 2026". Anything else comes
    back as it is (the HTML part escapes it like any other text).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    parsed: Any = value
    if isinstance(value, str):
        try:
            parsed = date.fromisoformat(value.strip())  # a bare date only; datetime.fromisoformat takes it too
        except ValueError:
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                return value
    try:
        if isinstance(parsed, datetime):
            zone, label = _zone(tz)
            aware = parsed if parsed.utcoffset() is not None else parsed.replace(tzinfo=UTC)
            local = aware.astimezone(zone)
            return f"{_day(local)}, {local:%H:%M} ({label})"
        if isinstance(parsed, date):
            return _day(parsed)
    except (OverflowError, ValueError):  # an instant the zone pushes past year 1 or 9999
        pass
    return str(value)


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


_TASK_WORDS: dict[str, str] = {Kind.TASK_REMINDER: "Coming up", Kind.TASK_OVERDUE: "Overdue", Kind.TASK_ESCALATION: "Late work"}
_APPROVAL_WORDS: dict[str, str] = {Kind.APPROVAL_REMINDER: "Decision due", Kind.APPROVAL_ESCALATION: "Decision late"}


def task_email(payload: Payload, *, tz: str | None = None) -> Email:
    words = _TASK_WORDS.get(_s(payload, "kind"), "Task")
    head = f"{words}: {_s(payload, 'task')} {_s(payload, 'title')}".strip()
    campaign = f"{_s(payload, 'campaign')} {_s(payload, 'campaign_name')}".strip()
    return _build(head, [head, f"Due {local_when(payload.get('due'), tz) or 'no date'} · {campaign}",
                         "Mark it done or snooze it from the Slack app (`/task mine`)."])


def approval_email(payload: Payload, *, tz: str | None = None) -> Email:
    words = _APPROVAL_WORDS.get(_s(payload, "kind"), "Approval")
    head = f"{words}: {_s(payload, 'stage')} ({_s(payload, 'approval')})"
    campaign = f"{_s(payload, 'campaign')} {_s(payload, 'campaign_name')}".strip()
    return _build(head, [head, f"{campaign} · deadline {local_when(payload.get('deadline'), tz) or 'none'}",
                         "Decide it in Slack with `/approval mine`."])


WHERE_TO_DECIDE = "Decide in Slack: on the Campaign Manager app's Home tab, or with `/approval mine`."


def approval_request_email(payload: Payload, stage: StageView | None = None, *, tz: str | None = None) -> Email:
    """An approval request (`approval_request`) for someone who chose email: the stage as it is when the
    mail goes out (or, without it, what the payload says), and where to decide; email has no buttons."""
    notice = RequestNotice.from_payload(dict(payload))
    ref = f"CM-{notice.campaign_id}"
    head = f"Your sign-off is requested: {notice.stage} ({ref} {notice.campaign_name})"
    if stage is None:
        deadline = local_when(notice.deadline.isoformat() if notice.deadline else None, tz) or "none"
        return _build(head, [head, f"Deadline: {deadline}", WHERE_TO_DECIDE])
    rule = "One approval is enough." if stage.rule.value == "any" else "Every approver must approve."
    deadline = local_when(stage.deadline.isoformat() if stage.deadline else None, tz) or "none"
    votes = [f"• {vote.approver.name}: {vote.status.value}" for vote in stage.votes]
    assets = [f"• {asset.name}" + (f": {asset.url}" if asset.url else "") for asset in stage.assets]
    lines = [head, f"{rule} Deadline: {deadline}." + (f" Round {stage.round}." if stage.round > 1 else "")]
    if stage.state is not StageState.OPEN:
        lines.append(f"The stage is {stage.state.value} now: nothing is left for you to decide.")
    lines += (["To review:", *assets] if assets else [f"Review the plan with `/campaign show {ref}`."])
    if stage.findings and stage.state is StageState.OPEN:
        lines += ["Content checks:", *(f"• {finding.severity.value}: " + finding_line(finding) for finding in stage.findings)]
    lines += ["Approvers:", *votes, WHERE_TO_DECIDE]
    return _build(head, lines)


def approval_outcome_email(payload: Payload) -> Email:
    """The owner's news of a stage (`approval_outcome`)."""
    news = StageOutcome.from_payload(dict(payload))
    ref = f"CM-{news.campaign_id}"
    head = f"{news.stage} ({ref} {news.campaign_name}) {news.outcome.value}"
    lines = [head]
    if news.outcome is StageState.REJECTED:
        lines += [f"Why: {news.reason or '(no reason given)'}",
                  "Change what they ask for, then resubmit it with `/approval resubmit` in Slack."]
    elif news.reason:
        lines.append(f"Why: {news.reason}")
    if news.campaign_approved:
        lines.append(f"Every sign-off of {ref} is in: it is approved.")
    if news.opened:
        lines.append("Open now: " + ", ".join(news.opened) + ".")
    return _build(head, lines)


def digest_email(payload: Payload) -> Email:
    counts = [(int(payload.get(key) or 0), what) for key, what in
              (("due_today", "due today"), ("overdue", "overdue"), ("approvals_waiting", "approvals waiting for you"))]
    summary = " · ".join(f"{n} {what}" for n, what in counts if n) or "Nothing urgent today."
    return _build(f"Good morning: {summary}", [f"Good morning. {summary}", "Your Home tab in Slack has the details."])


def plan_alert_email(payload: Payload) -> Email:
    alert = PlanAlert.from_payload(payload)
    head = f"CM-{alert.campaign_id} {alert.campaign_name}: plan alert"
    # A row written before PlanAlert kept "because" as Slack markup only: the email leaves it out.
    because = [f"After: {alert.because}."] if alert.because else []
    return _build(head, [head, *(f"• {line}" for line in alert.alerts), *because])


def delivery_failed_email(payload: Payload) -> Email:
    notice = DeliveryFailed.from_payload(payload)
    what = notice.kind.replace("_", " ")
    whom = notice.recipient_user or notice.recipient_channel or "someone"
    about = f" about {notice.campaign_name}" if notice.campaign_name else ""
    return _build(f"A {what} could not be delivered",
                  [f"I could not deliver a {what}{about} to {whom}: {notice.reason}."])


def agent_handoff_result_email(payload: Payload) -> Email:
    result = HandoffResult.from_payload(payload)
    if result.went_through:
        return _build(result.summary, [result.summary])
    return _build(result.summary, [
        f"{result.ref} {result.campaign_name} could not be handed to the marketing agent: {result.reason or 'unknown'}.",
        "The launch itself stands; only the agent was not told."])


def stage_unstaffed_email(payload: Payload) -> Email:
    notice = StageUnstaffed.from_payload(payload)
    when = "is due to open" if notice.opening else "will need approvers"
    head = f'{notice.ref} {notice.campaign_name}: nobody can approve "{notice.stage}"'
    return _build(head, [head, f'It {when}, and nobody on the team has the role "{notice.role}".',
                         f"Name the approvers in Slack: {notice.request_command}",
                         f"or give someone the role: {notice.role_command}"])


def generic_email(payload: Payload) -> Email:
    summary, text = _s(payload, "summary"), _s(payload, "text")
    if not summary and not text:
        summary = "You have a notification from Campaign Manager."
    return _build(summary or text, [summary, text])


RENDERERS: dict[str, Callable[[Payload], Email]] = {  # by Kind
    Kind.PLAN_ALERT: plan_alert_email,
    Kind.DELIVERY_FAILED: delivery_failed_email,
    Kind.STAGE_UNSTAFFED: stage_unstaffed_email,
    Kind.TASK_REMINDER: task_email,
    Kind.TASK_OVERDUE: task_email,
    Kind.TASK_ESCALATION: task_email,
    Kind.APPROVAL_REMINDER: approval_email,
    Kind.APPROVAL_ESCALATION: approval_email,
    Kind.DIGEST: digest_email,
    Kind.APPROVAL_REQUEST: approval_request_email,
    Kind.APPROVAL_COPY_UPDATE: approval_request_email,  # never sent by email (it edits a Slack message)
    Kind.APPROVAL_OUTCOME: approval_outcome_email,
    Kind.CAMPAIGN_CREATED: lambda payload: _build(*campaign_created_mail(payload)),
    Kind.CONTENT_CHECKS_FAILED: lambda payload: _build(*content_held_mail(payload)),
    Kind.AGENT_HANDOFF_RESULT: agent_handoff_result_email,
}


class ZonedRenderer(Protocol):
    def __call__(self, payload: Payload, *, tz: str | None = None) -> Email: ...


# Renderers that print dates from the payload: they take the reader's zone. A renderer registered in
# RENDERERS that prints a date should take `*, tz` too and be listed here.
ZONED: tuple[ZonedRenderer, ...] = (task_email, approval_email, approval_request_email)


def render_email(kind: str, payload: Payload, *, tz: str | None = None, stage: StageView | None = None) -> Email:
    """The email for a notification; `tz` is the recipient's IANA zone (`TeamMember.timezone`), None is UTC.
    `stage`: an approval request's stage as it is at delivery."""
    if kind == Kind.APPROVAL_REQUEST:
        return approval_request_email(payload, stage, tz=tz)
    renderer = RENDERERS.get(kind, generic_email)
    for zoned in ZONED:
        if renderer is zoned:
            return zoned(payload, tz=tz)
    return renderer(payload)


def campaign_status_email(payload: Payload) -> Email:
    """The weekly status post (`services.status_reports`). Only the owner gets it by email (a channel gets
    Slack), and its days are already the owner's calendar days: printed as days, never shifted by a zone."""
    head = f"Weekly status {_s(payload, 'campaign')} {_s(payload, 'campaign_name')}: {_s(payload, 'risk')}"
    launch = f"Launch {local_when(payload.get('launch_date'), None)}"
    if payload.get("projected_launch") and payload.get("projected_launch") != payload.get("launch_date"):
        launch += f", projected {local_when(payload.get('projected_launch'), None)}"
    lines = [head, launch,
             f"Progress: {_s(payload, 'tasks_done')} of {_s(payload, 'tasks_total')} tasks done "
             f"({_s(payload, 'tasks_done_pct')}%), {float(payload.get('progress_pct') or 0):.0f}% of the work",
             f"Buffer left: {_s(payload, 'buffer_left_days')} of {_s(payload, 'buffer_days')} days "
             f"({float(payload.get('buffer_left_pct') or 0):.0f}%)",
             f"Done in the last 7 days: {_s(payload, 'done_last_7_days')}"]
    for title, key in (("Overdue", "overdue"), ("Due in the next 7 days", "due_soon")):
        if payload.get(f"{key}_count"):
            lines.append(f"{title} ({_s(payload, f'{key}_count')}):")
            lines += [f"• {_s(t, 'task')} {_s(t, 'title')}, due {local_when(t.get('due_day'), None)}" for t in payload.get(key) or []]
    if payload.get("approvals_waiting"):
        lines.append(f"Waiting for a decision ({_s(payload, 'approvals_waiting')}):")
        lines += [f"• {_s(a, 'stage')} ({_s(a, 'approval')}), asked {local_when(a.get('requested_day'), None)}"
                  for a in payload.get("oldest_approvals") or []]
    email = payload.get("email")
    if isinstance(email, Mapping):  # Mailjet's results, as the Slack post shows them
        lines.append(f"Email: {email_results_text(email)}")
    return _build(head, lines)


RENDERERS[Kind.CAMPAIGN_STATUS] = campaign_status_email
