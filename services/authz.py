"""Who may do what. Every entry point asks here before a change; nothing else decides."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from models import Approval, Campaign, DashboardLink, Task, TeamMember
from services.errors import NotAllowed


@dataclass(frozen=True)
class Actor:
    member: TeamMember
    is_admin: bool = False


def can_manage_campaign(actor: Actor, campaign: Campaign) -> bool:
    """Plan, staff, launch or cancel a campaign: its owner or an admin."""
    return actor.is_admin or campaign.owner_id == actor.member.id


def can_work_on_task(actor: Actor, task: Task, campaign: Campaign) -> bool:
    """Start, finish, block or re-estimate a task: its assignee, the campaign owner or an admin."""
    return task.assignee_id == actor.member.id or can_manage_campaign(actor, campaign)


def can_edit_member(actor: Actor, member: TeamMember) -> bool:
    """Change someone's skills, hours or capacity: themselves or an admin."""
    return actor.is_admin or actor.member.id == member.id


# What the owner of an open campaign may set for someone new: enough for the planner to staff them.
OWNER_MAY_SET_FOR_NEWCOMERS = frozenset({"skills"})


def can_add_member(actor: Actor, *, owns_open_campaign: bool, fields: Collection[str]) -> bool:
    """Put someone on the team who has not used the app yet: an admin, with any profile; the owner of an
    open campaign, with skills only. Everything else about a person (role, hours, time off, how to reach
    them) is theirs to set (`/team me`) or an admin's."""
    return actor.is_admin or (owns_open_campaign and set(fields) <= OWNER_MAY_SET_FOR_NEWCOMERS)


def can_request_approval(actor: Actor, campaign: Campaign) -> bool:
    """Ask for a sign-off stage, or resubmit a rejected one: the campaign owner or an admin."""
    return can_manage_campaign(actor, campaign)


def can_decide(actor: Actor, approval: Approval) -> bool:
    """Approve, reject or delegate one approval: the named approver or the person they delegated to.

    Not admins: a sign-off means the named person looked at the work.
    """
    member_id = actor.member.id
    return member_id == approval.approver_id or (
        approval.delegated_to_id is not None and member_id == approval.delegated_to_id
    )


def can_revoke_dashboard_link(actor: Actor, link: DashboardLink) -> bool:
    """End a read-only dashboard link: whoever made it, or an admin (the only ones who can end a link
    the app made itself, such as a weekly status's timeline link)."""
    return actor.is_admin or (link.created_by_id is not None and link.created_by_id == actor.member.id)


def can_manage_api_tokens(actor: Actor) -> bool:
    """Issue, list or revoke API tokens: admins only. A token acts as any member the admin names, so making
    one is handing out that member's powers."""
    return actor.is_admin


def can_manage_webhooks(actor: Actor) -> bool:
    """Register, list or remove outgoing webhooks: admins only. A webhook sends the workspace's changes
    (campaign, task and approval names) to a URL outside it."""
    return actor.is_admin


def require(allowed: bool, message: str) -> None:
    if not allowed:
        raise NotAllowed(message)


def require_campaign_manager(actor: Actor, campaign: Campaign, doing: str) -> None:
    require(can_manage_campaign(actor, campaign), f"Only the campaign owner or an admin can {doing}.")


def require_task_worker(actor: Actor, task: Task, campaign: Campaign, doing: str) -> None:
    require(
        can_work_on_task(actor, task, campaign),
        f"Only the assignee, the campaign owner or an admin can {doing}.",
    )
