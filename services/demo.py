"""A realistic sample workspace, so a newcomer sees something on the first run.

Built through the same services a person would use: campaigns are planned from the built-in templates,
staffed by the assignment engine, and the launch has some work done and one task blocked.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Approval, Campaign, CampaignStatus, TaskStatus, TeamMember
from services import authz, campaigns, staffing, tasks
from services.planning.templates import TemplateLibrary

DEMO_MEMBERS = [
    # slack id, name, role, skills, time zone, capacity
    ("UDEMOMAYA", "Maya Chen", "marketing lead", ["strategy", "approvals"], "America/New_York", 6),
    ("UDEMOLEO", "Leo Martins", "copywriter", ["copywriting", "email"], "Europe/Lisbon", 5),
    ("UDEMOPRIYA", "Priya Nair", "brand", ["design", "video", "web"], "Asia/Kolkata", 6),
    ("UDEMOSAM", "Sam Okafor", "growth marketer", ["ads", "analytics", "email", "social"], "Europe/London", 6),
    ("UDEMOJULIA", "Julia Weber", "product marketing", ["positioning", "copywriting", "pr"], "Europe/Berlin", 6),
    ("UDEMOOMAR", "Omar Haddad", "legal", ["events", "legal", "pr"], "Europe/Madrid", 5),
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

    approvals = await _progress_the_launch(db, plans[0], members[0], now)
    return {"members": len(members), "campaigns": len(plans), "tasks": task_count, "approvals": approvals}


async def _progress_the_launch(db: AsyncSession, plan: campaigns.PlanSummary, owner: TeamMember, now: datetime) -> int:
    """Work done in plan order up to the task the first sign-off reviews, which opens that stage to the
    marketing lead; then the next critical task blocked. Returns how many approvals are open."""
    ctx = tasks.Context(actor=authz.Actor(member=owner, is_admin=True), now=now)
    reviewed = next((stage.get("after_task") for stage in plan.timeline.approval_stages), None)
    ordered = sorted(plan.tasks, key=lambda task: (task.earliest_start_at or now, task.id))
    for task in ordered:
        task.campaign = plan.campaign
        await tasks.complete(db=db, task=task, ctx=ctx)
        if task.template_key == reviewed or reviewed is None:
            break
    waiting = [task for task in plan.critical_path if task.status is TaskStatus.TODO and not task.is_milestone]
    if waiting:
        waiting[0].campaign = plan.campaign
        await tasks.block(db=db, task=waiting[0], reason="Waiting for the final pricing from finance", ctx=ctx)
    return await db.scalar(select(func.count()).select_from(Approval).where(Approval.campaign_id == plan.campaign.id)) or 0
