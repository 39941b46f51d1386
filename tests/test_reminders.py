"""The reminder sweep: each rule at a hand-checked `now`, idempotence, catch-up, snooze/mute, concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import (
    Approval,
    ApprovalStatus,
    Campaign,
    CampaignStatus,
    Notification,
    Task,
    TaskStatus,
    TeamMember,
    Urgency,
)
from models.team import default_availability
from services.reminders import due_notifications
from services.sweep import sweep, try_lock

Sessions = async_sessionmaker[AsyncSession]
BERLIN = ZoneInfo("Europe/Berlin")
D = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)  # a Wednesday, noon UTC
H = timedelta(hours=1)


async def add_member(db: AsyncSession, slack_id: str, *, tz: str = "UTC", hours: dict[str, Any] | None = None,
                     **extra: Any) -> int:
    member = TeamMember(slack_user_id=slack_id, name=slack_id, timezone=tz,
                        weekly_availability={} if hours is None else hours, **extra)
    db.add(member)
    await db.flush()
    return member.id


async def world(sessions: Sessions, *, policy: dict[str, Any] | None = None, contact: bool = True,
                assignee_tz: str = "UTC", assignee_hours: dict[str, Any] | None = None) -> dict[str, int]:
    """Owner O, assignee A, escalation contact C; campaign CM and one task T due at D."""
    async with sessions.begin() as db:
        owner = await add_member(db, "UOWNER")
        assignee = await add_member(db, "UASSIGNEE", tz=assignee_tz, hours=assignee_hours)
        contact_id = await add_member(db, "UCONTACT") if contact else None
        campaign = Campaign(name="Spring launch", template="small", launch_date=date(2027, 5, 1),
                            status=CampaignStatus.ACTIVE, owner_id=owner, escalation_contact_id=contact_id,
                            escalation_policy=policy or {})
        db.add(campaign)
        await db.flush()
        task = Task(campaign_id=campaign.id, title="Write copy", assignee_id=assignee, due_at=D)
        db.add(task)
        await db.flush()
        return {"owner": owner, "assignee": assignee, "contact": contact_id or 0, "campaign": campaign.id,
                "task": task.id}


async def keys_written(sessions: Sessions, step: Callable[..., Awaitable[int]], now: datetime) -> set[str]:
    """Run one sweep step (`step(db=, now=)`, returning how many rows it wrote) at `now`; the keys it wrote."""
    async with sessions.begin() as db:
        before = set(await db.scalars(select(Notification.dedupe_key)))
        written = await step(db=db, now=now)
        after = set(await db.scalars(select(Notification.dedupe_key)))
    assert written == len(after - before)
    return after - before


async def run(sessions: Sessions, now: datetime) -> set[str]:
    """Sweep at `now`; the keys it wrote (digests left out: tests of the digest look at them directly)."""
    return {key for key in await keys_written(sessions, due_notifications, now) if not key.startswith("digest:")}


async def rows(sessions: Sessions) -> dict[str, Notification]:
    async with sessions() as db:
        return {n.dedupe_key: n for n in await db.scalars(select(Notification))}


async def change(sessions: Sessions, model: Any, row_id: int, **values: Any) -> None:
    async with sessions.begin() as db:
        await db.execute(update(model).where(model.id == row_id).values(**values))


async def test_task_timeline_each_slot_once(sessions: Sessions) -> None:
    w = await world(sessions)
    t = f"T-{w['task']}"
    iso = D.isoformat()
    assert await run(sessions, D - 25 * H) == set()
    assert await run(sessions, D - 24 * H) == {f"reminder:{t}:due:24h:{iso}"}
    assert await run(sessions, D - 24 * H) == set()  # same now: nothing new
    assert await run(sessions, D - 3 * H) == set()
    assert await run(sessions, D - 2 * H) == {f"reminder:{t}:due:2h:{iso}"}
    assert await run(sessions, D - H) == set()
    assert await run(sessions, D) == {f"reminder:{t}:due-now:{iso}"}
    assert await run(sessions, D + 6 * H) == set()  # same local day: "due now" was the day's message
    assert await run(sessions, D + 12 * H) == {f"reminder:{t}:overdue:2027-03-11"}
    assert await run(sessions, D + 24 * H) == set()  # grace is "more than 24 h"
    assert await run(sessions, D + 24 * H + timedelta(seconds=1)) == {f"escalation:{t}:owner"}
    assert await run(sessions, D + 48 * H + timedelta(seconds=1)) == {
        f"escalation:{t}:contact", f"reminder:{t}:overdue:2027-03-12"}
    assert await run(sessions, D + 60 * H) == {f"reminder:{t}:overdue:2027-03-13"}
    assert await run(sessions, D + 60 * H) == set()

    written = await rows(sessions)
    owner_escalation = written[f"escalation:{t}:owner"]
    assert (owner_escalation.recipient_id, owner_escalation.urgency) == (w["owner"], Urgency.HIGH)
    assert owner_escalation.payload["kind"] == "task_escalation"
    assert written[f"escalation:{t}:contact"].recipient_id == w["contact"]
    reminder = written[f"reminder:{t}:due:24h:{iso}"]
    assert reminder.recipient_id == w["assignee"] and reminder.urgency == Urgency.NORMAL
    assert reminder.payload == {
        "kind": "task_reminder", "task": t, "task_id": w["task"], "title": "Write copy",
        "campaign": f"CM-{w['campaign']}", "campaign_id": w["campaign"], "campaign_name": "Spring launch",
        "due": iso, "reason": "due_soon", "assignee_id": w["assignee"], "offset_hours": 24.0,
    }
    assert written[f"reminder:{t}:overdue:2027-03-12"].payload["days_overdue"] == 2


async def test_catching_up_after_downtime_sends_today_only(sessions: Sessions) -> None:
    """Down from before the first reminder until due+3 days: today's overdue reminder and the escalations.

    The missed 24h/2h/due-now reminders and the overdue reminders of the missed days are not sent:
    they are superseded by what is true now.
    """
    w = await world(sessions)
    t = f"T-{w['task']}"
    assert await run(sessions, D + 72 * H) == {
        f"reminder:{t}:overdue:2027-03-13", f"escalation:{t}:owner", f"escalation:{t}:contact"}
    assert await run(sessions, D + 73 * H) == set()


async def test_a_late_first_sweep_before_due_sends_the_latest_reminder_only(sessions: Sessions) -> None:
    w = await world(sessions)
    assert await run(sessions, D - H) == {f"reminder:T-{w['task']}:due:2h:{D.isoformat()}"}


async def test_moving_the_due_date_rearms_the_reminders(sessions: Sessions) -> None:
    w = await world(sessions)
    t = f"T-{w['task']}"
    assert await run(sessions, D - 24 * H) == {f"reminder:{t}:due:24h:{D.isoformat()}"}
    later = D + 48 * H
    await change(sessions, Task, w["task"], due_at=later)
    assert await run(sessions, later - 24 * H) == {f"reminder:{t}:due:24h:{later.isoformat()}"}


async def test_critical_and_blocked_tasks_escalate_after_the_short_grace(sessions: Sessions) -> None:
    w = await world(sessions)
    t = f"T-{w['task']}"
    await change(sessions, Task, w["task"], on_critical_path=True)
    assert await run(sessions, D + 4 * H) == {f"reminder:{t}:due-now:{D.isoformat()}"}  # grace is "more than"
    assert await run(sessions, D + 4 * H + timedelta(seconds=1)) == {f"escalation:{t}:owner"}
    assert await run(sessions, D + 8 * H + timedelta(seconds=1)) == {f"escalation:{t}:contact"}


async def test_blocked_counts_as_critical(sessions: Sessions) -> None:
    w = await world(sessions, policy={"critical_grace_hours": 1, "reminder_offsets_hours": [1]})
    t = f"T-{w['task']}"
    await change(sessions, Task, w["task"], status=TaskStatus.BLOCKED)
    assert await run(sessions, D + 2 * H + timedelta(seconds=1)) == {
        f"reminder:{t}:due-now:{D.isoformat()}", f"escalation:{t}:owner", f"escalation:{t}:contact"}


async def test_campaign_policy_overrides_the_defaults(sessions: Sessions) -> None:
    w = await world(sessions, policy={"reminder_offsets_hours": [48], "task_grace_hours": 2}, contact=False)
    t = f"T-{w['task']}"
    assert await run(sessions, D - 48 * H) == {f"reminder:{t}:due:48h:{D.isoformat()}"}
    assert await run(sessions, D - 2 * H) == set()  # no 2h offset in this policy
    assert await run(sessions, D + 3 * H) == {f"reminder:{t}:due-now:{D.isoformat()}", f"escalation:{t}:owner"}
    assert await run(sessions, D + 5 * H) == set()  # no escalation contact: no level 2


async def test_snooze_holds_reminders_not_escalations(sessions: Sessions) -> None:
    w = await world(sessions)
    t = f"T-{w['task']}"
    await change(sessions, Task, w["task"], snoozed_until=D - 10 * H)
    assert await run(sessions, D - 24 * H) == set()
    assert await run(sessions, D - 10 * H) == {f"reminder:{t}:due:24h:{D.isoformat()}"}  # snooze over
    await change(sessions, Task, w["task"], snoozed_until=D + 100 * H)
    assert await run(sessions, D + 25 * H) == {f"escalation:{t}:owner"}


async def test_mute_holds_reminders_not_escalations(sessions: Sessions) -> None:
    w = await world(sessions)
    t = f"T-{w['task']}"
    await change(sessions, TeamMember, w["assignee"], muted_campaigns=[w["campaign"]])
    await change(sessions, TeamMember, w["owner"], muted_campaigns=[w["campaign"]])
    assert await run(sessions, D - 2 * H) == set()
    assert await run(sessions, D + 25 * H) == {f"escalation:{t}:owner"}  # urgent: through the owner's mute too


async def test_closed_tasks_and_paused_campaigns_are_quiet(sessions: Sessions) -> None:
    w = await world(sessions)
    await change(sessions, Task, w["task"], status=TaskStatus.DONE)
    assert await run(sessions, D + 72 * H) == set()
    await change(sessions, Task, w["task"], status=TaskStatus.IN_PROGRESS)
    await change(sessions, Campaign, w["campaign"], status=CampaignStatus.PAUSED)
    assert await run(sessions, D + 72 * H) == set()
    await change(sessions, Campaign, w["campaign"], status=CampaignStatus.PLANNING)
    assert len(await run(sessions, D + 72 * H)) == 3


async def test_quiet_hours_defer_reminders_but_not_escalations(sessions: Sessions) -> None:
    # Berlin, Mon-Fri 09-17. Due Wednesday 2027-03-24 22:00 CET; the 24h reminder is computed on
    # Tuesday at 22:00 local and waits for Wednesday 09:00 local.
    due = datetime(2027, 3, 24, 22, 0, tzinfo=BERLIN)
    w = await world(sessions, assignee_tz="Europe/Berlin", assignee_hours=default_availability())
    await change(sessions, Task, w["task"], due_at=due)
    t = f"T-{w['task']}"
    assert await run(sessions, due - 24 * H) == {f"reminder:{t}:due:24h:{due.astimezone(UTC).isoformat()}"}
    assert await run(sessions, due + 25 * H) == {f"escalation:{t}:owner", f"reminder:{t}:overdue:2027-03-25"}
    written = await rows(sessions)
    assert written[f"reminder:{t}:due:24h:{due.astimezone(UTC).isoformat()}"].scheduled_for == datetime(
        2027, 3, 24, 9, 0, tzinfo=BERLIN)
    assert written[f"escalation:{t}:owner"].scheduled_for == due + 25 * H  # urgent: at once


async def test_approval_reminder_and_escalation_levels(sessions: Sessions) -> None:
    w = await world(sessions)
    async with sessions.begin() as db:
        delegate = await add_member(db, "UDELEGATE")
        approval = Approval(campaign_id=w["campaign"], stage="Legal", approver_id=w["assignee"],
                            delegated_to_id=delegate, deadline=D)
        db.add(approval)
        await db.flush()
        ap = f"AP-{approval.id}"
        # a pending approval without a deadline and a decided one: never chased
        db.add(Approval(campaign_id=w["campaign"], stage="Brand", approver_id=w["owner"]))
        db.add(Approval(campaign_id=w["campaign"], stage="Final", approver_id=w["contact"], deadline=D,
                        status=ApprovalStatus.APPROVED))
    await change(sessions, Task, w["task"], status=TaskStatus.DONE)
    assert await run(sessions, D - 25 * H) == set()
    assert await run(sessions, D - 24 * H) == {f"reminder:{ap}:deadline:{D.isoformat()}"}
    assert await run(sessions, D - H) == set()
    assert await run(sessions, D) == {f"escalation:{ap}:level-1"}
    assert await run(sessions, D + 23 * H) == set()
    assert await run(sessions, D + 24 * H) == {f"escalation:{ap}:level-2"}
    written = await rows(sessions)
    assert written[f"reminder:{ap}:deadline:{D.isoformat()}"].recipient_id == delegate
    assert written[f"reminder:{ap}:deadline:{D.isoformat()}"].payload["kind"] == "approval_reminder"
    assert written[f"escalation:{ap}:level-1"].recipient_id == w["owner"]
    assert written[f"escalation:{ap}:level-2"].recipient_id == w["contact"]
    assert written[f"escalation:{ap}:level-2"].urgency == Urgency.HIGH


async def test_morning_digest(sessions: Sessions) -> None:
    # Berlin, Mon-Fri 09-17; Monday 2027-03-22. One task overdue, one due today, one approval waiting.
    w = await world(sessions, assignee_tz="Europe/Berlin", assignee_hours=default_availability())
    async with sessions.begin() as db:
        await db.execute(update(Task).where(Task.id == w["task"]).values(due_at=datetime(2027, 3, 19, 17, 0,
                                                                                           tzinfo=BERLIN)))
        db.add(Task(campaign_id=w["campaign"], title="Design", assignee_id=w["assignee"],
                    due_at=datetime(2027, 3, 22, 16, 0, tzinfo=BERLIN)))
        db.add(Approval(campaign_id=w["campaign"], stage="Legal", approver_id=w["assignee"]))

    async def digests(now: datetime) -> dict[str, Notification]:
        async with sessions.begin() as db:
            await due_notifications(db=db, now=now)
        return {k: n for k, n in (await rows(sessions)).items() if k.startswith("digest:UASSIGNEE")}

    assert await digests(datetime(2027, 3, 22, 8, 59, tzinfo=BERLIN)) == {}
    found = await digests(datetime(2027, 3, 22, 9, 0, tzinfo=BERLIN))
    assert list(found) == ["digest:UASSIGNEE:2027-03-22"]
    assert found["digest:UASSIGNEE:2027-03-22"].payload == {
        "kind": "digest", "date": "2027-03-22", "due_today": 1, "overdue": 1, "approvals_waiting": 1}
    assert len(await digests(datetime(2027, 3, 22, 15, 0, tzinfo=BERLIN))) == 1  # once a day
    assert len(await digests(datetime(2027, 3, 27, 10, 0, tzinfo=BERLIN))) == 1  # Saturday: no digest
    assert len(await digests(datetime(2027, 3, 29, 9, 30, tzinfo=BERLIN))) == 2  # Monday again (after DST)


async def test_no_digest_when_nothing_to_say(sessions: Sessions) -> None:
    await world(sessions)  # the task is due in two days
    async with sessions.begin() as db:
        await due_notifications(db=db, now=D - 48 * H)
    assert await rows(sessions) == {}


async def test_sweep_returns_what_is_due_now(sessions: Sessions) -> None:
    await world(sessions, assignee_tz="Europe/Berlin", assignee_hours=default_availability())
    night = datetime(2027, 3, 9, 23, 0, tzinfo=BERLIN)  # the 24h reminder waits until 09:00
    async with sessions.begin() as db:
        assert await try_lock(db)
        result = await sweep(db=db, now=night)
    assert result.written == 1 and list(result.due_ids) == []
    async with sessions.begin() as db:
        again = await sweep(db=db, now=datetime(2027, 3, 10, 9, 0, tzinfo=BERLIN))
    assert again.written == 1  # the morning digest; the 2h reminder (10:00Z) is not due yet
    assert len(again.due_ids) == 2  # the digest and the 24h reminder that waited for 09:00


async def test_two_sweeps_at_once_write_each_key_once(sessions: Sessions) -> None:
    w = await world(sessions)
    async with sessions.begin() as db:
        await db.execute(insert(Task), [
            {"campaign_id": w["campaign"], "title": f"Task {i}", "assignee_id": w["assignee"],
             "due_at": D - i * H, "on_critical_path": i % 2 == 0} for i in range(60)
        ])

    async def one() -> int:
        async with sessions.begin() as db:
            return (await sweep(db=db, now=D + 30 * H)).written

    first, second = await asyncio.gather(one(), one())
    written = await rows(sessions)
    assert first + second == len(written) > 60
    assert await run(sessions, D + 30 * H) == set()


async def test_try_lock_admits_one_sweeper(sessions: Sessions) -> None:
    async with sessions.begin() as first:
        if first.get_bind().dialect.name != "postgresql":
            assert await try_lock(first)  # SQLite: BEGIN IMMEDIATE serialises writers already
            return
        assert await try_lock(first)
        async with sessions.begin() as second:
            assert not await try_lock(second)
    async with sessions.begin() as third:  # released with the commit
        assert await try_lock(third)


async def test_a_big_campaign_sweeps_once_per_slot(sessions: Sessions) -> None:
    # Timing belongs in bench/, not here: this checks a 10,000-task campaign gives the right rows.
    w = await world(sessions)
    async with sessions.begin() as db:
        await db.execute(insert(Task), [
            {"campaign_id": w["campaign"], "title": f"Task {i}", "assignee_id": w["assignee"],
             "due_at": D + (i - 100) * H} for i in range(10_000)  # 100 overdue, the rest spread over a year
        ])
    async with sessions.begin() as db:
        first = await due_notifications(db=db, now=D)
    async with sessions.begin() as db:
        again = await due_notifications(db=db, now=D)
    assert first > 100 and again == 0


async def test_a_backlog_is_written_in_bounded_sweeps_escalations_first(sessions: Sessions) -> None:
    w = await world(sessions, contact=False)
    async with sessions.begin() as db:
        await db.execute(insert(Task), [
            {"campaign_id": w["campaign"], "title": f"Task {i}", "assignee_id": w["assignee"], "due_at": D}
            for i in range(5)
        ])
    now = D + 30 * H  # each of 6 tasks: an overdue reminder and an owner escalation; plus the day's digest
    async with sessions.begin() as db:
        assert await due_notifications(db=db, now=now, max_writes=5) == 5
    assert all(key.startswith("escalation:") for key in await rows(sessions))
    async with sessions.begin() as db:
        assert await due_notifications(db=db, now=now, max_writes=5) == 5
    async with sessions.begin() as db:
        assert await due_notifications(db=db, now=now, max_writes=5) == 3
    assert len(await run(sessions, now)) == 0 and len(await rows(sessions)) == 13
