"""A campaign's escalation policy as people see and set it: when reminders go out, and who hears about late
work (level 1 the owner, level 2 the escalation contact). The sweep (`services.reminders`) reads it.

Settings are typed as `key=value` words (`grace=1d contact=<@U123>`), validated as a whole before anything
is stored. Callers own the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models import Campaign, TeamMember
from services import audit, authz
from services.campaigns import FINAL_STATUSES, campaign_ref
from services.durations import ELAPSED_TIME, DurationError, hours_of
from services.errors import InvalidInput
from services.reminders import Policy
from services.team import find_member

# What people type -> the key stored in `Campaign.escalation_policy` (and read by `reminders.Policy`).
POLICY_KEYS: dict[str, str] = {
    "reminders": "reminder_offsets_hours",
    "grace": "task_grace_hours",
    "critical": "critical_grace_hours",
    "contact-after": "contact_after_hours",
    "approval-reminder": "approval_reminder_hours",
    "approval-grace": "approval_grace_hours",
}
CONTACT = "contact"
OPTIONS = (*POLICY_KEYS, CONTACT)
RESET = "reset"
CLEAR_WORDS = ("none", "off", "nobody")
MAX_HOURS = 30 * 24
MAX_REMINDERS = 5
# Offsets before a due date or deadline must be positive; graces may be 0 (escalate as soon as it is late).
_OFFSETS = ("reminders", "approval-reminder")


class Keep:
    """The contact was not mentioned: leave it as it is."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP = Keep()


@dataclass(frozen=True)
class PolicyChange:
    """What `/campaign escalation CM-12 ...` asked for, validated except for who the contact is."""

    values: dict[str, Any] = field(default_factory=dict)  # stored keys -> hours (a list for reminders)
    reset: bool = False
    contact: str | None | Keep = KEEP  # typed text after `contact=`; None clears it

    @property
    def is_empty(self) -> bool:
        return not self.values and not self.reset and isinstance(self.contact, Keep)


def parse_change(words: Sequence[str]) -> PolicyChange:
    """`reminders=24h,2h grace=1d contact=none reset` -> a change; InvalidInput names the first bad key.

    A word without `=` continues the value before it (`reminders=24h, 2h`), except `reset`.
    """
    typed: dict[str, str] = {}
    reset = False
    current: str | None = None
    for word in words:
        key, sep, value = word.partition("=")
        key = key.strip().lower()
        if not sep and word.strip().lower() == RESET:
            reset, current = True, None
        elif sep and key in OPTIONS:
            if key in typed:
                raise InvalidInput(f"`{key}=` is given twice.")
            typed[key], current = value, key
        elif sep:
            raise InvalidInput(f"`{_short(key)}=` is not something I can set. Use {_allowed()}, or `reset`.")
        elif current is not None:
            typed[current] = f"{typed[current]} {word}".strip()
        else:
            raise InvalidInput(f"I don't know what `{_short(word)}` means here. Use {_allowed()}, or `reset`.")
    values: dict[str, Any] = {}
    for key, text in typed.items():
        if key == "reminders":
            values[POLICY_KEYS[key]] = parse_offsets(text)
        elif key in POLICY_KEYS:
            values[POLICY_KEYS[key]] = parse_hours(key, text)
    contact: str | None | Keep = KEEP
    if CONTACT in typed:
        text = typed[CONTACT].strip()
        if not text:
            raise InvalidInput("`contact=` needs a person: `contact=@dana`, or `contact=none` to clear it.")
        contact = None if text.lower() in CLEAR_WORDS else text
    return PolicyChange(values=values, reset=reset, contact=contact)


def elapsed_hours(key: str, text: str) -> float:
    """`30m`, `4h`, `1.5h`, `1d` (24 hours), `4` (hours) -> elapsed hours, rounded to the minute.

    Elapsed, not working, time: a grace runs through nights and weekends (see `services.durations`).
    """
    try:
        hours = hours_of(text, ELAPSED_TIME)
    except DurationError as error:
        raise InvalidInput(f"`{key}=`: `{_short(text)}` {error.problem}.") from None
    return round(hours * 60) / 60


def parse_hours(key: str, text: str) -> float:
    """One duration for `key`, within its bounds: graces 0 to 30 days, a reminder more than 0."""
    hours = elapsed_hours(key, text)
    if key in _OFFSETS and not 0 < hours <= MAX_HOURS:
        raise InvalidInput(f"`{key}=` must be more than 0 and at most 30 days; `{_short(text)}` is not.")
    if hours > MAX_HOURS:
        raise InvalidInput(f"`{key}=` must be between 0 and 30 days; `{_short(text)}` is not.")
    return hours


def parse_offsets(text: str) -> list[float]:
    """`24h,2h` -> [24.0, 2.0]: 1 to 5 reminders before the due date, latest first, each within 30 days."""
    parts = [part for part in (piece.strip() for piece in text.replace(" ", ",").split(",")) if part]
    if not 1 <= len(parts) <= MAX_REMINDERS:
        raise InvalidInput(f"`reminders=` takes 1 to {MAX_REMINDERS} times before the due date, like `24h,2h`.")
    return sorted({parse_hours("reminders", part) for part in parts}, reverse=True)


async def set_policy(
    *, db: AsyncSession, campaign: Campaign, change: PolicyChange, contact_user_id: str | None | Keep = KEEP,
    actor: authz.Actor,
) -> list[str]:
    """Store the change (owner or admin; not on a completed or cancelled campaign); returns what changed.

    `contact_user_id` is the Slack user id the caller read from `change.contact` (None clears, KEEP leaves
    it). Every check runs before the first write, so a refused change stores nothing.
    """
    authz.require_campaign_manager(actor, campaign, "change its escalation policy")
    ref = campaign_ref(campaign)
    if campaign.status in FINAL_STATUSES:
        raise InvalidInput(f"{ref} is {campaign.status.value}; nothing can change.")
    contact_id: int | None | Keep = KEEP
    if not isinstance(contact_user_id, Keep):
        contact_id = None if contact_user_id is None else (await _contact(db, campaign, contact_user_id)).id

    policy = {} if change.reset else dict(campaign.escalation_policy or {})
    policy |= change.values
    changed = [key for key in sorted(set(policy) | set(campaign.escalation_policy or {}))
               if policy.get(key) != (campaign.escalation_policy or {}).get(key)]
    previous_policy, previous_contact = campaign.escalation_policy or {}, campaign.escalation_contact_id
    if changed:
        campaign.escalation_policy = policy  # a new dict, so the JSON column sees the change
    if not isinstance(contact_id, Keep) and contact_id != previous_contact:
        campaign.escalation_contact_id = contact_id
        changed.append(CONTACT)
    if changed:
        audit.record(db=db, actor=actor.member.slack_user_id, action="campaign.escalation_set",
                     entity_type="campaign", entity_id=campaign.id, policy=policy, previous=previous_policy,
                     contact_id=campaign.escalation_contact_id, previous_contact_id=previous_contact)
        await db.flush()
    words = [_word_for(key) for key in changed]
    return sorted(words, key=lambda word: OPTIONS.index(word) if word in OPTIONS else len(OPTIONS))


async def _contact(db: AsyncSession, campaign: Campaign, slack_user_id: str) -> TeamMember:
    member = await find_member(db=db, slack_user_id=slack_user_id)
    if member is None:
        raise InvalidInput("`contact=`: that person is not on the team yet. Add them with `/team add @them` first.")
    if not member.is_active:
        raise InvalidInput(f"`contact=`: {member.name} is deactivated; pick someone who is on the team.")
    if member.id == campaign.owner_id:
        raise InvalidInput(f"`contact=`: {member.name} owns {campaign_ref(campaign)} and already hears first; "
                           "pick someone else.")
    return member


@dataclass(frozen=True)
class EffectivePolicy:
    """What the sweep will do for a campaign, and which values the campaign set itself."""

    campaign: Campaign
    policy: Policy
    set_keys: frozenset[str]  # the typed names (`grace`, `reminders`, ...) the campaign set itself
    owner: TeamMember
    contact: TeamMember | None  # the stored contact, active or not

    @property
    def level_two(self) -> TeamMember | None:
        """Who the sweep escalates to after the owner: the contact, if active and not the owner."""
        contact = self.contact
        if contact is None or not contact.is_active or contact.id == self.campaign.owner_id:
            return None
        return contact

    def contact_delay(self, *, critical: bool) -> timedelta:
        return self.policy.contact_delay(self.policy.critical_grace if critical else self.policy.task_grace)


async def describe(*, db: AsyncSession, campaign: Campaign) -> EffectivePolicy:
    """The effective policy of a campaign (anyone may look). `campaign.owner` must be loaded."""
    stored = campaign.escalation_policy or {}
    contact = (await db.get(TeamMember, campaign.escalation_contact_id)
               if campaign.escalation_contact_id is not None else None)
    set_keys = frozenset(word for word, key in POLICY_KEYS.items() if stored.get(key) is not None)
    return EffectivePolicy(campaign=campaign, policy=Policy.of(stored), set_keys=set_keys, owner=campaign.owner,
                           contact=contact)


def _word_for(key: str) -> str:
    return next((word for word, stored in POLICY_KEYS.items() if stored == key), key)


def _allowed() -> str:
    return ", ".join(f"`{name}=`" for name in OPTIONS)


def _short(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
