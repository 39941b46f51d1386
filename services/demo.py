"""A realistic sample workspace, so a newcomer sees something on the first run."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import (
    Approval,
    ApprovalRule,
    Campaign,
    CampaignStatus,
    Priority,
    Task,
    TaskDependency,
    TaskStatus,
    TeamMember,
)
from services import audit

DEMO_MEMBERS = [
    # slack id, name, role, skills, time zone, capacity
    ("UDEMOMAYA", "Maya Chen", "marketing lead", ["strategy", "approvals"], "America/New_York", 6),
    ("UDEMOLEO", "Leo Martins", "copywriter", ["copywriting", "email"], "Europe/Lisbon", 4),
    ("UDEMOPRIYA", "Priya Nair", "designer", ["design", "video"], "Asia/Kolkata", 5),
    ("UDEMOSAM", "Sam Okafor", "growth marketer", ["ads", "analytics", "email"], "Europe/London", 5),
    ("UDEMOJULIA", "Julia Weber", "product marketing", ["positioning", "copywriting"], "Europe/Berlin", 5),
]

# (title, skill, owner index, days before launch it is due, duration hours, status, depends on indexes)
LAUNCH_TASKS = [
    ("Positioning and messaging brief", "positioning", 4, 38, 16, TaskStatus.DONE, []),
    ("Launch blog post", "copywriting", 1, 24, 12, TaskStatus.IN_PROGRESS, [0]),
    ("Hero visuals and social cards", "design", 2, 22, 20, TaskStatus.TODO, [0]),
    ("Launch email sequence", "email", 3, 14, 10, TaskStatus.TODO, [1]),
    ("Paid social campaign set-up", "ads", 3, 7, 8, TaskStatus.BLOCKED, [2]),
    ("Launch day: publish and announce", "strategy", 0, 0, 4, TaskStatus.TODO, [1, 2, 3, 4]),
]


class DemoAlreadySeeded(Exception):
    pass


async def seed_demo(*, db: AsyncSession, today: date, if_empty: bool = False) -> dict[str, int]:
    """Create the sample team, three campaigns, their tasks and a pending approval stage."""
    if await db.scalar(select(func.count()).select_from(TeamMember).where(TeamMember.slack_user_id == "UDEMOMAYA")):
        raise DemoAlreadySeeded("The demo workspace is already there.")
    if if_empty and await db.scalar(select(func.count()).select_from(Campaign)):
        raise DemoAlreadySeeded("The database already has campaigns; leaving it as it is.")

    members = [
        TeamMember(slack_user_id=uid, name=name, role=role, skills=skills, timezone=tz, max_concurrent_tasks=cap,
                   email=f"{name.split()[0].lower()}@example.com", profile_synced_at=datetime.now(UTC))
        for uid, name, role, skills, tz, cap in DEMO_MEMBERS
    ]
    db.add_all(members)
    await db.flush()
    lead = members[0]

    launch = Campaign(name="Aurora 2.0 product launch", template="product_launch", owner_id=lead.id,
                      launch_date=today + timedelta(days=42), status=CampaignStatus.ACTIVE, channel_id="CDEMOLAUNCH",
                      description="Launch of Aurora 2.0 to existing customers and the wider market.")
    newsletter = Campaign(name="March customer newsletter", template="newsletter", owner_id=members[1].id,
                          launch_date=today + timedelta(days=18), status=CampaignStatus.PLANNING)
    webinar = Campaign(name="Scaling onboarding: live webinar", template="webinar", owner_id=members[3].id,
                       launch_date=today + timedelta(days=30), status=CampaignStatus.PLANNING)
    db.add_all([launch, newsletter, webinar])
    await db.flush()

    tasks = [_task(launch, members, today, *spec) for spec in LAUNCH_TASKS]
    db.add_all(tasks)
    await db.flush()
    for task, spec in zip(tasks, LAUNCH_TASKS, strict=True):
        for predecessor in spec[6]:
            db.add(TaskDependency(predecessor_id=tasks[predecessor].id, successor_id=task.id))

    deadline = datetime.combine(today + timedelta(days=10), time(17, 0), tzinfo=UTC)
    for approver in (lead, members[4]):
        db.add(Approval(campaign_id=launch.id, stage="Messaging sign-off", stage_order=1, rule=ApprovalRule.ALL,
                        approver_id=approver.id, requested_by_id=lead.id, deadline=deadline))
    for campaign in (launch, newsletter, webinar):
        audit.record(db=db, actor="system", action="campaign.created", entity_type="campaign",
                     entity_id=campaign.id, source="demo")
    await db.flush()
    return {"members": len(members), "campaigns": 3, "tasks": len(tasks), "approvals": 2}


def _task(campaign: Campaign, members: list[TeamMember], today: date, title: str, skill: str, owner: int,
          days_before: int, hours: float, status: TaskStatus, _deps: list[int]) -> Task:
    due = datetime.combine(campaign.launch_date - timedelta(days=days_before), time(17, 0), tzinfo=UTC)
    return Task(
        campaign_id=campaign.id, title=title, required_skill=skill, assignee_id=members[owner].id,
        duration_hours=hours, due_at=due, status=status,
        priority=Priority.HIGH if days_before <= 7 else Priority.NORMAL,
        completed_at=datetime.now(UTC) if status is TaskStatus.DONE else None,
        blocked_reason="Waiting for the ads account to be approved" if status is TaskStatus.BLOCKED else None,
        is_milestone=days_before == 0,
    )
