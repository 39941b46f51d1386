"""Two people, one campaign: changes to different tasks of one campaign sent at the same moment.

Each change re-plans the whole campaign, so every one of them writes every task's dates. They must
queue on the campaign (lock it first) instead of deadlocking on the tasks, and the plan left behind
must be the one a fresh re-plan of the stored tasks gives: nobody's change may be planned away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from models import AuditEntry, Campaign, Task, TaskStatus, Timeline
from services import plans, transactions
from tests.conftest import RunningApp
from tests.fake_slack import FakeSlack
from tests.slack_helpers import owner_today, reply_text, send_command, working_days_after
from tests.test_transactions import pg_error

CHANGES = 12  # tasks T-1..T-12 of a product launch are all ordinary work (no milestone among them)
DUE = working_days_after(owner_today(), 25)


@dataclass(frozen=True)
class Change:
    """One `/task` command, what its reply says when it worked, and how to see it stored."""

    text: str
    success: str
    stored: Callable[[Task], bool]


def estimate(n: int) -> Change:
    hours = 4 + n  # a different estimate per task, so a change stored on the wrong task shows
    return Change(f"estimate T-{n} {hours}h", f":hourglass: T-{n} now takes {hours}h",
                  lambda task: task.duration_hours == hours)


def done(n: int) -> Change:
    return Change(f"done T-{n}", f":white_check_mark: T-{n} is done", lambda task: task.status is TaskStatus.DONE)


def block(n: int) -> Change:
    reason = f"waiting for the printer {n}"
    return Change(f"block T-{n} {reason}", f":no_entry: T-{n} is blocked",
                  lambda task: task.status is TaskStatus.BLOCKED and task.blocked_reason == reason)


def due(n: int) -> Change:
    return Change(f"due T-{n} {DUE.isoformat()}", f":calendar: T-{n} is now due {DUE.isoformat()}",
                  lambda task: task.due_fixed and task.due_at is not None and task.due_at.date() == DUE)


async def new_campaign(app: RunningApp, fake: FakeSlack) -> None:
    launch = owner_today() + timedelta(days=90)
    reply = await send_command(app, fake, "/campaign", f'new "Spring" product_launch {launch.isoformat()}')
    assert "CM-1 created" in reply.args["text"], reply.args["text"]


async def send_all_at_once(app: RunningApp, fake: FakeSlack, changes: list[Change]) -> list[str]:
    """Every command posted before any reply is awaited; the replies, in the order of `changes`."""
    calls = await asyncio.gather(*(send_command(app, fake, "/task", change.text) for change in changes))
    return [reply_text(call) for call in calls]


async def stored_tasks(app: RunningApp) -> dict[int, Task]:
    async with app.sessions() as db:
        return {task.id: task for task in await db.scalars(select(Task))}


def plan_of(tasks: list[Task], timeline: Timeline) -> dict[str, Any]:
    """What a re-plan writes, as plain values."""
    return {
        "tasks": {task.id: (task.start_at, task.due_at, task.earliest_start_at, task.earliest_finish_at,
                            task.float_hours, task.on_critical_path) for task in tasks
                  if task.status is not TaskStatus.DONE},
        "timeline": (timeline.projected_launch, timeline.buffer_consumed_pct, timeline.critical_path,
                     timeline.compressed_days, timeline.progress_pct, timeline.milestones),
    }


async def assert_plan_is_consistent(app: RunningApp) -> None:
    """The stored plan is what re-planning the stored tasks at the same moment gives (then rolled back)."""
    async with app.sessions() as db:
        campaign = await db.scalar(select(Campaign).options(selectinload(Campaign.owner)))
        timeline = await db.scalar(select(Timeline))
        assert campaign is not None and timeline is not None and timeline.computed_at is not None
        tasks = list(await db.scalars(select(Task).order_by(Task.id)))
        stored = plan_of(tasks, timeline)
        await plans.replan(db=db, campaign=campaign, now=timeline.computed_at, reason="check")
        assert plan_of(tasks, timeline) == stored
        await db.rollback()


async def check_all_stored(app: RunningApp, changes: list[Change], replies: list[str]) -> None:
    failed = [(change.text, reply) for change, reply in zip(changes, replies, strict=True)
              if change.success not in reply]
    assert not failed, f"{len(failed)} of {len(changes)} changes failed: {failed[:2]}"
    tasks = await stored_tasks(app)
    lost = [change.text for n, change in enumerate(changes, start=1) if not change.stored(tasks[n])]
    assert not lost, f"answered as done but not stored: {lost}"
    await assert_plan_is_consistent(app)


async def test_twelve_simultaneous_estimates_all_succeed(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    changes = [estimate(n) for n in range(1, CHANGES + 1)]
    replies = await send_all_at_once(running_app, fake_slack, changes)
    await check_all_stored(running_app, changes, replies)


async def test_twelve_simultaneous_mixed_changes_all_succeed(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    kinds = (estimate, done, block, due)
    changes = [kinds[n % len(kinds)](n) for n in range(1, CHANGES + 1)]
    replies = await send_all_at_once(running_app, fake_slack, changes)
    await check_all_stored(running_app, changes, replies)


# ---------------------------------------------------------------- a conflict that still happens


def replan_aborted(times: int) -> tuple[Callable[..., Any], list[int]]:
    """`plans.replan` that does its work and then fails as a deadlock would, the first `times` runs;
    and the count of runs. It fails after writing, so a retry that kept the first run's writes shows."""
    real, runs = plans.replan, [0]

    async def replan(**kwargs: Any) -> plans.PlanSummary | None:
        runs[0] += 1
        plan = await real(**kwargs)
        if runs[0] <= times:
            raise pg_error("40P01")
        return plan

    return replan, runs


async def reestimates(app: RunningApp) -> int:
    async with app.sessions() as db:
        return len((await db.scalars(select(AuditEntry).where(AuditEntry.action == "task.reestimated"))).all())


async def test_a_change_aborted_by_a_deadlock_is_run_again_whole(
    running_app: RunningApp, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    await new_campaign(running_app, fake_slack)
    replan, runs = replan_aborted(transactions.ATTEMPTS - 1)
    monkeypatch.setattr(plans, "replan", replan)
    reply = reply_text(await send_command(running_app, fake_slack, "/task", "estimate T-2 7h"))
    assert ":hourglass: T-2 now takes 7h" in reply
    assert runs[0] == transactions.ATTEMPTS
    assert (await stored_tasks(running_app))[2].duration_hours == 7
    assert await reestimates(running_app) == 1, "the aborted runs' audit entries were rolled back"
    monkeypatch.undo()
    await assert_plan_is_consistent(running_app)


async def test_the_person_hears_of_a_deadlock_only_when_every_attempt_failed(
    running_app: RunningApp, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    await new_campaign(running_app, fake_slack)
    before = (await stored_tasks(running_app))[2].duration_hours
    replan, runs = replan_aborted(transactions.ATTEMPTS)
    monkeypatch.setattr(plans, "replan", replan)
    reply = reply_text(await send_command(running_app, fake_slack, "/task", "estimate T-2 7h"))
    assert "error id" in reply and "now takes" not in reply
    assert runs[0] == transactions.ATTEMPTS
    assert (await stored_tasks(running_app))[2].duration_hours == before
    assert await reestimates(running_app) == 0
