"""Campaign messages: created (with its plan), list, details, templates, lifecycle moves, channel."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from blocks.approvals import stage_line
from blocks.content import assets_text
from blocks.text import (
    channel_mention,
    context,
    day_label,
    divider,
    escape,
    fit_escaped,
    header,
    message,
    section,
    user_mention,
)
from models import Campaign, CampaignStatus, Task
from services.approval_stages import StageLine
from services.assets import AssetList
from services.campaign_created import CampaignCreated, Culprit
from services.campaigns import LIFECYCLE, Move, StatusChange, campaign_ref
from services.planning.templates import Template
from services.plans import PlanChange, PlanSummary
from services.refs import RefKind, format_ref

STATUS_BADGES = {
    CampaignStatus.PLANNING: ":spiral_note_pad: planning",
    CampaignStatus.ACTIVE: ":large_green_circle: active",
    CampaignStatus.PAUSED: ":double_vertical_bar: paused",
    CampaignStatus.COMPLETED: ":white_check_mark: completed",
    CampaignStatus.CANCELLED: ":x: cancelled",
}
RISK_BADGES = {"on track": ":large_green_circle: on track", "at risk": ":large_yellow_circle: at risk",
               "late": ":red_circle: late"}
CRITICAL_SHOWN = 8
NEWLY_CRITICAL_SHOWN = 6  # refs in a plan's change line; more are counted


def _name(campaign: Campaign, limit: int = 200) -> str:
    return fit_escaped(campaign.name, limit)


def launch_phrase(campaign: Campaign, today: date) -> str:
    return _launch_phrase(campaign.launch_date, today)


def _launch_phrase(launch: date, today: date) -> str:
    days = (launch - today).days
    when = "today" if days == 0 else f"in {days} days" if days > 0 else f"{-days} days ago"
    return f"{launch:%a %d %b %Y} ({when})"


def _days(hours_or_days: float) -> str:
    # Two decimals at most, so quarter days (2h) read as they are: 18.25, not 18.2.
    return f"{hours_or_days:.2f}".rstrip("0").removesuffix(".")


def _plural_days(days: float) -> str:
    return f"{_days(days)} day" if days == 1 else f"{_days(days)} days"


def task_title(task: Task, limit: int = 80) -> str:
    return f"`{format_ref(RefKind.TASK, task.id)}` {fit_escaped(task.title, limit)}"


def compressed_warning(plan: PlanSummary) -> str:
    return _compressed_text(plan.timeline.compressed_days,
                            [Culprit(task.id, task.title, task.duration_hours / 8) for task in plan.culprits])


def _compressed_text(days_short: int, culprits: Sequence[Culprit]) -> str:
    named = ", ".join(f"`{format_ref(RefKind.TASK, culprit.task_id)}` {fit_escaped(culprit.title, 50)} "
                      f"({_days(culprit.days)}d)" for culprit in culprits)
    return (f":warning: *Compressed:* the plan is {days_short} working days short of a "
            f"comfortable fit before launch.{' Critical work causing it: ' + named + '.' if named else ''}")


def plan_change_line(change: PlanChange, target: date) -> str:
    """What a (re)plan changed, in one line: the projected launch, the buffer left, what became critical."""
    critical = [task.id for task in change.newly_critical]
    if change.first:
        return _first_plan_line(change.launch_after, target, change.buffer_left_after, critical)
    after = change.launch_after or target
    before = change.launch_before or target
    launch = (f"launch unchanged ({after:%a %d %b})" if before == after
              else f"launch moved from {before:%a %d %b} to {after:%a %d %b}")
    parts = ["Re-plan: " + launch,
             f"buffer left {change.buffer_left_before:.0f}% → {change.buffer_left_after:.0f}%"]
    if critical:
        parts.append("newly critical: " + _task_refs(critical))
    elif change.critical_known:
        parts.append("no task became critical")
    return " · ".join(parts)


def _first_plan_line(launch_after: date | None, target: date, buffer_left: float, critical: Sequence[int]) -> str:
    after = launch_after or target
    launch = (f"launch {after:%a %d %b} on target" if after <= target
              else f"launch projected {after:%a %d %b}, after the target {target:%a %d %b}")
    parts = ["Planned: " + launch, f"buffer left {buffer_left:.0f}%"]
    if critical:
        parts.append("critical: " + _task_refs(critical))
    return " · ".join(parts)


def _task_refs(task_ids: Sequence[int]) -> str:
    refs = ", ".join(f"`{format_ref(RefKind.TASK, task_id)}`" for task_id in task_ids[:NEWLY_CRITICAL_SHOWN])
    more = f" and {len(task_ids) - NEWLY_CRITICAL_SHOWN} more" if len(task_ids) > NEWLY_CRITICAL_SHOWN else ""
    return refs + more


def last_change_line(change: PlanChange, target: date, viewer_tz: str) -> str:
    """`/campaign show`: the latest re-plan, from the snapshots (which do not keep the critical path)."""
    when = f", {day_label(change.at, viewer_tz)}" if change.at else ""
    line = plan_change_line(change, target).removeprefix("Re-plan: ")
    reason = fit_escaped(" ".join(change.reason.split()), 100)  # one line, whatever the reason holds
    return f"Last re-plan ({reason}{when}): {line}"


def campaign_created(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The "created" message, from its stored payload (`services.campaign_created`): the outbox row's
    Slack rendering, and the typed `/campaign new` reply."""
    created = CampaignCreated.from_payload(payload)
    ref, name = created.ref, fit_escaped(created.campaign_name, 200)
    blocks = [
        section(
            f":rocket: {ref} created: *{name}*",
            fields=[
                f"*Launch*\n{_launch_phrase(created.launch_date, created.created_on)}",
                f"*Template*\n{escape(created.template_title)}",
                f"*Plan*\n{created.tasks} tasks, {created.milestones} milestones",
                f"*Critical path*\n{_days(created.critical_days)} working days",
                f"*Buffer*\n{_plural_days(created.buffer_days)} before launch",
                f"*Owner*\n{user_mention(created.owner)}",
            ],
        )
    ]
    if created.compressed_days > 0:
        blocks.append(section(_compressed_text(created.compressed_days, created.culprits)))
    if created.planned:
        blocks.append(context(_first_plan_line(created.projected_launch, created.launch_date,
                                               created.buffer_left_pct, created.critical)))
    blocks.append(context(f"Next: `/campaign assign {ref}` picks people for the tasks · `/campaign show {ref}` · "
                          f"`/task list {ref}`"))
    flag = " (compressed)" if created.compressed_days > 0 else ""
    return message(f"{ref} created: {name}: {created.tasks} tasks{flag}", blocks)


def campaign_created_mail(payload: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The same message as an email's subject and plain lines (`blocks.emails` escapes them for HTML)."""
    created = CampaignCreated.from_payload(payload)
    lines = [created.summary,
             f"Launch {created.launch_date.isoformat()}, template {created.template_title}.",
             f"Plan: {created.tasks} tasks, {created.milestones} milestones; the critical path takes "
             f"{_days(created.critical_days)} working days, with {_plural_days(created.buffer_days)} of buffer."]
    if created.compressed_days > 0:
        lines.append(f"Compressed: the plan is {created.compressed_days} working days short of a comfortable fit.")
    lines.append(f"Next, in Slack: /campaign assign {created.ref} picks people for the tasks.")
    return created.summary, lines


def campaign_list(campaigns: Sequence[Campaign], *, total: int, today: date, filter_label: str) -> dict[str, Any]:
    if not campaigns:
        return message(
            f"No {filter_label} campaigns.",
            [section(f"No {filter_label} campaigns yet. Start one with `/campaign new \"Name\" product_launch 2027-03-01`.")],
        )
    blocks: list[dict[str, Any]] = [header(f"Campaigns ({filter_label}): {total}")]
    for campaign in campaigns:
        blocks.append(
            section(
                f"*{campaign_ref(campaign)}*  {_name(campaign, 150)}\n"
                f"{STATUS_BADGES[campaign.status]} · launches {launch_phrase(campaign, today)} · "
                f"owner {user_mention(campaign.owner.slack_user_id)}"
            )
        )
    if total > len(campaigns):
        blocks.append(context(f"Showing the first {len(campaigns)} of {total}, soonest launch first."))
    return message(f"{total} {filter_label} campaigns", blocks)


def email_results_line(summary: Mapping[str, Any]) -> str:
    """The Slack line of `email_results_text`."""
    return ":email: *Email*: " + email_results_text(summary)


def email_results_text(summary: Mapping[str, Any]) -> str:
    """`1,234 recipients, 98% delivered, 41% opened, 7% clicked, 3 bounces, 2 unsubscribed` from
    `EmailResults.to_payload()` (also as stored in a weekly status: read defensively, numbers only)."""

    def count(key: str) -> int:
        value = summary.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

    def pct(key: str) -> str | None:
        value = summary.get(key)
        if not (isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 100):
            return None
        shown = f"{value:.0f}"
        if shown in ("0", "100") and value not in (0, 100):  # 99.5% delivered is not everyone
            shown = f"{value:.1f}"
        return f"{shown}%"

    def plural(number: int, word: str) -> str:
        return f"{number:,} {word}" + ("" if number == 1 else "s")

    parts = [plural(count("recipients"), "recipient")]
    parts += [f"{shown} {word}" for key, word in (("delivered_pct", "delivered"), ("opened_pct", "opened"),
                                                   ("clicked_pct", "clicked")) if (shown := pct(key))]
    parts += [plural(count("bounced"), "bounce"), f"{count('unsubscribed'):,} unsubscribed"]
    if count("spam_reports"):
        parts.append(plural(count("spam_reports"), "spam report"))
    if count("blocked"):
        parts.append(f"{count('blocked'):,} blocked")
    return ", ".join(parts)


def campaign_detail(
    campaign: Campaign, plan: PlanSummary | None, *, template_title: str, today: date, viewer_tz: str,
    stages: Sequence[StageLine] = (), change: PlanChange | None = None, email: Mapping[str, Any] | None = None,
    assets: AssetList | None = None,
) -> dict[str, Any]:
    """`change`: the latest re-plan (`plans.last_change`), shown under the plan. `email`: Mailjet's results
    for the campaign (`EmailResults.to_payload()`), None before any came in. `assets`: its assets and what the
    content checks find."""
    ref = campaign_ref(campaign)
    fields = [
        f"*Status*\n{STATUS_BADGES[campaign.status]}",
        f"*Launch*\n{launch_phrase(campaign, today)}",
        f"*Owner*\n{user_mention(campaign.owner.slack_user_id)}",
        f"*Template*\n{escape(template_title)}",
    ]
    if campaign.channel_id:
        fields.append(f"*Channel*\n{channel_mention(campaign.channel_id)}")
    if plan is not None:
        timeline = plan.timeline
        fields.append(f"*Risk*\n{RISK_BADGES[plan.risk]}")
        fields.append(f"*Buffer left*\n{plan.buffer_left_pct:.0f}% of {_plural_days(timeline.buffer_hours / 8)}")
        if timeline.projected_launch and timeline.projected_launch != campaign.launch_date:
            fields.append(f"*Projected launch*\n{timeline.projected_launch:%a %d %b %Y}")
        fields.append(f"*Progress*\n{timeline.progress_pct:.0f}% of the work done")
    blocks = [header(f"{ref} · {campaign.name}"), section(f"*{_name(campaign)}*", fields=fields[:10])]
    if campaign.description:
        blocks.append(section(fit_escaped(campaign.description, 2900)))
    if plan is not None:
        blocks += _plan_blocks(plan, viewer_tz)
        if change is not None:
            blocks.append(context(last_change_line(change, campaign.launch_date, viewer_tz)))
    if stages:
        blocks.append(section(sign_off_text(stages, ref)))
    if assets is not None:
        blocks.append(section(assets_text(assets.content, assets.tasks, ref)))
    if email is not None:
        blocks.append(section(email_results_line(email)))
    blocks += [divider(), context(f"Created {campaign.created_at:%d %b %Y}. Ref `{ref}`. Tasks: `/task list {ref}`.")]
    return message(f"{ref}: {_name(campaign)}", blocks)


def sign_off_text(stages: Sequence[StageLine], ref: str) -> str:
    """Every approval stage with its state in words, in running order (`section` cuts it to fit)."""
    return "*Sign-off*\n" + "\n".join(stage_line(line, ref) for line in stages)


def _plan_blocks(plan: PlanSummary, viewer_tz: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if plan.compressed:
        blocks.append(section(compressed_warning(plan)))
    if plan.milestones:
        milestones = sorted(plan.milestones, key=lambda task: (task.due_at is None, task.due_at or 0, task.id))
        lines = [f"• {fit_escaped(task.title, 80)}: {day_label(task.due_at, viewer_tz) if task.due_at else 'unscheduled'}"
                 + (" :white_check_mark:" if task.completed_at else "") for task in milestones]
        blocks.append(section("*Milestones* (by due date)\n" + "\n".join(lines)))
    critical = [task for task in plan.remaining_critical_path if not task.is_milestone]
    if critical:
        lines = [f"• {task_title(task)} · due {day_label(task.due_at, viewer_tz) if task.due_at else '?'}"
                 for task in critical[:CRITICAL_SHOWN]]
        more = f"\n…and {len(critical) - CRITICAL_SHOWN} more" if len(critical) > CRITICAL_SHOWN else ""
        # Path order is date order: each task on it is due after the one before (plans._planned_finishes).
        blocks.append(section(f"*Critical path* ({_days(plan.critical_days)} working days, in plan order)\n"
                              + "\n".join(lines) + more))
    return blocks


def templates_message(templates: Sequence[Template]) -> dict[str, Any]:
    lines = [
        f"• `{escape(t.name)}` *{escape(t.title)}*: {escape(t.description)} "
        f"(about {t.typical_length_days()} working days, {len(t.tasks)} tasks)"
        for t in templates
    ]
    return message(
        f"{len(templates)} templates",
        [header("Campaign templates"), section("\n".join(lines)),
         context('Use one with `/campaign new "Spring launch" product_launch 2027-03-01`.')],
    )


MOVE_ICONS = {Move.LAUNCH: ":rocket:", Move.PAUSE: ":double_vertical_bar:", Move.RESUME: ":arrow_forward:",
              Move.COMPLETE: ":checkered_flag:", Move.CANCEL: ":x:"}


def _tasks(count: int) -> str:
    return f"{count} open task" if count == 1 else f"{count} open tasks"


def status_changed(change: StatusChange, *, actor: str) -> dict[str, Any]:
    """A lifecycle move, for the channel it was typed in. `actor` is a Slack user id."""
    campaign = change.campaign
    ref = campaign_ref(campaign)
    done = LIFECYCLE[change.move].done
    text = f"{MOVE_ICONS[change.move]} {ref} *{_name(campaign)}* is {done}."
    if change.move is Move.CANCEL:
        text += (f" {_tasks(change.open_tasks).capitalize()} cancelled with it." if change.open_tasks
                 else " It had no open tasks.")
    elif change.move is Move.COMPLETE and change.open_tasks:
        text += f" {_tasks(change.open_tasks).capitalize()} left as they were."
    notes = [f"{STATUS_BADGES[change.previous]} → {STATUS_BADGES[campaign.status]} · by {user_mention(actor)}"]
    if change.move is Move.PAUSE:
        notes.append(f"`/campaign resume {ref}` picks it up again.")
    return message(f"{ref} {_name(campaign, 80)} is {done}", [section(text), context(*notes)])


def channel_set(campaign: Campaign) -> dict[str, Any]:
    ref = campaign_ref(campaign)
    if campaign.channel_id is None:
        return message(f"{ref} has no channel now", [section(f":speech_balloon: {ref} *{_name(campaign)}* has no channel now.")])
    where = channel_mention(campaign.channel_id)
    return message(
        f"{ref} now posts to its channel",
        [section(f":speech_balloon: {ref} *{_name(campaign)}* now posts to {where}."),
         context(f"Invite me to {where} (`/invite @Campaign Manager`) so I can post there.")],
    )
