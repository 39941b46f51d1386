"""Task messages: a campaign's task list, a new task, a task's change, my tasks, comments, assignment results,
plan alerts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from blocks.campaigns import RISK_BADGES, plan_change_line, task_title
from blocks.text import context, day_label, escape, fit_escaped, header, message, section, user_mention
from models import Campaign, Comment, Task, TaskStatus
from services.campaigns import campaign_ref
from services.home import Bucket, TaskGroup
from services.planning.assignment import Choice
from services.plans import PlanSummary, late_working_days
from services.refs import RefKind, format_ref
from services.tasks import CreatedTask

TASKS_SHOWN = 40
STATUS_ICONS = {TaskStatus.TODO: ":white_circle:", TaskStatus.IN_PROGRESS: ":large_blue_circle:",
                TaskStatus.BLOCKED: ":no_entry:", TaskStatus.DONE: ":white_check_mark:", TaskStatus.CANCELLED: ":x:"}


def task_line(task: Task, viewer_tz: str) -> str:
    who = user_mention(task.assignee.slack_user_id) if task.assignee else "_unassigned_"
    due = f"due {day_label(task.due_at, viewer_tz)}" if task.due_at else "no due date"
    if not task.is_milestone:  # a milestone's lateness is the launch's: the campaign shows it
        due += _lateness(task, viewer_tz)
    flags = " · :fire: critical" if task.on_critical_path and task.status is not TaskStatus.DONE else ""
    kind = ":diamond_shape_with_a_dot_inside: milestone · " if task.is_milestone else ""
    blocked = f"\n    blocked: {fit_escaped(task.blocked_reason, 200)}" if task.blocked_reason else ""
    return f"{STATUS_ICONS[task.status]} {task_title(task)} · {kind}{who} · {due}{flags}{blocked}"


def _lateness(task: Task, viewer_tz: str) -> str:
    """For work that cannot be done in time (a compressed plan, or a date set too early): when it can be."""
    late = late_working_days(task)
    if not late or task.earliest_finish_at is None:
        return ""
    days = f"{late} working day{'s' if late != 1 else ''}"
    return f" · :warning: can finish {day_label(task.earliest_finish_at, viewer_tz)} at the earliest, {days} late"


def task_list(campaign: Campaign, tasks: Sequence[Task], *, viewer_tz: str) -> dict[str, Any]:
    """`tasks` in plan order, by due date (`services.tasks.list_tasks`)."""
    ref = campaign_ref(campaign)
    if not tasks:
        return message(f"{ref} has no tasks.", [section(f"{ref} has no tasks yet.")])
    shown = tasks[:TASKS_SHOWN]
    done = sum(task.status is TaskStatus.DONE for task in tasks)
    blocks = [header(f"{ref} · {campaign.name}"[:150]),
              context(f"{len(tasks)} tasks, {done} done · in plan order, by due date · dates in {escape(viewer_tz)}")]
    # Several tasks per section keeps long plans inside Slack's 50-block limit.
    for start in range(0, len(shown), 10):
        blocks.append(section("\n".join(task_line(task, viewer_tz) for task in shown[start:start + 10])))
    if len(tasks) > len(shown):
        blocks.append(context(f"…and {len(tasks) - len(shown)} more."))
    return message(f"{ref}: {len(tasks)} tasks", blocks)


def plan_effect(plan: PlanSummary | None) -> str:
    if plan is None:
        return ""
    timeline = plan.timeline
    text = f"Plan: {RISK_BADGES[plan.risk]}, {plan.buffer_left_pct:.0f}% of the buffer left"
    if timeline.projected_launch and timeline.projected_launch != plan.campaign.launch_date:
        text += f", launch projected {timeline.projected_launch:%a %d %b}"
    return text + "."


def plan_notes(plan: PlanSummary | None) -> list[str]:
    """The plan's state after a change and, in one line, what the re-plan changed."""
    if plan is None:
        return []
    notes = [plan_effect(plan)]
    if plan.change is not None:
        notes.append(plan_change_line(plan.change, plan.campaign.launch_date))
    if plan.opened_stages:  # the change finished work a sign-off reviews
        names = ", ".join(f"*{fit_escaped(name, 100)}*" for name in plan.opened_stages)
        notes.append(f":memo: Open for sign-off now: {names}; the approvers have the request.")
    return notes


def task_changed(task: Task, note: str, plan: PlanSummary | None, *, viewer_tz: str) -> dict[str, Any]:
    """`note` is already escaped."""
    blocks = [section(f"{note}\n{task_line(task, viewer_tz)}")]
    notes = plan_notes(plan)
    if notes:
        blocks.append(context(*notes))
    return message(note, blocks)


def assignment_results(campaign: Campaign, results: Sequence[tuple[Task, Choice]]) -> dict[str, Any]:
    ref = campaign_ref(campaign)
    assigned = [(task, choice) for task, choice in results if choice.member_id is not None]
    if not results:
        return message(f"{ref}: nothing to assign.", [section(f"Every open task of {ref} already has someone.")])
    lines = []
    for task, choice in results[:TASKS_SHOWN]:
        # The explanation starts with the person's name, or with "Nobody fits".
        icon = ":bust_in_silhouette:" if choice.member_id else ":grey_question:"
        lines.append(f"• {task_title(task, 60)} {icon} {escape(choice.explanation)}")
    blocks = [section(f":busts_in_silhouette: {ref}: assigned {len(assigned)} of {len(results)} tasks.")]
    for start in range(0, len(lines), 8):
        blocks.append(section("\n".join(lines[start:start + 8])))
    if len(results) > TASKS_SHOWN:
        blocks.append(context(f"…and {len(results) - TASKS_SHOWN} more; see `/task list {ref}`."))
    return message(f"{ref}: assigned {len(assigned)} of {len(results)} tasks", blocks)


def _refs(tasks: Sequence[Task]) -> str:
    return ", ".join(f"`{format_ref(RefKind.TASK, task.id)}`" for task in tasks)


def task_created(created: CreatedTask, *, viewer_tz: str) -> dict[str, Any]:
    """A new task, its links and what it did to the plan."""
    task = created.task
    ref = format_ref(RefKind.TASK, task.id)
    campaign = task.campaign
    lines = [f":heavy_plus_sign: {ref} added to {campaign_ref(campaign)} *{fit_escaped(campaign.name, 150)}*",
             task_line(task, viewer_tz)]
    if created.after:
        lines.append(f"Waits for {_refs(created.after)}")
    if created.before:
        lines.append(f"Comes before {_refs(created.before)}")
    blocks = [section("\n".join(lines))]
    notes = plan_notes(created.plan)
    notes.append(f"`/task list {campaign_ref(campaign)}` shows it in plan order.")
    blocks.append(context(*notes))
    return message(f"{ref} added: {fit_escaped(task.title, 150)}", blocks)


MINE_SHOWN = 8  # per bucket: services.home.my_tasks loads this many
BUCKETS = {
    Bucket.OVERDUE: (":rotating_light:", "Overdue", "overdue"),
    Bucket.TODAY: (":date:", "Due today", "due today"),
    Bucket.THIS_WEEK: (":spiral_calendar_pad:", "This week", "due this week"),
    Bucket.LATER: (":hourglass_flowing_sand:", "Later", "later"),
}


def my_tasks(groups: Sequence[TaskGroup], *, viewer_tz: str, today: date) -> dict[str, Any]:
    """`/task mine`: open tasks assigned to me, by when they are due in my calendar."""
    total = sum(group.total for group in groups)
    if not total:
        return message("Nothing assigned to you right now.",
                       [section(":tada: Nothing assigned to you right now. `/task list CM-12` shows a campaign's tasks.")])
    blocks: list[dict[str, Any]] = [header(f"Your open tasks: {total}"),
                                    context(f"Dates in {escape(viewer_tz)} · soonest due first in each group")]
    for group in groups:
        if not group.total:
            continue
        icon, title, phrase = BUCKETS[group.bucket]
        lines = [_mine_line(task, group.bucket, viewer_tz, today) for task in group.tasks[:MINE_SHOWN]]
        blocks.append(section(f"{icon} *{title}* ({group.total})\n" + "\n".join(lines)))
        hidden = group.total - min(len(group.tasks), MINE_SHOWN)
        if hidden > 0:
            blocks.append(context(f"{hidden} more {phrase}; the App Home and `/task list CM-12` show them all."))
    return message(f"You have {total} open tasks", blocks)


def _mine_line(task: Task, bucket: Bucket, viewer_tz: str, today: date) -> str:
    campaign = task.campaign
    if task.due_at is None:
        due = "no due date"
    elif bucket is Bucket.OVERDUE:
        days = (today - task.due_at.astimezone(ZoneInfo(viewer_tz)).date()).days
        due = f"was due {day_label(task.due_at, viewer_tz)} ({days} day{'s' if days != 1 else ''} ago)"
    elif bucket is Bucket.TODAY:
        due = "due today"
    else:
        due = f"due {day_label(task.due_at, viewer_tz)}"
    flags = " · :fire: critical" if task.on_critical_path else ""
    blocked = " · blocked" if task.status is TaskStatus.BLOCKED else ""
    return (f"{STATUS_ICONS[task.status]} {task_title(task, 100)} · {campaign_ref(campaign)} "
            f"{fit_escaped(campaign.name, 60)} · {due}{blocked}{flags}")


COMMENT_SHOWN = 2500  # escaped characters of the comment echoed back; a section holds 3000


def comment_added(task: Task, comment: Comment) -> dict[str, Any]:
    """The commenter's receipt: the comment as stored, escaped and quoted."""
    ref = format_ref(RefKind.TASK, task.id)
    shown = fit_escaped(comment.body, COMMENT_SHOWN)
    quoted = "\n".join(f">{line}" for line in shown.splitlines() or [""])
    blocks = [section(f":speech_balloon: Comment on {task_title(task, 150)} saved.\n{quoted}")]
    if len(shown) < len(escape(comment.body)):
        blocks.append(context("Shortened here; the whole comment is kept."))
    return message(f"Comment on {ref} saved", blocks)


TASK_USAGE = [
    ("`/task mine`", "your open tasks: overdue, today, this week, later"),
    ("`/task new`", "add a task in a form (or use the message shortcut *Create task from message*)"),
    ("`/task list CM-12`", "a campaign's tasks in plan order"),
    ("`/task start T-42` · `/task done T-42`", "work on a task (assignee, owner or admin)"),
    ("`/task block T-42 waiting for legal`", "say what it waits for"),
    ("`/task due T-42 2027-03-01` · `/task estimate T-42 3d`", "move or re-size it; the plan follows"),
    ("`/task assign T-42 @alice` · `/task assign T-42 auto`", "choose who does it (owner or admin)"),
    ("`/task comment T-42 The copy is ready`", "leave a note on a task (the campaign's team)"),
]


def task_help(note: str | None = None) -> dict[str, Any]:
    """`note` is already escaped."""
    lines = "\n".join(f"{usage}: {what}" for usage, what in TASK_USAGE)
    blocks = [section(f":warning: {note}")] if note else []
    blocks += [header("Campaign Manager: /task"), section(lines),
               context("Durations: 4h, 2d, 1.5d (a day is 8 working hours). Dates: YYYY-MM-DD.")]
    return message(note or "How to use /task", blocks)
