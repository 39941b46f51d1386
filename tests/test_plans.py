"""Planning against the real database (SQLite and PostgreSQL): a campaign's plan from its template.

Every date below is worked out by hand in the comments. The plans run on one axis of working hours in
the owner's calendar (09:00-17:00, Monday to Friday), with 0 at the first working moment after `now`.
Re-planning, authorization and bad input are in test_replan.py, which reuses the helpers here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import AuditEntry, Campaign, CampaignStatus, Task, TeamMember, Timeline, TimelineSnapshot
from services import authz, campaigns, plans, tasks, team
from services.planning.calendar import WorkingCalendar
from services.planning.templates import Template, TemplateDependency, TemplateTask, load_library

Sessions = async_sessionmaker[AsyncSession]

BERLIN = ZoneInfo("Europe/Berlin")
OWNER = "U0OWNER"
NOW = datetime(2027, 6, 7, 9, 0, tzinfo=BERLIN)  # a Monday at the start of the working day: offset 0


# Helpers ------------------------------------------------------------------------------------------------

def small_template(buffer_hours: float = 8.0) -> Template:
    """brief 1d -> copy 2d -(4h lag)-> review 4h -> launch (milestone); brief -> design 1d -> review.

    Longest chain: brief 8 + copy 16 + lag 4 + review 4 = 32h; through design only 8 + 8 + 4 = 20h.
    """

    def task(key: str, hours: float, *after: str | tuple[str, float], milestone: bool = False) -> TemplateTask:
        links = tuple(TemplateDependency(*((a, 0.0) if isinstance(a, str) else a)) for a in after)
        return TemplateTask(key=key, title=key.capitalize(), duration_hours=hours, skill=None,
                            milestone=milestone, after=links)

    return Template(
        name="small", title="Small launch", description="A hand-checkable plan", buffer_hours=buffer_hours,
        tasks=(task("brief", 8), task("copy", 16, "brief"), task("design", 8, "brief"),
               task("review", 4, ("copy", 4.0), "design"), task("launch", 0, "review", milestone=True)),
        approvals=(), aliases=(), source="test",
    )


async def add_member(db: AsyncSession, slack_user_id: str, tz: str = "Europe/Berlin") -> TeamMember:
    profile = team.Profile(name=slack_user_id.removeprefix("U0").capitalize(), timezone=tz)
    return await team.ensure_member(db=db, slack_user_id=slack_user_id, profile=profile)


async def new_campaign(
    sessions: Sessions, *, launch: date, owner: str = OWNER, tz: str = "Europe/Berlin", now: datetime = NOW,
    template: Template | None = None, holidays: frozenset[date] = frozenset(),
) -> int:
    async with sessions.begin() as db:
        member = await add_member(db, owner, tz)
        created = await campaigns.create_campaign(
            db=db, name="Summer launch", template=template or small_template(), launch_date=launch,
            owner=member, now=now, holidays=holidays)
        return created.campaign.id


async def load(sessions: Sessions, campaign_id: int) -> tuple[plans.PlanSummary, dict[str, Task]]:
    """The plan as stored, read back in a fresh session, and its tasks by template key."""
    async with sessions() as db:
        campaign = await campaigns.get_campaign(db=db, campaign_id=campaign_id)
        plan = await plans.load_plan(db=db, campaign=campaign)
    assert plan is not None
    return plan, {task.template_key or "": task for task in plan.tasks}


async def snapshots(sessions: Sessions, campaign_id: int) -> list[tuple[str, datetime]]:
    async with sessions() as db:
        rows = await db.execute(select(TimelineSnapshot.reason, TimelineSnapshot.at)
                                .where(TimelineSnapshot.campaign_id == campaign_id).order_by(TimelineSnapshot.id))
        return [(reason, at) for reason, at in rows]


Op = Callable[..., Awaitable[plans.PlanSummary | None]]


async def act(
    sessions: Sessions, campaign_id: int, key: str, op: Op, *, now: datetime, by: str = OWNER,
    admin: bool = False, holidays: frozenset[date] = frozenset(), expect: type[Exception] | None = None,
    **args: Any,
) -> plans.PlanSummary | None:
    """One unit of work: `op` (a services.tasks function) on the campaign's task `key`, acted by `by`.

    With `expect`, the error must be raised, is caught inside the transaction and the transaction is
    committed anyway: whatever the service changed before raising would then reach the database.
    """
    async with sessions.begin() as db:
        task_id = await db.scalar(select(Task.id).where(Task.campaign_id == campaign_id, Task.template_key == key))
        task = await tasks.get_task(db=db, task_id=task_id or 0)
        member = await team.find_member(db=db, slack_user_id=by)
        assert member is not None
        ctx = tasks.Context(actor=authz.Actor(member=member, is_admin=admin), now=now, holidays=holidays)
        if expect is None:
            return await op(db=db, task=task, ctx=ctx, **args)
        with pytest.raises(expect):
            await op(db=db, task=task, ctx=ctx, **args)
        return None


async def stored_state(sessions: Sessions, campaign_id: int) -> dict[str, Any]:
    """Every column of the campaign's tasks and timeline, and how many snapshots and audit lines exist."""
    async with sessions() as db:
        rows = (await db.scalars(select(Task).where(Task.campaign_id == campaign_id).order_by(Task.id))).all()
        timeline = await db.scalar(select(Timeline).where(Timeline.campaign_id == campaign_id))

        def columns(row: Any) -> dict[str, Any]:
            return {column.key: getattr(row, column.key) for column in type(row).__table__.columns}

        return {
            "tasks": [columns(task) for task in rows],
            "timeline": columns(timeline),
            "snapshots": await db.scalar(select(func.count()).select_from(TimelineSnapshot)),
            "audit": await db.scalar(select(func.count()).select_from(AuditEntry)),
        }


def wall(moment: datetime | None, zone: ZoneInfo = BERLIN) -> datetime:
    """A stored (UTC) moment as the owner's wall clock, naive for short expected values."""
    assert moment is not None
    return moment.astimezone(zone).replace(tzinfo=None)


# Planning -----------------------------------------------------------------------------------------------

async def test_a_plan_well_ahead_of_the_launch(sessions: Sessions) -> None:
    # Now Mon 7 Jun 09:00 (offset 0), launch Wed 23 Jun. Working days end at offsets: Mon 7 → 8, Tue 8 → 16,
    # Wed 9 → 24, Thu 10 → 32, Fri 11 → 40, Mon 14 → 48, Tue 15 → 56, Wed 16 → 64, Thu 17 → 72,
    # Fri 18 → 80, Mon 21 → 88, Tue 22 → 96. The launch moment, Wed 23 09:00, is the deadline: 96.
    # The buffer (8h) is a lag into the launch milestone, so the work must be done by 88 (Mon 21 17:00).
    # Backward: review LF 88 LS 84 | copy LF 84-4 lag = 80 LS 64 | design LF 84 LS 76 | brief LF 64 LS 56.
    # Forward:  brief 0-8 | copy 8-24 | design 8-16 | review max(24+4, 16) = 28-32 | launch 32+8 = 40.
    campaign_id = await new_campaign(sessions, launch=date(2027, 6, 23))
    plan, task = await load(sessions, campaign_id)

    launch, review, copy, design, brief = (task[k] for k in ("launch", "review", "copy", "design", "brief"))
    assert wall(launch.due_at) == datetime(2027, 6, 23, 9)  # on launch day at 09:00, not the eve
    assert wall(review.due_at) == datetime(2027, 6, 21, 17)  # Tue 22 stays free: exactly the buffer
    assert wall(review.start_at) == datetime(2027, 6, 21, 13)
    # The 4h lag after copy runs over the weekend: Fri 17:00, then Mon 09:00-13:00.
    assert wall(copy.due_at) == datetime(2027, 6, 18, 17)
    assert wall(copy.start_at) == datetime(2027, 6, 17, 9)  # offset 64 is Wed 16 17:00 = Thu 17 09:00
    # design runs Fri 13:00-17:00 and Mon 09:00-13:00: the weekend is skipped.
    assert (wall(design.start_at), wall(design.due_at)) == (datetime(2027, 6, 18, 13), datetime(2027, 6, 21, 13))
    assert (wall(brief.start_at), wall(brief.due_at)) == (datetime(2027, 6, 16, 9), datetime(2027, 6, 16, 17))
    assert wall(brief.earliest_start_at) == datetime(2027, 6, 7, 9)
    assert wall(review.earliest_start_at) == datetime(2027, 6, 10, 13)  # offset 28
    assert wall(review.earliest_finish_at) == datetime(2027, 6, 10, 17)  # offset 32

    # Float = LS - ES: brief 56-0, copy 64-8, design 76-8, review 84-28, launch 96-40.
    assert {k: t.float_hours for k, t in task.items()} == {
        "brief": 56, "copy": 56, "design": 68, "review": 56, "launch": 56}
    assert [t.template_key for t in plan.critical_path] == ["brief", "copy", "review", "launch"]
    assert {k for k, t in task.items() if t.on_critical_path} == {"brief", "copy", "review", "launch"}
    assert plan.critical_days == 32 / 8  # 8 + 16 + 4 hours of work still ahead, and the 4h lag between

    timeline = plan.timeline
    assert (timeline.buffer_hours, timeline.buffer_consumed_pct, timeline.compressed_days) == (8, 0, 0)
    assert timeline.projected_launch == date(2027, 6, 23)
    assert (plan.risk, plan.alerts, timeline.alert_level) == ("on track", [], 0)
    assert timeline.milestones == [{"task_id": launch.id, "name": "Launch", "due": "2027-06-23T07:00:00+00:00"}]
    assert await snapshots(sessions, campaign_id) == [("planned", NOW)]


async def test_due_dates_are_in_the_owners_time_zone(sessions: Sessions) -> None:
    # Now is Mon 7 Jun 09:00 in Tokyo and Sun 6 Jun 17:00 in Los Angeles: both plans start at offset 0,
    # Mon 7 Jun 09:00 local, so both have the dates of the Berlin plan above, each on its own clock.
    now = datetime(2027, 6, 7, 0, 0, tzinfo=UTC)
    zones = {"U0TOKYO": "Asia/Tokyo", "U0LA": "America/Los_Angeles"}
    for owner, tz in zones.items():
        campaign_id = await new_campaign(sessions, launch=date(2027, 6, 23), owner=owner, tz=tz, now=now)
        _, task = await load(sessions, campaign_id)
        zone = ZoneInfo(tz)
        assert wall(task["review"].due_at, zone) == datetime(2027, 6, 21, 17)
        assert wall(task["copy"].due_at, zone) == datetime(2027, 6, 18, 17)
        assert wall(task["brief"].due_at, zone) == datetime(2027, 6, 16, 17)
        assert wall(task["launch"].due_at, zone) == datetime(2027, 6, 23, 9)
    # The same wall-clock time is 16 hours apart in UTC: Tokyo is UTC+9, Los Angeles (PDT) UTC-7.
    async with sessions() as db:
        due = dict((await db.execute(
            select(TeamMember.slack_user_id, Task.due_at).join(Campaign, Campaign.owner_id == TeamMember.id)
            .join(Task, Task.campaign_id == Campaign.id).where(Task.template_key == "review"))).all())
    assert due == {"U0TOKYO": datetime(2027, 6, 21, 8, tzinfo=UTC), "U0LA": datetime(2027, 6, 22, 0, tzinfo=UTC)}


async def test_a_plan_across_a_clock_change_keeps_eight_hour_days(sessions: Sessions) -> None:
    # Berlin moves from CET (UTC+1) to CEST (UTC+2) on Sun 28 Mar 2027. Now Mon 22 Mar 09:00, launch
    # Wed 31 Mar: day ends Mon 22 → 8, Tue → 16, Wed → 24, Thu → 32, Fri 26 → 40, Mon 29 → 48, Tue 30 → 56.
    # Backward: review LF 48 LS 44 | copy LF 40 LS 24 | design LF 44 LS 36 | brief LF 24 LS 16.
    # Forward as before (0-8, 8-24, 8-16, 28-32, 40): floats 16, 16, 28, 16, 16. An hour lost or gained
    # over the weekend would show as 15 or 17.
    now = datetime(2027, 3, 22, 9, tzinfo=BERLIN)
    campaign_id = await new_campaign(sessions, launch=date(2027, 3, 31), now=now)
    _, task = await load(sessions, campaign_id)

    assert {k: t.float_hours for k, t in task.items()} == {
        "brief": 16, "copy": 16, "design": 28, "review": 16, "launch": 16}
    start, due = task["design"].start_at, task["design"].due_at  # Fri 26 13:00 CET to Mon 29 13:00 CEST
    assert start is not None and due is not None
    assert (wall(start), wall(due)) == (datetime(2027, 3, 26, 13), datetime(2027, 3, 29, 13))
    assert due - start == timedelta(hours=71)  # 71 real hours over the weekend, but 8 working ones
    assert WorkingCalendar("Europe/Berlin").working_hours_between(start, due) == 8
    assert wall(task["copy"].due_at) == datetime(2027, 3, 26, 17)  # 16:00 UTC
    assert wall(task["review"].due_at) == datetime(2027, 3, 29, 17)  # 15:00 UTC
    assert task["launch"].due_at == datetime(2027, 3, 31, 7, tzinfo=UTC)  # 09:00 CEST


async def test_team_holidays_move_due_dates_around_them(sessions: Sessions) -> None:
    # Fri 18 Jun off: the deadline drops to 88 (Mon 21 ends at 80, Tue 22 at 88). The work is due by 80,
    # Mon 21 17:00 as before; review starts at 76 (Mon 13:00); copy must be done 4h earlier, by 72:
    # Thu 17 17:00, where without the holiday it was Fri 18 17:00. design LF 76, LS 68 = Thu 17 13:00.
    day_off = frozenset({date(2027, 6, 18)})
    campaign_id = await new_campaign(sessions, launch=date(2027, 6, 23), holidays=day_off)
    plan, task = await load(sessions, campaign_id)

    assert wall(task["review"].due_at) == datetime(2027, 6, 21, 17)
    assert wall(task["copy"].due_at) == datetime(2027, 6, 17, 17)
    assert (wall(task["design"].start_at), wall(task["design"].due_at)) == (
        datetime(2027, 6, 17, 13), datetime(2027, 6, 21, 13))
    assert wall(task["brief"].due_at) == datetime(2027, 6, 15, 17)  # copy LS 56: Tue 15 ends at 56
    assert wall(task["launch"].due_at) == datetime(2027, 6, 23, 9)
    assert task["brief"].float_hours == 48  # a day less than the 56 without the holiday
    assert plan.risk == "on track"
    # Holidays are not stored: a re-plan gets them from the context, and keeps the dates.
    assert await act(sessions, campaign_id, "design", tasks.block, now=NOW, reason="no assets", holidays=day_off)
    _, task = await load(sessions, campaign_id)
    assert wall(task["copy"].due_at) == datetime(2027, 6, 17, 17)


async def test_a_launch_too_close_is_compressed_but_created(sessions: Sessions) -> None:
    # Launch Thu 10 Jun: the deadline is Thu 09:00 = offset 24, but the chain needs 32h of work and lags
    # plus the 8h buffer = 40h. Shortfall 40 - 24 = 16h = 2 working days. Floats on the chain: -16.
    campaign_id = await new_campaign(sessions, launch=date(2027, 6, 10))
    plan, task = await load(sessions, campaign_id)

    assert plan.timeline.compressed_days == 2
    assert plan.compressed
    assert {k: t.float_hours for k, t in task.items()} == {
        "brief": -16, "copy": -16, "design": -4, "review": -16, "launch": -16}
    assert [t.template_key for t in plan.culprits] == ["copy", "brief", "review"]  # 16h, 8h, 4h
    # 16h late against 8h of buffer: the work itself ends at 32, Thu 10 17:00, after the launch moment
    # (Thu 09:00), so the earliest launch is Fri 11 and the plan is late, not merely at risk.
    assert plan.timeline.buffer_consumed_pct == 200
    assert (plan.timeline.projected_launch, plan.risk) == (date(2027, 6, 11), "late")
    # The launch milestone is due on the projected launch day, after the work it waits for (test_plan_truth).
    assert wall(task["launch"].due_at) == datetime(2027, 6, 11, 9)
    async with sessions() as db:
        campaign = await db.get(Campaign, campaign_id)
        assert campaign is not None and campaign.status is CampaignStatus.PLANNING
    assert await snapshots(sessions, campaign_id) == [("planned", NOW)]


async def test_a_built_in_template(sessions: Sessions) -> None:
    # newsletter: plan 2h → lead story 8h → subject lines 1h → copy edit 2h -(4h)-> copy final (milestone)
    # → build 4h → tracking 1h → test send 2h -(4h)-> schedule 30m → send (milestone): 28.5h, buffer 8h.
    newsletter = load_library().resolve("newsletter")
    assert (newsletter.critical_hours(), newsletter.buffer_hours) == (28.5, 8)
    # Launch Mon 14 Jun: deadline 40 (five days), so 40 - 36.5 = 3.5h of float on the chain.
    campaign_id = await new_campaign(sessions, launch=date(2027, 6, 14), template=newsletter)
    plan, task = await load(sessions, campaign_id)

    assert len(task) == len(newsletter.tasks) == 13
    assert [t.template_key for t in plan.critical_path] == [
        "plan", "lead_story", "subject_lines", "copy_edit", "copy_final", "build", "tracking", "test_send",
        "schedule", "send"]
    assert {t.float_hours for t in plan.critical_path} == {3.5}
    assert wall(task["send"].due_at) == datetime(2027, 6, 14, 9)
    assert wall(task["schedule"].due_at) == datetime(2027, 6, 10, 17)  # Fri 11 is the buffer
    # A milestone inside the plan is due when its successor must start: schedule LS 32 - 0.5 = 31.5,
    # test send LF 31.5 - 4 lag = 27.5 LS 25.5, tracking LS 24.5, build LS 20.5 = Wed 9 13:30.
    assert wall(task["copy_final"].due_at) == datetime(2027, 6, 9, 13, 30)
    assert [s["name"] for s in plan.timeline.approval_stages] == ["Editorial sign-off", "Final proof"]
    assert (plan.risk, plan.timeline.compressed_days) == ("on track", 0)

    # Four days (launch Fri 11 Jun, deadline 32) are 4.5h short: one working day, rounded up.
    short_id = await new_campaign(sessions, launch=date(2027, 6, 11), owner="U0OTHER", template=newsletter)
    short, _ = await load(sessions, short_id)
    assert short.timeline.compressed_days == 1
    assert [t.template_key for t in short.culprits] == ["lead_story", "build", "plan"]  # 8h, 4h, 2h
