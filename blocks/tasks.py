"""Task messages: a campaign's task list, a task's change, assignment results, plan alerts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from blocks.campaigns import RISK_BADGES, task_title
from blocks.text import context, day_label, escape, fit_escaped, header, message, section, user_mention
from models import Campaign, Task, TaskStatus
from services.campaigns import campaign_ref
from services.planning.assignment import Choice
from services.plans import PlanSummary

TASKS_SHOWN = 40
STATUS_ICONS = {TaskStatus.TODO: ":white_circle:", TaskStatus.IN_PROGRESS: ":large_blue_circle:",
                TaskStatus.BLOCKED: ":no_entry:", TaskStatus.DONE: ":white_check_mark:", TaskStatus.CANCELLED: ":x:"}


def task_line(task: Task, viewer_tz: str) -> str:
    who = user_mention(task.assignee.slack_user_id) if task.assignee else "_unassigned_"
    due = f"due {day_label(task.due_at, viewer_tz)}" if task.due_at else "no due date"
    flags = " · :fire: critical" if task.on_critical_path and task.status is not TaskStatus.DONE else ""
    kind = ":diamond_shape_with_a_dot_inside: milestone · " if task.is_milestone else ""
    blocked = f"\n    blocked: {fit_escaped(task.blocked_reason, 200)}" if task.blocked_reason else ""
    return f"{STATUS_ICONS[task.status]} {task_title(task)} · {kind}{who} · {due}{flags}{blocked}"


def task_list(campaign: Campaign, tasks: Sequence[Task], *, viewer_tz: str) -> dict[str, Any]:
    ref = campaign_ref(campaign)
    if not tasks:
        return message(f"{ref} has no tasks.", [section(f"{ref} has no tasks yet.")])
    shown = tasks[:TASKS_SHOWN]
    done = sum(task.status is TaskStatus.DONE for task in tasks)
    blocks = [header(f"{ref} · {campaign.name}"[:150]),
              context(f"{len(tasks)} tasks, {done} done · in plan order · dates in {escape(viewer_tz)}")]
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


def task_changed(task: Task, note: str, plan: PlanSummary | None, *, viewer_tz: str) -> dict[str, Any]:
    """`note` is already escaped."""
    blocks = [section(f"{note}\n{task_line(task, viewer_tz)}")]
    effect = plan_effect(plan)
    if effect:
        blocks.append(context(effect))
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


def plan_alert(plan: PlanSummary, *, because: str) -> dict[str, Any]:
    """A direct message to the owner when a re-plan crosses a threshold. `because` is escaped."""
    ref = campaign_ref(plan.campaign)
    lines = "\n".join(f"• {escape(alert)}" for alert in plan.alerts)
    return message(
        f"{ref} {fit_escaped(plan.campaign.name, 80)}: plan alert",
        [section(f":rotating_light: *{ref} {fit_escaped(plan.campaign.name, 120)}*\n{lines}"),
         context(f"After: {because}. See `/campaign show {ref}`.")],
    )


TASK_USAGE = [
    ("`/task list CM-12`", "a campaign's tasks in plan order"),
    ("`/task start T-42` · `/task done T-42`", "work on a task (assignee, owner or admin)"),
    ("`/task block T-42 waiting for legal`", "say what it waits for"),
    ("`/task due T-42 2027-03-01` · `/task estimate T-42 3d`", "move or re-size it; the plan follows"),
    ("`/task assign T-42 @alice` · `/task assign T-42 auto`", "choose who does it (owner or admin)"),
]


def task_help(note: str | None = None) -> dict[str, Any]:
    """`note` is already escaped."""
    lines = "\n".join(f"{usage}: {what}" for usage, what in TASK_USAGE)
    blocks = [section(f":warning: {note}")] if note else []
    blocks += [header("Campaign Manager: /task"), section(lines),
               context("Durations: 4h, 2d, 1.5d (a day is 8 working hours). Dates: YYYY-MM-DD.")]
    return message(note or "How to use /task", blocks)
