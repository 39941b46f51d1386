"""A realistic sample workspace, so a newcomer sees something on the first run.

Built through the same services a person would use: campaigns are planned from the built-in templates,
staffed by the assignment engine, and the launch has some work done and one task blocked.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Approval, ApprovalRule, Campaign, CampaignStatus, TeamMember
from services import authz, campaigns, staffing, tasks
from services.planning.templates import TemplateLibrary

DEMO_MEMBERS = [
    # slack id, name, role, skills, time zone, capacity
    ("UDEMOMAYA", "Maya Chen", "marketing lead", ["strategy", "approvals"], "America/New_York", 6),
    ("UDEMOLEO", "Leo Martins", "copywriter", ["copywriting", "email"], "Europe/Lisbon", 5),
    ("UDEMOPRIYA", "Priya Nair", "designer", ["design", "video", "web"], "Asia/Kolkata", 6),
    ("UDEMOSAM", "Sam Okafor", "growth marketer", ["ads", "analytics", "email", "social"], "Europe/London", 6),
    ("UDEMOJULIA", "Julia Weber", "product marketing", ["positioning", "copywriting", "pr"], "Europe/Berlin", 6),
    ("UDEMOOMAR", "Omar Haddad", "events and legal", ["events", "legal", "pr"], "Europe/Madrid", 5),
]

# name, template, owner index, days until launch, status
DEMO_CAMPAIGNS = [
    ("Aurora 2.0 product launch", "product_launch", 0, 45, CampaignStatus.ACTIVE),
    ("March customer newsletter", "newsletter", 1, 18, CampaignStatus.PLANNING),
    ("Scaling onboarding: live webinar", "webinar", 3, 32, CampaignStatus.PLANNING),
]


class DemoAlreadySeeded(Exception):
    pass


async def seed_demo(*, db: AsyncSession, library: TemplateLibrary, now: datetime, if_empty: bool = False) -> dict[str, int]:
    if await db.scalar(select(func.count()).select_from(TeamMember).where(TeamMember.slack_user_id == "UDEMOMAYA")):
        raise DemoAlreadySeeded("The demo workspace is already there.")
    if if_empty and await db.scalar(select(func.count()).select_from(Campaign)):
        raise DemoAlreadySeeded("The database already has campaigns; leaving it as it is.")

    members = [
        TeamMember(slack_user_id=uid, name=name, role=role, skills=skills, timezone=tz, max_concurrent_tasks=cap,
                   email=f"{name.split()[0].lower()}@example.com", profile_synced_at=now)
        for uid, name, role, skills, tz, cap in DEMO_MEMBERS
    ]
    db.add_all(members)
    await db.flush()

    task_count = 0
    plans = []
    for name, template, owner_index, days, status in DEMO_CAMPAIGNS:
        owner = members[owner_index]
        plan = await campaigns.create_campaign(
            db=db, name=name, template=library.resolve(template), owner=owner, now=now,
            launch_date=(now + timedelta(days=days)).date(), channel_id=f"CDEMO{owner_index}",
        )
        plan.campaign.status = status
        actor = authz.Actor(member=owner)
        await staffing.auto_assign(db=db, campaign=plan.campaign, tasks=plan.tasks, actor=actor, now=now)
        task_count += len(plan.tasks)
        plans.append(plan)

    await _progress_the_launch(db, plans[0], members[0], now)
    return {"members": len(members), "campaigns": len(plans), "tasks": task_count, "approvals": 2}


async def _progress_the_launch(db: AsyncSession, plan: campaigns.PlanSummary, owner: TeamMember, now: datetime) -> None:
    """Two tasks done, one blocked, and the first approval stage waiting on two people."""
    ctx = tasks.Context(actor=authz.Actor(member=owner, is_admin=True), now=now)
    work = [task for task in plan.critical_path if not task.is_milestone]
    for task in work[:2]:
        task.campaign = plan.campaign
        await tasks.complete(db=db, task=task, ctx=ctx)
    if len(work) > 2:
        work[2].campaign = plan.campaign
        await tasks.block(db=db, task=work[2], reason="Waiting for the final pricing from finance", ctx=ctx)
    stage = (plan.timeline.approval_stages or [{"name": "Messaging sign-off"}])[0]["name"]
    deadline = datetime.combine((now + timedelta(days=10)).date(), time(17, 0), tzinfo=UTC)
    for approver in {owner.id, plan.tasks[0].assignee_id or owner.id}:
        db.add(Approval(campaign_id=plan.campaign.id, stage=stage, stage_order=1, rule=ApprovalRule.ALL,
                        approver_id=approver, requested_by_id=owner.id, deadline=deadline))
    await db.flush()
