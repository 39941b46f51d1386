"""The App Home tab: my tasks by due date, approvals waiting for me, my campaigns' health, my inbox.

A Home tab holds at most 100 blocks, so every section is capped and says how many more there are.
The caps are fixed, so the worst case is a number (`worst_case_blocks`), checked by the tests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from blocks.approvals import stage_line
from blocks.campaigns import RISK_BADGES, STATUS_BADGES, launch_phrase, task_title
from blocks.codec import encode_id
from blocks.help import HOME_OPEN_DASHBOARD
from blocks.ids import APPROVAL_APPROVE, APPROVAL_REJECT, TASK_BLOCK, TASK_DONE, TASK_START
from blocks.tasks import STATUS_ICONS
from blocks.text import (
    button,
    context,
    day_label,
    divider,
    escape,
    fit_escaped,
    header,
    plain,
    section,
    user_mention,
)
from models import Notification, Task, TaskStatus, TeamMember
from services import links
from services.campaigns import campaign_ref
from services.home import (
    APPROVALS_SHOWN,
    CAMPAIGNS_SHOWN,
    INBOX_SHOWN,
    TASKS_PER_BUCKET,
    Bucket,
    CampaignHealth,
    HomeData,
    PendingApproval,
    TaskGroup,
)
from services.kinds import Kind
from services.refs import RefKind, format_ref

HOME_BLOCK_LIMIT = 100
TASK_ROWS_SHOWN = 24  # over all buckets, the earliest buckets first; each row is two blocks

BUCKET_TITLES = {
    Bucket.OVERDUE: (":rotating_light:", "Overdue", "overdue"),
    Bucket.TODAY: (":date:", "Due today", "due today"),
    Bucket.THIS_WEEK: (":spiral_calendar_pad:", "Due this week", "due this week"),
    Bucket.LATER: (":hourglass_flowing_sand:", "Later", "for later"),
}
STATUS_WORDS = {TaskStatus.TODO: "to do", TaskStatus.IN_PROGRESS: "in progress", TaskStatus.BLOCKED: "blocked"}


def worst_case_blocks() -> int:
    """The most blocks `home_view` can build, whatever the data."""
    top = 3  # greeting, summary, the "Open dashboard" button
    tasks = 2 + len(Bucket) * 2 + 2 * TASK_ROWS_SHOWN  # divider, header; per bucket a title and "N more"
    approvals = 2 + 2 * APPROVALS_SHOWN + 1
    campaigns = 2 + CAMPAIGNS_SHOWN + 1
    inbox = 2 + 1 + 1
    footer = 2
    return top + tasks + approvals + campaigns + inbox + footer


def home_view(data: HomeData) -> dict[str, Any]:
    """The whole Home tab for `data.member`.

    Its "Open dashboard" button asks for a stored link when clicked (`handlers.slack.home`): the Home is
    rendered by delivery, which must not write, and a link made at render time could not be revoked.
    """
    link = "the dashboard (*Open dashboard* above)"
    blocks: list[dict[str, Any]] = [header(_greeting(data.member)), context(_summary(data)), _dashboard_button()]
    blocks += _tasks(data, link)
    blocks += _approvals(data, link)
    blocks += _campaigns(data, link)
    blocks += _inbox(data, link)
    blocks += [
        divider(),
        context(f"Commands: `/task list CM-12` · `/task help` · `/campaign list` · `/campaign help` · "
                f"everything on {link}."),
    ]
    # Unreachable while worst_case_blocks() fits; a cut view beats one Slack refuses outright.
    return {"type": "home", "blocks": blocks[:HOME_BLOCK_LIMIT]}


def _dashboard_button() -> dict[str, Any]:
    return {"type": "actions", "block_id": "home-dashboard",
            "elements": [button("Open dashboard", HOME_OPEN_DASHBOARD, links.SCOPE_ALL)]}


def _greeting(member: TeamMember) -> str:
    # Until the profile arrives the stored name is the Slack id: no way to greet anyone by name.
    first_name = member.name.split()[0] if member.profile_synced_at and member.name.strip() else "there"
    return f"Hi {first_name}, here is your campaign overview"  # header is plain_text: never parsed


def _summary(data: HomeData) -> str:
    counts = {group.bucket: group.total for group in data.task_groups}
    parts = [
        f"{counts.get(Bucket.OVERDUE, 0)} overdue",
        f"{counts.get(Bucket.TODAY, 0)} due today",
        f"{counts.get(Bucket.THIS_WEEK, 0)} due this week",
        _plural(data.approvals_total, "approval") + " waiting",
        f"{data.unread_total} unread",
    ]
    return " · ".join(parts) + f" · dates in {escape(data.member.timezone)}"


# ---------------------------------------------------------------- tasks


def _tasks(data: HomeData, link: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [divider(), header("Your tasks")]
    if not any(group.total for group in data.task_groups):
        return [*blocks, section("Nothing assigned to you right now. :tada:")]
    room = TASK_ROWS_SHOWN
    for group in data.task_groups:
        if not group.total:
            continue
        shown = group.tasks[: min(TASKS_PER_BUCKET, room)]
        room -= len(shown)
        blocks += _task_group(group, shown, data, link)
    return blocks


def _task_group(group: TaskGroup, shown: list[Task], data: HomeData, link: str) -> list[dict[str, Any]]:
    icon, title, phrase = BUCKET_TITLES[group.bucket]
    blocks = [section(f"{icon} *{title}* ({group.total})")]
    for task in shown:
        blocks += [section(_task_text(task, group.bucket, data)), _task_buttons(task)]
    hidden = group.total - len(shown)
    if hidden > 0:
        blocks.append(context(f"{hidden} more {phrase}: `/task mine` or {link}."))
    return blocks


def _task_text(task: Task, bucket: Bucket, data: HomeData) -> str:
    campaign = task.campaign
    lines = [f"{STATUS_ICONS[task.status]} *{task_title(task, 150)}*"]
    facts = [f"{campaign_ref(campaign)} {fit_escaped(campaign.name, 60)}", _due_phrase(task, bucket, data)]
    facts.append(STATUS_WORDS.get(task.status, task.status.value))
    if task.is_milestone:
        facts.append(":diamond_shape_with_a_dot_inside: milestone")
    if task.on_critical_path:
        facts.append(":fire: critical")
    lines.append(" · ".join(facts))
    if task.status is TaskStatus.BLOCKED and task.blocked_reason:
        lines.append(f"_Blocked:_ {fit_escaped(task.blocked_reason, 300)}")
    return "\n".join(lines)


def _due_phrase(task: Task, bucket: Bucket, data: HomeData) -> str:
    if task.due_at is None:
        return "no due date"
    tz = data.member.timezone
    if bucket is Bucket.TODAY:
        return "due today"
    if bucket is Bucket.OVERDUE:
        days = (data.today - task.due_at.astimezone(ZoneInfo(tz)).date()).days
        return f"was due {day_label(task.due_at, tz)} ({_plural(days, 'day')} ago)"
    return f"due {day_label(task.due_at, tz)}"


def _task_buttons(task: Task) -> dict[str, Any]:
    value = encode_id(task.id)
    ref = format_ref(RefKind.TASK, task.id)
    elements = []
    if task.status is not TaskStatus.IN_PROGRESS:
        label = "Resume" if task.status is TaskStatus.BLOCKED else "Start"
        elements.append(button(label, TASK_START, value))
    done = button("Done", TASK_DONE, value, style="primary")
    # No undo for Done from Slack yet, and it re-plans the campaign: one more click is cheap.
    done["confirm"] = {
        "title": plain("Mark it done?", 100),
        "text": plain(f"{ref} will be marked done and its campaign re-planned.", 300),
        "confirm": plain("Done", 30),
        "deny": plain("Not yet", 30),
    }
    elements.append(done)
    if task.status is not TaskStatus.BLOCKED:
        elements.append(button("Block", TASK_BLOCK, value))
    return {"type": "actions", "block_id": f"task-{task.id}", "elements": elements}


# ---------------------------------------------------------------- approvals


def _approvals(data: HomeData, link: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [divider(), header("Waiting for your approval")]
    if not data.approvals:
        return [*blocks, section("Nothing is waiting for your approval.")]
    for pending in data.approvals[:APPROVALS_SHOWN]:
        blocks += [section(_approval_text(pending, data)), _approval_buttons(pending)]
    hidden = data.approvals_total - min(len(data.approvals), APPROVALS_SHOWN)
    if hidden > 0:
        blocks.append(context(f"{_plural(hidden, 'more approval')} waiting: `/approval mine` or {link}."))
    return blocks


def _approval_text(pending: PendingApproval, data: HomeData) -> str:
    approval, campaign = pending.approval, pending.campaign
    ref = format_ref(RefKind.APPROVAL, approval.id)
    lines = [
        f":ballot_box_with_check: *{ref}* {fit_escaped(approval.stage, 100)} · "
        f"*{campaign_ref(campaign)}* {fit_escaped(campaign.name, 100)}"
    ]
    facts = []
    if approval.deadline is not None:
        when = day_label(approval.deadline, data.member.timezone)
        facts.append(f":warning: was due {when}" if approval.deadline < data.now else f"due {when}")
    if approval.delegated_to_id == data.member.id and approval.approver_id != data.member.id:
        facts.append(f"delegated to you by {user_mention(approval.approver.slack_user_id)}")
    elif approval.delegated_to is not None and approval.delegated_to_id != data.member.id:
        facts.append(f"delegated to {user_mention(approval.delegated_to.slack_user_id)}")
    if approval.round > 1:
        facts.append(f"round {approval.round}")
    if facts:
        lines.append(" · ".join(facts))
    return "\n".join(lines)


def _approval_buttons(pending: PendingApproval) -> dict[str, Any]:
    value = encode_id(pending.approval.id)
    return {
        "type": "actions",
        "block_id": f"approval-{pending.approval.id}",
        "elements": [
            button("Approve", APPROVAL_APPROVE, value, style="primary"),
            button("Reject", APPROVAL_REJECT, value, style="danger"),
        ],
    }


# ---------------------------------------------------------------- campaigns


def _campaigns(data: HomeData, link: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [divider(), header("Campaigns you own")]
    if not data.campaigns:
        return [*blocks, section('None yet. Start one with `/campaign new "Spring launch" product_launch 2027-03-01`.')]
    blocks += [section(_campaign_text(health, data)) for health in data.campaigns[:CAMPAIGNS_SHOWN]]
    hidden = data.campaigns_total - min(len(data.campaigns), CAMPAIGNS_SHOWN)
    if hidden > 0:
        blocks.append(context(f"{hidden} more: `/campaign list` or {link}."))
    return blocks


def _campaign_text(health: CampaignHealth, data: HomeData) -> str:
    campaign = health.campaign
    facts = [STATUS_BADGES[campaign.status], f"launches {launch_phrase(campaign, data.today)}"]
    if health.risk is None:
        facts.insert(0, "no plan yet")
    else:
        facts.insert(0, RISK_BADGES[health.risk])
        facts.insert(1, f"{health.buffer_left_pct or 0:.0f}% of the buffer left")
        if health.projected_launch and health.projected_launch != campaign.launch_date:
            facts.append(f"projected {health.projected_launch:%a %d %b}")
        facts.append(f"{health.progress_pct or 0:.0f}% done")
    if health.assets or health.content_errors:
        facts.append(_content_fact(health))
    ref = campaign_ref(campaign)
    stages = "".join(f"\n{stage_line(line, ref)}" for line in health.stages)
    return f"*{ref}*  {fit_escaped(campaign.name, 150)}\n" + " · ".join(facts) + stages


def _content_fact(health: CampaignHealth) -> str:
    """`:paperclip: 3 assets (1 content error, 2 warnings)`: `/campaign checks` lists them."""
    found = [_plural(health.content_errors, "content error")] if health.content_errors else []
    found += [_plural(health.content_warnings, "warning")] if health.content_warnings else []
    icon = ":x:" if health.content_errors else ":paperclip:"
    return f"{icon} {_plural(health.assets, 'asset')}" + (f" ({', '.join(found)})" if found else "")


# ---------------------------------------------------------------- inbox


def _inbox(data: HomeData, link: str) -> list[dict[str, Any]]:
    title = f"Inbox ({data.unread_total} unread)" if data.unread_total else "Inbox"
    blocks: list[dict[str, Any]] = [divider(), header(title)]
    if not data.inbox:
        return [*blocks, section("No notifications yet.")]
    shown = data.inbox[:INBOX_SHOWN]
    blocks.append(section("\n".join(_notification_line(notification, data) for notification in shown)))
    older_unread = data.unread_total - sum(notification.read_at is None for notification in shown)
    note = ":large_blue_circle: new since you last looked; opening this tab marks what it shows as read."
    if older_unread > 0:
        note += f" {older_unread} older unread: {link}."
    blocks.append(context(note))
    return blocks


def _notification_line(notification: Notification, data: HomeData) -> str:
    when = _at(notification.scheduled_for, data.member.timezone)
    marker = ":large_blue_circle:" if notification.read_at is None else ":white_small_square:"
    text = fit_escaped(notification_summary(notification), 200)
    if notification.read_at is None:
        text = f"*{text}*"
    return f"{marker} {when} · {text}"


# The inbox's words for a kind, when a payload has no line of its own (`summary`, `text`, `title`).
INBOX_WORDS: dict[str, str] = {  # by Kind; tests/test_kinds.py checks every kind has its words
    Kind.TASK_REMINDER: "A task is coming up",
    Kind.TASK_OVERDUE: "A task is overdue",
    Kind.TASK_ESCALATION: "Late work on your campaign",
    Kind.APPROVAL_REMINDER: "A decision is due",
    Kind.APPROVAL_ESCALATION: "A decision is late",
    Kind.DIGEST: "Your morning summary",
    Kind.CAMPAIGN_STATUS: "A campaign's weekly status",
    Kind.PLAN_ALERT: "Plan alert",
    Kind.DELIVERY_FAILED: "A message could not be delivered",
    Kind.STAGE_UNSTAFFED: "A sign-off stage has nobody to approve it",
    Kind.CONTENT_CHECKS_FAILED: "Content errors hold a sign-off stage",
    Kind.CAMPAIGN_CREATED: "Campaign created",
    Kind.AGENT_HANDOFF_RESULT: "Marketing agent hand-off",
    Kind.APPROVAL_REQUEST: "Your sign-off is requested",
    Kind.APPROVAL_COPY_UPDATE: "A sign-off moved on",
    Kind.APPROVAL_OUTCOME: "A sign-off stage was decided",
}


def notification_summary(notification: Notification) -> str:
    """The line an inbox shows: the payload's `summary` or `text`, else the kind in words. Not escaped."""
    payload = notification.payload if isinstance(notification.payload, dict) else {}
    for key in ("summary", "text", "title"):
        value = payload.get(key)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())
    return INBOX_WORDS.get(notification.kind) or notification.kind.replace("_", " ").replace(".", ": ").capitalize()


# ---------------------------------------------------------------- helpers


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _at(moment: datetime, tz: str) -> str:
    return f"{moment.astimezone(ZoneInfo(tz)):%d %b %H:%M}"
