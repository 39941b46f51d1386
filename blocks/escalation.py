"""`/campaign escalation CM-12`: a campaign's reminder and escalation policy in plain words."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from blocks.text import context, fit_escaped, message, section, user_mention
from models import TeamMember
from services.campaigns import FINAL_STATUSES, campaign_ref
from services.escalation_policy import EffectivePolicy


def escalation_policy(view: EffectivePolicy, *, changed: Sequence[str] = (), asked_to_change: bool = False) -> dict[str, Any]:
    """The effective policy; `changed` names the typed keys a change just stored (`grace`, `contact`)."""
    campaign, policy = view.campaign, view.policy
    ref, name = campaign_ref(campaign), fit_escaped(campaign.name, 150)
    blocks: list[dict[str, Any]] = []
    if changed:
        keys = ", ".join(f"`{key}=`" for key in changed)
        blocks.append(section(f":white_check_mark: Updated {keys} of {ref}."))
    elif asked_to_change:
        blocks.append(section(f":information_source: Nothing changed: {ref} already had those settings."))
    blocks.append(section(f":rotating_light: *Escalation policy of {ref} {name}*\n{summary(view)}"))
    blocks.append(section(
        "*Who hears about late work*",
        fields=[f"*Level 1*\n{user_mention(view.owner.slack_user_id)} (owner)", f"*Level 2*\n{_level_two(view)}"],
    ))
    task_grace, critical = policy.task_grace, policy.critical_grace
    contact_after = (duration(policy.contact_after) if policy.contact_after is not None else
                     f"same as the grace: {duration(task_grace)} ({duration(critical)} if critical)")
    approval_grace = duration(policy.approval_grace)
    rows = [
        ("reminders", "Reminders before due", _and(_offsets(policy.offsets))),
        ("grace", "Owner hears of late work after", duration(task_grace)),
        ("critical", "… of critical-path or blocked work after", duration(critical)),
        ("contact-after", "Contact hears after the owner, by", contact_after),
        ("approval-reminder", "Approval reminder before the deadline", duration(policy.approval_reminder)),
        ("approval-grace", "Contact hears of a late approval after",
         approval_grace if "approval-grace" in view.set_keys else f"same as the grace: {approval_grace}"),
    ]
    lines = [f"{label}: *{value}* · `{key}=` {'_set_' if key in view.set_keys else '_default_'}"
             for key, label, value in rows]
    blocks.append(section("\n".join(lines)))
    if campaign.status in FINAL_STATUSES:
        blocks.append(context(f"{ref} is {campaign.status.value}; its policy no longer changes."))
    else:
        blocks.append(context(
            f"Anyone can look; the owner or an admin can change it: `/campaign escalation {ref} grace=1d "
            "critical=4h contact=@dana` (durations like `30m`, `4h`, `1.5h`, `1d`). `reset` restores the defaults "
            "and keeps the contact; `contact=none` clears the contact."
        ))
    return message(f"Escalation policy of {ref} {name}", blocks)


def summary(view: EffectivePolicy) -> str:
    """One paragraph: when reminders go out and who hears about lateness, in order."""
    policy = view.policy
    offsets = _offsets(policy.offsets)
    if offsets:
        reminders = ("Reminders " if len(offsets) > 1 else "A reminder ") + _and(offsets) + " before due"
    else:
        reminders = "No reminders before due"
    task_grace, critical = policy.task_grace, policy.critical_grace
    late = "late work goes to the owner " + (f"{duration(task_grace)} after due" if task_grace else "as soon as it is late")
    if critical != task_grace:
        late += f" ({duration(critical) if critical else 'at once'} for critical-path or blocked work)"
    contact = view.level_two
    if contact is None:
        late += "; nobody else hears of it"
    else:
        mention = user_mention(contact.slack_user_id)
        normal, urgent = view.contact_delay(critical=False), view.contact_delay(critical=True)
        late += f", then to {mention} {_later(normal)}"
        if urgent != normal:
            late += f" ({_later(urgent)} for critical-path or blocked work)"
    approvals = (f"approvals: reminder {duration(policy.approval_reminder)} before the deadline, "
                 "owner at the deadline")
    if contact is not None:
        approvals += f", {user_mention(contact.slack_user_id)} " + (
            f"{duration(policy.approval_grace)} after" if policy.approval_grace else "at the deadline too")
    return f"{reminders}; {late}; {approvals}."


def duration(delta: timedelta) -> str:
    """`24 h`, `30 min`, `1 h 30 min`, `3 d` (whole days from two days up), `0 h`."""
    minutes = round(delta.total_seconds() / 60)
    if not minutes:
        return "0 h"
    if minutes >= 2 * 24 * 60 and minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)} d"
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h" if not rest else f"{hours} h {rest} min"


def _level_two(view: EffectivePolicy) -> str:
    contact: TeamMember | None = view.contact
    if contact is None:
        return "nobody: set one with `contact=@someone`"
    mention = user_mention(contact.slack_user_id)
    if not contact.is_active:
        return f"{mention} is deactivated, so nobody: set someone else with `contact=@someone`"
    if contact.id == view.campaign.owner_id:
        return f"nobody: the contact, {mention}, is the owner; set someone else with `contact=@someone`"
    return mention


def _offsets(hours: Sequence[float]) -> list[str]:
    return [duration(timedelta(hours=h)) for h in sorted(hours, reverse=True)]


def _later(delta: timedelta) -> str:
    return f"{duration(delta)} later" if delta else "at the same time"


def _and(items: Iterable[str]) -> str:
    words = list(items)
    if len(words) < 2:
        return words[0] if words else "none"
    return ", ".join(words[:-1]) + " and " + words[-1]
