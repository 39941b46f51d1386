"""A notification that became moot before it went out is withdrawn at delivery, never sent."""

from __future__ import annotations

from datetime import datetime, timedelta

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from handlers.jobs.delivery import Delivery, delivery_client
from models import (
    Approval,
    ApprovalStatus,
    Campaign,
    CampaignStatus,
    Notification,
    NotificationStatus,
    Task,
    TaskStatus,
    TeamMember,
)
from services.home import recent_notifications
from services.reminders import due_notifications
from tests.conftest import BOT_TOKEN
from tests.fake_slack import FakeSlack
from tests.test_reminders import D, H, Sessions, change, world


async def write(sessions: Sessions, now: datetime) -> dict[str, Notification]:
    async with sessions.begin() as db:
        await due_notifications(db=db, now=now)
    async with sessions() as db:
        return {n.dedupe_key: n for n in await db.scalars(select(Notification))}


async def deliver(sessions: Sessions, fake: FakeSlack, rows: list[Notification], now: datetime) -> dict[str, str]:
    slack = delivery_client(AsyncWebClient(token=BOT_TOKEN, base_url=fake.base_url))
    outcomes = await Delivery(sessions=sessions, slack=slack, clock=lambda: now).run([row.id for row in rows])
    return {row.dedupe_key: outcomes[row.id].status for row in rows}


async def status_of(sessions: Sessions, key: str) -> tuple[NotificationStatus, str | None]:
    async with sessions() as db:
        row = (await db.scalars(select(Notification).where(Notification.dedupe_key == key))).one()
        return row.status, row.last_error


async def add_approval(sessions: Sessions, w: dict[str, int], deadline: datetime) -> int:
    async with sessions.begin() as db:
        approval = Approval(campaign_id=w["campaign"], stage="Legal", approver_id=w["assignee"], deadline=deadline)
        db.add(approval)
        await db.flush()
        return approval.id


async def test_a_reminder_for_work_done_meanwhile_is_withdrawn_and_left_out_of_the_inbox(
        sessions: Sessions, fake_slack: FakeSlack) -> None:
    w = await world(sessions)
    rows = await write(sessions, D - 2 * H)  # the 2 h reminder
    key = f"reminder:T-{w['task']}:due:2h:{D.isoformat()}"
    await change(sessions, Task, w["task"], status=TaskStatus.DONE)

    assert await deliver(sessions, fake_slack, [rows[key]], D - H) == {key: "withdrawn"}
    assert await status_of(sessions, key) == (NotificationStatus.WITHDRAWN, "withdrawn: task done")
    assert fake_slack.calls_to("chat.postMessage") == []
    async with sessions() as db:
        assignee = await db.get(TeamMember, w["assignee"])
        assert assignee is not None
        inbox, unread = await recent_notifications(db=db, member=assignee, now=D)
    assert [n.kind for n in inbox] == ["digest"] and unread == 1  # the morning digest, not the moot reminder


async def test_a_moved_due_date_withdraws_the_old_reminder_and_the_new_one_goes(
        sessions: Sessions, fake_slack: FakeSlack) -> None:
    w = await world(sessions)
    old = (await write(sessions, D - 2 * H))[f"reminder:T-{w['task']}:due:2h:{D.isoformat()}"]
    await change(sessions, Task, w["task"], due_at=D + H)
    new_key = f"reminder:T-{w['task']}:due:2h:{(D + H).isoformat()}"
    new = (await write(sessions, D - H))[new_key]

    outcomes = await deliver(sessions, fake_slack, [old, new], D - H)
    assert outcomes == {old.dedupe_key: "withdrawn", new_key: "sent"}
    assert (await status_of(sessions, old.dedupe_key))[1] == "withdrawn: due date changed"
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


async def test_snooze_mute_and_a_paused_campaign_withdraw_reminders_but_not_escalations(
        sessions: Sessions, fake_slack: FakeSlack) -> None:
    w = await world(sessions)
    rows = await write(sessions, D + 25 * H)  # overdue: the assignee's daily reminder and the owner's escalation
    reminder = next(r for k, r in rows.items() if k.startswith(f"reminder:T-{w['task']}:overdue:"))
    escalation = rows[f"escalation:T-{w['task']}:owner"]
    await change(sessions, TeamMember, w["assignee"], muted_campaigns=[w["campaign"]])
    await change(sessions, Task, w["task"], snoozed_until=D + 30 * H)

    outcomes = await deliver(sessions, fake_slack, [reminder, escalation], D + 26 * H)
    assert outcomes == {reminder.dedupe_key: "withdrawn", escalation.dedupe_key: "sent"}
    assert (await status_of(sessions, reminder.dedupe_key))[1] == "withdrawn: campaign muted"

    contact = (await write(sessions, D + 49 * H))[f"escalation:T-{w['task']}:contact"]
    await change(sessions, Campaign, w["campaign"], status=CampaignStatus.PAUSED)
    assert await deliver(sessions, fake_slack, [contact], D + 49 * H) == {contact.dedupe_key: "withdrawn"}
    assert (await status_of(sessions, contact.dedupe_key))[1] == "withdrawn: campaign paused"


async def test_an_escalation_is_sent_though_the_due_date_moved(sessions: Sessions, fake_slack: FakeSlack) -> None:
    w = await world(sessions)
    escalation = (await write(sessions, D + 25 * H))[f"escalation:T-{w['task']}:owner"]
    await change(sessions, Task, w["task"], due_at=D + 48 * H)  # its key has no date: it could not come back
    assert await deliver(sessions, fake_slack, [escalation], D + 25 * H) == {escalation.dedupe_key: "sent"}


async def test_a_decided_approval_withdraws_its_reminder_and_escalation(sessions: Sessions,
                                                                        fake_slack: FakeSlack) -> None:
    w = await world(sessions)
    approval_id = await add_approval(sessions, w, D)
    reminder = (await write(sessions, D - H))[f"reminder:AP-{approval_id}:deadline:{D.isoformat()}"]
    escalation = (await write(sessions, D + H))[f"escalation:AP-{approval_id}:level-1"]
    await change(sessions, Approval, approval_id, status=ApprovalStatus.APPROVED)

    outcomes = await deliver(sessions, fake_slack, [reminder, escalation], D + H)
    assert outcomes == {reminder.dedupe_key: "withdrawn", escalation.dedupe_key: "withdrawn"}
    assert (await status_of(sessions, escalation.dedupe_key))[1] == "withdrawn: approval approved"
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_an_approval_reminder_for_an_old_deadline_is_withdrawn(sessions: Sessions,
                                                                      fake_slack: FakeSlack) -> None:
    w = await world(sessions)
    approval_id = await add_approval(sessions, w, D)
    reminder = (await write(sessions, D - H))[f"reminder:AP-{approval_id}:deadline:{D.isoformat()}"]
    await change(sessions, Approval, approval_id, deadline=D + timedelta(days=3))
    assert await deliver(sessions, fake_slack, [reminder], D - H) == {reminder.dedupe_key: "withdrawn"}
    assert (await status_of(sessions, reminder.dedupe_key))[1] == "withdrawn: deadline changed"
