"""Plans that read true (issue 9), through the services on the real database: the critical path's length
counts its lags, due dates never contradict the links, and every (re)plan says what it changed.

Offsets are working hours from `NOW` (Mon 7 Jun 2027 09:00 Berlin), as in test_plans.py.
"""

from __future__ import annotations

import math
from datetime import date, datetime

from sqlalchemy import select

from blocks.campaigns import last_change_line, plan_change_line
from models import Task, TaskDependency, TaskStatus
from services import campaigns, plans, tasks
from services.planning.templates import load_library
from tests.test_plans import NOW, Sessions, act, add_member, load, new_campaign, small_template, wall

LAUNCH = load_library().resolve("product_launch")


async def links(sessions: Sessions, campaign_id: int) -> list[tuple[Task, Task, float]]:
    """(predecessor, successor, lag) of every link of the campaign, with the tasks as stored."""
    async with sessions() as db:
        by_id = {t.id: t for t in await db.scalars(select(Task).where(Task.campaign_id == campaign_id))}
        rows = await db.scalars(select(TaskDependency).where(TaskDependency.successor_id.in_(by_id)))
        return [(by_id[d.predecessor_id], by_id[d.successor_id], d.lag_hours) for d in rows]


def assert_no_task_due_before_what_it_waits_for(found: list[tuple[Task, Task, float]]) -> None:
    wrong = [(p.template_key or p.title, p.due_at, s.template_key or s.title, s.due_at) for p, s, _ in found
             if TaskStatus.DONE not in (p.status, s.status) and p.due_at and s.due_at and s.due_at < p.due_at]
    assert wrong == []


# 1. The critical path's length --------------------------------------------------------------------------

async def test_the_critical_path_spans_its_lags_as_the_shortfall_does(sessions: Sessions) -> None:
    # product_launch, by hand: brief 1d → research 3d → positioning 2d -(2d)-> customer stories 3d →
    # press kit 2d → content ready -(2d)-> media outreach 3d → go/no-go 2h → launch. Work 14.25 days,
    # lags 4 days: the path spans 18.25 working days (146h); the demo video branch needs only 106h.
    # Launch Thu 10 Jun: 3 working days (deadline 24h). Needed 146 + 24 (buffer) = 170h: 146h short,
    # 18.25 days, 19 rounded up: the span plus the buffer less the window.
    campaign_id = await new_campaign(sessions, launch=date(2027, 6, 10), template=LAUNCH)
    plan, task = await load(sessions, campaign_id)

    assert [t.template_key for t in plan.critical_path] == [
        "brief", "research", "positioning", "customer_stories", "press_kit", "content_ready", "media_outreach",
        "go_no_go", "launch"]
    assert plan.critical_days == 18.25
    assert plan.timeline.compressed_days == 19 == math.ceil(plan.critical_days + 3 - 3)

    # Once the brief and the research are done (Wed 9 Jun 17:00) the path still spans its lags: 146 - 32.
    wednesday_evening = datetime(2027, 6, 9, 17, tzinfo=NOW.tzinfo)
    await act(sessions, campaign_id, "brief", tasks.complete, now=wednesday_evening)
    replanned = await act(sessions, campaign_id, "research", tasks.complete, now=wednesday_evening)
    plan, _ = await load(sessions, campaign_id)
    assert replanned is not None and replanned.critical_days == plan.critical_days == (146 - 32) / 8
    assert [t.template_key for t in plan.remaining_critical_path][:2] == ["positioning", "customer_stories"]


# 2. Due dates that agree with the links ------------------------------------------------------------------

async def test_a_compressed_plan_is_due_in_link_order_and_shows_what_is_possible(sessions: Sessions) -> None:
    campaign_id = await new_campaign(sessions, launch=date(2027, 6, 10), template=LAUNCH)
    plan, task = await load(sessions, campaign_id)
    assert plan.compressed
    assert_no_task_due_before_what_it_waits_for(await links(sessions, campaign_id))
    # Due is when the plan counts on it: never before the earliest finish, so nothing is due already.
    for t in plan.tasks:
        assert t.due_at is not None and t.earliest_finish_at is not None
        assert t.due_at >= t.earliest_finish_at or (t.is_milestone and t.template_key == "launch"), t.template_key
    # The launch milestone is due on the projected launch day, after the work it waits for.
    assert plan.timeline.projected_launch is not None and plan.timeline.projected_launch > date(2027, 6, 10)
    assert wall(task["launch"].due_at).date() == plan.timeline.projected_launch
    # Late against the launch by as much as the plan is short: the critical tasks by the whole 19 days.
    assert {plans.late_working_days(t) for t in plan.remaining_critical_path} == {19}
    assert plans.late_working_days(task["demo_video"]) < 19


async def test_the_small_compressed_plan_launches_after_its_last_task(sessions: Sessions) -> None:
    # test_plans' small plan with launch Thu 10 Jun: review can finish Thu 10 17:00 (offset 32), so the
    # launch milestone is due on the projected launch day, Fri 11 09:00, not on Thu 10 before it.
    campaign_id = await new_campaign(sessions, launch=date(2027, 6, 10))
    plan, task = await load(sessions, campaign_id)
    assert wall(task["review"].due_at) == datetime(2027, 6, 10, 17)
    assert wall(task["launch"].due_at) == datetime(2027, 6, 11, 9)
    assert_no_task_due_before_what_it_waits_for(await links(sessions, campaign_id))


async def test_a_date_a_person_set_holds_the_work_before_it(sessions: Sessions) -> None:
    # Well-ahead small plan (launch Wed 23 Jun): copy is planned due Fri 18 17:00 and brief Wed 16 17:00.
    # Someone pins copy to Wed 9 Jun (17:00, offset 24): brief must then be done by 24 - 16 = 8, Mon 7
    # 17:00, and it can be (0-8). review keeps its latest date.
    campaign_id = await new_campaign(sessions, launch=date(2027, 6, 23))
    await act(sessions, campaign_id, "copy", tasks.set_due, now=NOW, due=date(2027, 6, 9))
    _, task = await load(sessions, campaign_id)
    assert wall(task["copy"].due_at) == datetime(2027, 6, 9, 17)
    assert wall(task["brief"].due_at) == datetime(2027, 6, 7, 17)
    assert wall(task["review"].due_at) == datetime(2027, 6, 21, 17)
    assert_no_task_due_before_what_it_waits_for(await links(sessions, campaign_id))
    assert plans.late_working_days(task["brief"]) == 0

    # Pinned to Tue 8 Jun (offset 16) instead, copy cannot make it: brief is due at 0, so late by a day,
    # and copy itself (8-24) is late by a day against its own date.
    await act(sessions, campaign_id, "copy", tasks.set_due, now=NOW, due=date(2027, 6, 8))
    _, task = await load(sessions, campaign_id)
    assert wall(task["brief"].due_at) == datetime(2027, 6, 7, 9)
    assert (plans.late_working_days(task["brief"]), plans.late_working_days(task["copy"])) == (1, 1)
    assert_no_task_due_before_what_it_waits_for(await links(sessions, campaign_id))


# 3. What each (re)plan changed ---------------------------------------------------------------------------

async def test_each_replan_says_what_it_changed(sessions: Sessions) -> None:
    # Launch Mon 14 Jun, deadline 40 = the 32h chain + 8h buffer. design 8h → 24h: brief 0-8, design 8-32,
    # review 32-36, launch 44: design is critical now, 4h of the 8h buffer gone, the launch holds.
    campaign_id = await new_campaign(sessions, launch=date(2027, 6, 14))
    _, task = await load(sessions, campaign_id)
    summary = await act(sessions, campaign_id, "design", tasks.reestimate, now=NOW, hours=24)
    assert summary is not None and summary.change is not None
    change = summary.change
    assert (change.first, change.launch_before, change.launch_after) == (False, date(2027, 6, 14), date(2027, 6, 14))
    assert (change.buffer_left_before, change.buffer_left_after) == (100, 50)
    assert [t.id for t in change.newly_critical] == [task["design"].id]

    # copy 16h → 32h: brief 0-8, copy 8-40, review 44-48 = Mon 14 17:00: the launch moves to Tue 15,
    # 16h over the buffer (0% left). The path runs through copy again: copy (off it a moment ago, with
    # float 0 against the path's -4) becomes critical; brief and review were already.
    summary = await act(sessions, campaign_id, "copy", tasks.reestimate, now=NOW, hours=32)
    assert summary is not None and summary.change is not None
    change = summary.change
    assert (change.launch_before, change.launch_after) == (date(2027, 6, 14), date(2027, 6, 15))
    assert (change.buffer_left_before, change.buffer_left_after) == (50, 0)
    assert [t.id for t in change.newly_critical] == [task["copy"].id]


async def test_a_new_plan_is_a_first_plan(sessions: Sessions) -> None:
    async with sessions.begin() as db:
        member = await add_member(db, "U0OWNER")
        created = await campaigns.create_campaign(db=db, name="X", template=small_template(),
                                                  launch_date=date(2027, 6, 23), owner=member, now=NOW)
    assert created.change is not None and created.change.first
    assert created.change.launch_after == date(2027, 6, 23) and created.change.buffer_left_after == 100
    assert created.critical_days == 32 / 8  # brief 8 + copy 16 + the 4h lag + review 4


def test_the_change_line_is_one_escaped_line() -> None:
    work = [Task(id=i, title=f"t{i}") for i in range(1, 10)]
    change = plans.PlanChange(first=False, launch_before=date(2027, 6, 14), launch_after=date(2027, 6, 15),
                              buffer_left_before=50, buffer_left_after=0, newly_critical=work)
    line = plan_change_line(change, date(2027, 6, 14))
    assert line == ("Re-plan: launch moved from Mon 14 Jun to Tue 15 Jun · buffer left 50% → 0% · newly critical: "
                    "`T-1`, `T-2`, `T-3`, `T-4`, `T-5`, `T-6` and 3 more")
    same = plans.PlanChange(first=False, launch_before=date(2027, 6, 14), launch_after=date(2027, 6, 14),
                            buffer_left_before=100, buffer_left_after=100)
    assert plan_change_line(same, date(2027, 6, 14)) == (
        "Re-plan: launch unchanged (Mon 14 Jun) · buffer left 100% → 100% · no task became critical")
    # Read back from the snapshots: the reason is stored text, so it is escaped; the path is not known.
    shown = last_change_line(plans.PlanChange(
        first=False, launch_before=date(2027, 6, 14), launch_after=date(2027, 6, 14), buffer_left_before=100,
        buffer_left_after=50, critical_known=False, reason="<!channel> & *T-1*\ndone", at=NOW), date(2027, 6, 14), "UTC")
    assert "<!channel>" not in shown and "&lt;!channel&gt; &amp;" in shown and "\n" not in shown
    assert shown.endswith(": launch unchanged (Mon 14 Jun) · buffer left 100% → 50%")
