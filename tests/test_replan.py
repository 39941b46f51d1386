"""Re-planning through services.tasks against the real database: buffer use, alerts, re-estimates, person-set
due dates, blocking, snapshots; then who may change a task and what bad input leaves behind.

The plan is test_plans.small_template(): brief 8h -> copy 16h -(4h lag)-> review 4h -> launch, and
brief -> design 8h -> review, with an 8h buffer. Offsets are working hours from the first working moment
after `now`, in the owner's Berlin calendar (09:00-17:00, Monday to Friday).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from models import AuditEntry, TaskStatus
from services import authz, staffing, tasks
from services.errors import InvalidInput, NotAllowed
from tests.test_plans import (
    BERLIN,
    NOW,
    Op,
    Sessions,
    act,
    add_member,
    load,
    new_campaign,
    snapshots,
    stored_state,
    wall,
)

BUFFER_50 = "50% of the buffer is used up (crossed 50%)."


async def test_late_critical_work_uses_the_buffer_and_alerts_once_per_level(sessions: Sessions) -> None:
    # Launch Mon 14 Jun, now Mon 7 09:00: deadline 40 = 32h chain + 8h buffer, no float on the chain.
    # brief is due at its latest finish, 8 = Mon 7 17:00.
    campaign_id = await new_campaign(sessions, launch=date(2027, 6, 14))
    plan, task = await load(sessions, campaign_id)
    assert (plan.timeline.buffer_consumed_pct, plan.risk) == (0, "on track")
    assert wall(task["brief"].due_at) == datetime(2027, 6, 7, 17)
    ref = {key: tasks.task_ref(t) for key, t in task.items()}

    # Tue 8 13:00, brief done late. Deadline from here: 4 + 8 + 8 + 8 = 28. The rest starts now:
    # copy 0-16, review 20-24, launch 24 + 8 = 32: 4h of the 8h buffer gone, 50%.
    tuesday = datetime(2027, 6, 8, 13, tzinfo=BERLIN)
    first = await act(sessions, campaign_id, "brief", tasks.complete, now=tuesday)
    assert first is not None and first.alerts == [BUFFER_50]
    assert (first.timeline.buffer_consumed_pct, first.timeline.alert_level, first.risk) == (50, 50, "at risk")
    assert first.timeline.projected_launch == date(2027, 6, 14)  # the work still ends before launch day
    assert [t.template_key for t in first.remaining_critical_path] == ["copy", "review", "launch"]

    # Same afternoon, design (off the critical path) done on time and copy blocked: still 50%, no new alert.
    second = await act(sessions, campaign_id, "design", tasks.complete, now=tuesday)
    third = await act(sessions, campaign_id, "copy", tasks.block, now=tuesday, reason="waiting  for\nlegal review")
    assert second is not None and third is not None
    assert (second.alerts, third.alerts) == ([], [])
    assert second.timeline.buffer_consumed_pct == third.timeline.buffer_consumed_pct == 50
    _, task = await load(sessions, campaign_id)
    assert (task["copy"].status, task["copy"].blocked_reason) == (TaskStatus.BLOCKED, "waiting for legal review")
    # copy's latest finish after the re-plan: review LS 28 - 8 - 4 = 16, minus the lag 12 = Wed 9 17:00,
    # so its latest start 12 - 16 = -4 is already past: the plan shows what is possible instead,
    # earliest finish 0 + 16 = Thu 10 13:00 (and the buffer shows the cost).
    assert wall(task["copy"].due_at) == datetime(2027, 6, 10, 13)

    # Fri 11 13:00, copy done (late). Deadline 4 (Fri 13:00-17:00). review waits for the lag: 4-8, then
    # launch 16: 12h over the deadline, 150% of the buffer. The work itself ends at 8 = Mon 14 13:00,
    # after the launch moment (Mon 09:00): the launch moves to Tue 15.
    friday = datetime(2027, 6, 11, 13, tzinfo=BERLIN)
    fourth = await act(sessions, campaign_id, "copy", tasks.complete, now=friday)
    assert fourth is not None
    assert fourth.alerts == [
        "The launch is now projected for Tue 15 Jun 2027, after the target Mon 14 Jun 2027.",
        "150% of the buffer is used up (crossed 100%).",
    ]
    assert (fourth.timeline.buffer_consumed_pct, fourth.timeline.alert_level) == (150, 100)
    assert (fourth.timeline.projected_launch, fourth.risk) == (date(2027, 6, 15), "late")
    assert fourth.timeline.progress_pct == round(32 / 36 * 100, 1)  # brief, design, copy of 36h

    # Another re-plan at the same level and the same projection: nothing new to tell.
    fifth = await act(sessions, campaign_id, "review", tasks.block, now=friday, reason="waiting for sign-off")
    assert fifth is not None and fifth.alerts == []
    assert (fifth.timeline.buffer_consumed_pct, fifth.timeline.projected_launch) == (150, date(2027, 6, 15))

    # One snapshot per (re)plan, with its reason and moment.
    assert await snapshots(sessions, campaign_id) == [
        ("planned", NOW),
        (f"{ref['brief']} done late", tuesday),
        (f"{ref['design']} done", tuesday),
        (f"{ref['copy']} blocked", tuesday),
        (f"{ref['copy']} done late", friday),
        (f"{ref['review']} blocked", friday),
    ]
    plan, task = await load(sessions, campaign_id)
    assert plan.timeline.buffer_consumed_pct == 150 and plan.timeline.computed_at == friday
    assert (task["brief"].completed_at, task["copy"].completed_at) == (tuesday, friday)
    assert task["brief"].status is TaskStatus.DONE and not task["brief"].on_critical_path


async def test_a_longer_estimate_moves_latest_starts_earlier(sessions: Sessions) -> None:
    # The well-ahead plan of test_plans (launch Wed 23 Jun, deadline 96) with copy 24h instead of 16h:
    # copy LF 80 LS 56 (was 64) | brief LF 56 LS 48 (was 64 and 56) | review, design unchanged.
    # Forward: copy 8-32, review 36-40, launch 48: floats 48 on the chain, design still 76 - 8 = 68.
    campaign_id = await new_campaign(sessions, launch=date(2027, 6, 23))
    summary = await act(sessions, campaign_id, "copy", tasks.reestimate, now=NOW, hours=24)
    assert summary is not None and summary.alerts == []
    _, task = await load(sessions, campaign_id)

    assert task["copy"].duration_hours == 24
    assert (wall(task["copy"].start_at), wall(task["copy"].due_at)) == (datetime(2027, 6, 16, 9), datetime(2027, 6, 18, 17))
    assert (wall(task["brief"].start_at), wall(task["brief"].due_at)) == (datetime(2027, 6, 15, 9), datetime(2027, 6, 15, 17))
    assert wall(task["review"].start_at) == datetime(2027, 6, 21, 13)
    assert wall(task["design"].start_at) == datetime(2027, 6, 18, 13)
    assert {k: t.float_hours for k, t in task.items()} == {
        "brief": 48, "copy": 48, "design": 68, "review": 48, "launch": 48}
    assert (await snapshots(sessions, campaign_id))[-1] == (f"{tasks.task_ref(task['copy'])} re-estimated 16h → 24h", NOW)


async def test_a_due_date_set_by_a_person_pushes_successors_and_is_kept(sessions: Sessions) -> None:
    # Well-ahead plan: brief is planned due Wed 16 Jun 17:00 (64). Set to Thu 17 Jun: finish at 72, so it
    # starts at 64 (Thu 09:00). copy 72-88 (Fri 18 09:00 - Mon 21 17:00), design 72-80, review 92-96
    # (Tue 22 13:00-17:00), launch 104: 8h over the deadline of 96, the whole buffer (100%). The work ends
    # exactly at the launch moment, so the launch holds.
    campaign_id = await new_campaign(sessions, launch=date(2027, 6, 23))
    summary = await act(sessions, campaign_id, "brief", tasks.set_due, now=NOW, due=date(2027, 6, 17))
    assert summary is not None
    assert summary.alerts == ["100% of the buffer is used up (crossed 100%)."]
    assert (summary.timeline.buffer_consumed_pct, summary.timeline.projected_launch) == (100, date(2027, 6, 23))
    assert summary.risk == "at risk"
    _, task = await load(sessions, campaign_id)
    assert (wall(task["brief"].due_at), task["brief"].due_fixed) == (datetime(2027, 6, 17, 17), True)
    assert wall(task["brief"].earliest_start_at) == datetime(2027, 6, 17, 9)
    assert (wall(task["copy"].earliest_start_at), wall(task["copy"].earliest_finish_at)) == (
        datetime(2027, 6, 18, 9), datetime(2027, 6, 21, 17))
    assert (wall(task["review"].earliest_start_at), wall(task["review"].earliest_finish_at)) == (
        datetime(2027, 6, 22, 13), datetime(2027, 6, 22, 17))
    # copy's latest finish (80, Fri 18 17:00) is out of reach now: it is due when it can finish, 88.
    assert wall(task["copy"].due_at) == datetime(2027, 6, 21, 17)
    assert task["copy"].float_hours == -8

    # Tue 15 Jun 09:00, design blocked: the re-plan keeps brief's date (its planned latest finish would be
    # Wed 16 17:00 again). Deadline 48, brief 16-24, copy 24-40, review 44-48, launch 56: still 100%.
    tuesday = datetime(2027, 6, 15, 9, tzinfo=BERLIN)
    again = await act(sessions, campaign_id, "design", tasks.block, now=tuesday, reason="no brand assets")
    assert again is not None and again.alerts == []
    assert again.timeline.buffer_consumed_pct == 100
    _, task = await load(sessions, campaign_id)
    assert (wall(task["brief"].due_at), task["brief"].due_fixed) == (datetime(2027, 6, 17, 17), True)
    assert task["design"].blocked_reason == "no brand assets"
    assert [reason for reason, _ in await snapshots(sessions, campaign_id)] == [
        "planned", f"{tasks.task_ref(task['brief'])} due 2027-06-17", f"{tasks.task_ref(task['design'])} blocked"]


async def test_a_date_set_on_the_launch_milestone_is_kept_too(sessions: Sessions) -> None:
    # Launch Wed 23 Jun (deadline 96); the launch milestone set to Fri 25 Jun, i.e. finishing at 17:00 then:
    # Wed 23 ends at 104, Thu 24 at 112, Fri 25 at 120. Launch ES 120: 24h over, 300% of the buffer;
    # "the work" (finish minus buffer) ends at 112 = Thu 24 17:00, so the projected launch is Fri 25.
    campaign_id = await new_campaign(sessions, launch=date(2027, 6, 23))
    moved = await act(sessions, campaign_id, "launch", tasks.set_due, now=NOW, due=date(2027, 6, 25))
    again = await act(sessions, campaign_id, "design", tasks.block, now=NOW, reason="no brand assets")
    assert moved is not None and again is not None
    for summary in (moved, again):  # the next re-plan must not fall back to the launch date
        assert (summary.timeline.buffer_consumed_pct, summary.timeline.projected_launch) == (300, date(2027, 6, 25))
    assert (len(moved.alerts), again.alerts) == (2, [])
    _, task = await load(sessions, campaign_id)
    assert (wall(task["launch"].due_at), task["launch"].due_fixed) == (datetime(2027, 6, 25, 17), True)


# Authorization and bad input ----------------------------------------------------------------------------

async def test_only_the_assignee_the_owner_or_an_admin_may_change_a_task(sessions: Sessions) -> None:
    campaign_id = await new_campaign(sessions, launch=date(2027, 6, 23))
    async with sessions.begin() as db:
        for slack_user_id in ("U0CAROL", "U0DAVE", "U0ERIN"):
            await add_member(db, slack_user_id)
    before = await stored_state(sessions, campaign_id)

    attempts: list[tuple[Op, dict[str, Any]]] = [
        (tasks.complete, {}), (tasks.block, {"reason": "busy"}),
        (tasks.set_due, {"due": date(2027, 6, 18)}), (tasks.reestimate, {"hours": 4.0}),
    ]
    for op, args in attempts:  # Carol is neither assignee, owner nor admin
        await act(sessions, campaign_id, "copy", op, now=NOW, by="U0CAROL", expect=NotAllowed, **args)
    assert await stored_state(sessions, campaign_id) == before

    # An admin may; so may the assignee, once the owner has assigned the task.
    assert await act(sessions, campaign_id, "brief", tasks.complete, now=NOW, by="U0DAVE", admin=True)
    copy_id = (await load(sessions, campaign_id))[1]["copy"].id
    async with sessions.begin() as db:
        owner, erin = await add_member(db, "U0OWNER"), await add_member(db, "U0ERIN")
        copy = await tasks.get_task(db=db, task_id=copy_id)
        await staffing.assign_to(db=db, task=copy, member=erin, actor=authz.Actor(member=owner))
    assert await act(sessions, campaign_id, "copy", tasks.reestimate, now=NOW, by="U0ERIN", hours=12)
    _, task = await load(sessions, campaign_id)
    assert task["brief"].status is TaskStatus.DONE and task["copy"].duration_hours == 12
    async with sessions() as db:
        actors = (await db.scalars(select(AuditEntry.actor).where(AuditEntry.action.like("task.%"))
                                   .order_by(AuditEntry.id))).all()
    assert actors == ["U0DAVE", "U0OWNER", "U0ERIN"]  # completed, assigned, re-estimated


async def test_bad_input_changes_nothing(sessions: Sessions) -> None:
    campaign_id = await new_campaign(sessions, launch=date(2027, 6, 23))
    assert await act(sessions, campaign_id, "brief", tasks.complete, now=NOW)
    before = await stored_state(sessions, campaign_id)

    await act(sessions, campaign_id, "launch", tasks.reestimate, now=NOW, hours=4, expect=InvalidInput)
    await act(sessions, campaign_id, "copy", tasks.reestimate, now=NOW, hours=0, expect=InvalidInput)
    await act(sessions, campaign_id, "copy", tasks.set_due, now=NOW, due=date(2027, 6, 4), expect=InvalidInput)
    await act(sessions, campaign_id, "copy", tasks.block, now=NOW, reason=" \n ", expect=InvalidInput)
    await act(sessions, campaign_id, "brief", tasks.complete, now=NOW, expect=InvalidInput)
    await act(sessions, campaign_id, "brief", tasks.set_due, now=NOW, due=date(2027, 6, 18), expect=InvalidInput)

    assert await stored_state(sessions, campaign_id) == before


async def test_the_past_is_the_owners_past(sessions: Sessions) -> None:
    # 20:00 UTC on Sun 6 Jun is already Mon 7 Jun (05:00) for an owner in Tokyo: Sunday is in the past
    # there, though not yet in UTC; Monday is today, so it may be picked (due at 17:00 Tokyo time).
    sunday_evening = datetime(2027, 6, 6, 20, 0, tzinfo=UTC)
    campaign_id = await new_campaign(sessions, launch=date(2027, 6, 23), owner="U0TOKYO", tz="Asia/Tokyo",
                                     now=sunday_evening)
    await act(sessions, campaign_id, "copy", tasks.set_due, now=sunday_evening, by="U0TOKYO",
              due=date(2027, 6, 6), expect=InvalidInput)
    assert await act(sessions, campaign_id, "copy", tasks.set_due, now=sunday_evening, by="U0TOKYO",
                     due=date(2027, 6, 7))
    _, task = await load(sessions, campaign_id)
    assert (wall(task["copy"].due_at, ZoneInfo("Asia/Tokyo")), task["copy"].due_fixed) == (datetime(2027, 6, 7, 17), True)


async def test_the_daily_sweep_replans_untouched_late_work_and_alerts_once(sessions: Sessions) -> None:
    from sqlalchemy import select

    from models import Notification, TimelineSnapshot
    from services import plan_alerts, sweep

    # Launch Mon 14 Jun: 32 h of work + 8 h buffer fill the 40 working hours from Mon 7 09:00 exactly.
    campaign_id = await new_campaign(sessions, launch=date(2027, 6, 14))
    # Wed 9 09:00, nobody did anything: 16 h gone, 32 h still to do -> finishes 8 h after the launch moment,
    # 16 h into an 8 h buffer: 200% used, the launch projected a day late.
    wednesday = datetime(2027, 6, 9, 9, tzinfo=BERLIN)
    async with sessions.begin() as db:
        assert await sweep.replan_stale(db=db, now=wednesday) == 1
    async with sessions.begin() as db:  # the same day again: the plan is fresh, nothing to do
        assert await sweep.replan_stale(db=db, now=wednesday + timedelta(hours=3)) == 0
    plan, _ = await load(sessions, campaign_id)
    assert plan.timeline.buffer_consumed_pct == 200 and plan.risk == "late"
    async with sessions() as db:
        alerts = (await db.scalars(select(Notification).where(Notification.kind == "plan_alert"))).all()
        reasons = (await db.scalars(select(TimelineSnapshot.reason))).all()
    # One alert per re-plan (the one key scheme of `plan_alerts`), and the plan is re-planned once that day.
    assert len(alerts) == 1 and alerts[0].dedupe_key == plan_alerts.dedupe_key(campaign_id, wednesday)
    assert alerts[0].dedupe_key == f"plan-alert:{campaign_id}:2027-06-09T07:00:00+00:00"
    assert any("projected" in alert for alert in alerts[0].payload["alerts"])
    assert reasons.count("daily re-plan") == 1
