"""What one request costs the database does not grow with what the person has.

A person with one small campaign and a person who owns a dozen, has sixty open tasks, approvals waiting
and a full inbox send the same requests through the real app (signed, over HTTP); the SQL statements
each request runs are counted on the app's own engine and must be the same. A statement per campaign,
task or approval (a lazy load in a loop, a query per row) shows up as a difference that grows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models import Approval, ApprovalStatus, Notification, NotificationChannel, Task, TeamMember
from services.home import INBOX_SHOWN
from services.kinds import SURFACES
from tests.conftest import RunningApp
from tests.fake_slack import FakeSlack
from tests.home_helpers import home_opened, planned_campaign
from tests.slack_requests import block_actions_payload
from tests.statements import counting_statements
from tests.support.waiting import eventually

SMALL, BUSY = "U0ALICE", "U0BOB"
BUSY_CAMPAIGNS = 12  # more than the Home shows (10), each with five tasks: sixty open tasks
INBOX = {SMALL: 1, BUSY: 15}  # unread notifications: both Home opens mark some read; the busy one shows 10


async def seed(app: RunningApp) -> dict[str, dict[str, int]]:
    """Each person's first campaign's task ids by key; the busy one gets everything else too."""
    first = {SMALL: await planned_campaign(app, owner=SMALL, assignee=SMALL, name="Small launch")}
    first[BUSY] = await planned_campaign(app, owner=BUSY, assignee=BUSY, name="Busy launch 0")
    for number in range(1, BUSY_CAMPAIGNS):
        await planned_campaign(app, owner=BUSY, assignee=BUSY, name=f"Busy launch {number}")
    async with app.sessions.begin() as db:
        people = {member.slack_user_id: member for member in await db.scalars(select(TeamMember))}
        busy_campaigns = list(await db.scalars(select(Task.campaign_id).where(Task.assignee_id == people[BUSY].id)
                                               .distinct()))
        small_campaign = await db.scalar(select(Task.campaign_id).where(Task.id == first[SMALL]["brief"]))
        # Ad hoc stages, open at once: one approval waits for the small one, six for the busy one.
        for user, campaign_id in [(SMALL, small_campaign), *((BUSY, c) for c in busy_campaigns[:6])]:
            db.add(Approval(campaign_id=campaign_id, stage="Exec review", approver_id=people[user].id,
                            requested_by_id=people[user].id, status=ApprovalStatus.PENDING,
                            deadline=datetime.now(UTC) + timedelta(days=3)))
        for user, unread in INBOX.items():
            for number in range(unread):
                db.add(Notification(dedupe_key=f"count:{user}:{number}", kind="reminder",
                                    recipient_id=people[user].id, channel=NotificationChannel.SLACK,
                                    payload={"text": f"note {number}"},
                                    scheduled_for=datetime.now(UTC) - timedelta(hours=1)))
    return first


async def unread(sessions: async_sessionmaker[AsyncSession], user: str) -> int:
    async with sessions() as db:
        member_id = await db.scalar(select(TeamMember.id).where(TeamMember.slack_user_id == user))
        return len(list(await db.scalars(select(Notification.id).where(
            Notification.recipient_id == member_id, Notification.read_at.is_(None),
            Notification.kind.not_in(SURFACES)))))


@pytest.mark.parametrize("request_kind", [
    "home", "task mine", "campaign list", "campaign show", "approval mine", "task list", "team me", "start click",
    "task done", "task estimate",
])
async def test_a_request_costs_the_same_statements_for_a_busy_person(
    running_app: RunningApp, fake_slack: FakeSlack, sessions: async_sessionmaker[AsyncSession], request_kind: str
) -> None:
    first = await seed(running_app)
    engine = running_app.sessions.kw["bind"]
    counts = {}
    for user in (SMALL, BUSY):
        tasks = first[user]
        campaign = (await _campaign_of(sessions, tasks["brief"]))
        fake_slack.reset()
        with counting_statements(engine) as statements:
            if request_kind == "home":
                await running_app.slack.event(home_opened(user))
                await fake_slack.wait_for("views.publish")
                # The Home marks what it shows read after publishing it: wait for that too.
                await eventually(lambda user=user: _shown_read(sessions, user), what="the shown inbox marked read")
            elif request_kind == "start click":
                payload = block_actions_payload(user_id=user, action_id="task_start", value=str(tasks["brief"]),
                                                response_url=fake_slack.response_url())
                await running_app.slack.interaction(payload)
                reply = await fake_slack.wait_for("response_url")
                assert "Started" in json.dumps(reply.args)
            else:
                command, text = {"task mine": ("/task", "mine"), "campaign list": ("/campaign", "list"),
                                 "campaign show": ("/campaign", f"show CM-{campaign}"),
                                 "approval mine": ("/approval", "mine"),
                                 "task list": ("/task", f"list CM-{campaign}"), "team me": ("/team", "me"),
                                 "task done": ("/task", f"done T-{tasks['brief']}"),
                                 "task estimate": ("/task", f"estimate T-{tasks['copy']} 3d")}[request_kind]
                await running_app.slack.command(command, text, user_id=user, response_url=fake_slack.response_url())
                reply = await fake_slack.wait_for("response_url")
                assert "error id" not in json.dumps(reply.args)
        counts[user] = len(statements)
    assert counts[SMALL] > 0
    assert counts[BUSY] == counts[SMALL], counts


async def _campaign_of(sessions: async_sessionmaker[AsyncSession], task_id: int) -> int:
    async with sessions() as db:
        campaign_id = await db.scalar(select(Task.campaign_id).where(Task.id == task_id))
        assert campaign_id is not None
        return campaign_id


async def _shown_read(sessions: async_sessionmaker[AsyncSession], user: str) -> bool:
    return await unread(sessions, user) == INBOX[user] - min(INBOX[user], INBOX_SHOWN)


async def test_the_busy_person_really_has_more(running_app: RunningApp, sessions: async_sessionmaker[AsyncSession]) -> None:
    """The comparison above means something only if the busy person's lists overflow what is shown."""
    await seed(running_app)
    async with sessions() as db:
        busy = await db.scalar(select(TeamMember.id).where(TeamMember.slack_user_id == BUSY))
        assert len(list(await db.scalars(select(Task.id).where(Task.assignee_id == busy)))) == BUSY_CAMPAIGNS * 5
        assert len(list(await db.scalars(select(Approval.id).where(Approval.approver_id == busy)))) == 6
        await db.execute(update(Notification).values(read_at=None))
    assert (await unread(sessions, SMALL), await unread(sessions, BUSY)) == (INBOX[SMALL], INBOX[BUSY])
