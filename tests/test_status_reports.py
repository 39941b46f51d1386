"""The weekly status post: Monday 09:00 owner-local, once per ISO week, to the channel or the owner; its numbers;
and one delivered through the real delivery job to the fake Slack."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.jobs.notifications import deliver_notification, delivery_client
from models import (
    Approval,
    ApprovalStatus,
    Campaign,
    CampaignStatus,
    Notification,
    NotificationChannel,
    NotificationStatus,
    Task,
    TaskStatus,
    TeamMember,
    Timeline,
    Urgency,
)
from models.team import default_availability
from services.status_reports import weekly_status_posts
from services.sweep import sweep
from tests.conftest import BOT_TOKEN
from tests.fake_slack import FakeSlack
from tests.fake_slack_blocks import MESSAGE_BLOCK_LIMIT, block_problems
from tests.test_reminders import change, keys_written, rows

Sessions = async_sessionmaker[AsyncSession]
MONDAY = datetime(2027, 3, 15, 9, 0, tzinfo=UTC)  # Monday of ISO week 2027-W11
DAY, H = timedelta(days=1), timedelta(hours=1)
BERLIN = ZoneInfo("Europe/Berlin")


async def world(sessions: Sessions, *, tz: str = "UTC", hours: dict[str, Any] | None = None,
                channel: str | None = None, name: str = "Spring launch") -> dict[str, int]:
    """An owner, an assignee and one live campaign with a plan (a timeline), no tasks yet."""
    async with sessions.begin() as db:
        owner = TeamMember(slack_user_id="UOWNER", name="Owner", timezone=tz, weekly_availability=hours or {})
        assignee = TeamMember(slack_user_id="UASSIGNEE", name="Assignee", weekly_availability={})
        db.add_all([owner, assignee])
        await db.flush()
        campaign_id = await add_campaign(db, owner.id, name=name, channel=channel)
        return {"owner": owner.id, "assignee": assignee.id, "campaign": campaign_id}


CREATED = datetime(2026, 6, 1, tzinfo=UTC)  # well before every week below, so no test depends on today


async def add_campaign(db: AsyncSession, owner_id: int, *, name: str = "Spring launch", channel: str | None = None,
                       consumed: float = 25.0, projected: date | None = None, created: datetime = CREATED) -> int:
    launch = date(2027, 5, 3)
    campaign = Campaign(name=name, template="small", launch_date=launch, status=CampaignStatus.ACTIVE,
                        owner_id=owner_id, channel_id=channel, created_at=created)
    db.add(campaign)
    await db.flush()
    # computed_at "now": the sweep's daily re-plan leaves these hand-set numbers alone.
    db.add(Timeline(campaign_id=campaign.id, template="small", buffer_hours=16.0, buffer_consumed_pct=consumed,
                    projected_launch=projected or launch, progress_pct=30.0, computed_at=MONDAY + 30 * DAY))
    await db.flush()
    return campaign.id


async def posts(sessions: Sessions, now: datetime) -> set[str]:
    """Run the status step at `now`; the keys it wrote."""
    return await keys_written(sessions, weekly_status_posts, now)


async def test_posted_from_monday_nine_owner_local_once_a_week(sessions: Sessions) -> None:
    w = await world(sessions, tz="America/Chicago")  # CDT, UTC-5, in March 2027
    key = f"status:{w['campaign']}:2027-W11"
    nine = datetime(2027, 3, 15, 9, 0, tzinfo=ZoneInfo("America/Chicago"))
    assert await posts(sessions, nine - timedelta(seconds=1)) == set()
    assert await posts(sessions, nine) == {key}
    assert await posts(sessions, nine) == set()  # the same moment again
    assert await posts(sessions, nine + 2 * DAY) == set()  # later the same week
    assert await posts(sessions, nine + 7 * DAY - timedelta(seconds=1)) == set()  # next Monday 08:59:59
    assert await posts(sessions, nine + 7 * DAY) == {f"status:{w['campaign']}:2027-W12"}
    row = (await rows(sessions))[key]
    assert (row.kind, row.urgency, row.campaign_id, row.scheduled_for) == (
        "campaign_status", Urgency.NORMAL, w["campaign"], nine)


async def test_the_first_post_is_the_first_monday_nine_after_creation(sessions: Sessions) -> None:
    # Chicago (CDT, UTC-5). Created Wednesday 17 Mar: that week's Monday 09:00 is past, so no post minutes
    # later, nor at any catch-up that week; the first is Monday 22 Mar 09:00.
    w = await world(sessions, tz="America/Chicago")
    chicago = ZoneInfo("America/Chicago")
    wednesday = datetime(2027, 3, 17, 14, 30, tzinfo=chicago)
    async with sessions.begin() as db:
        new = await add_campaign(db, w["owner"], name="New", created=wednesday)
        early = await add_campaign(db, w["owner"], name="Monday early", created=datetime(2027, 3, 15, 8, 59, tzinfo=chicago))
        at_nine = await add_campaign(db, w["owner"], name="Monday nine", created=datetime(2027, 3, 15, 9, tzinfo=chicago))
    monday_nine = datetime(2027, 3, 15, 9, tzinfo=chicago)
    # Made at 08:59 on a Monday: its first post is that same Monday at 09:00; made at 09:00 sharp, next week's.
    assert await posts(sessions, monday_nine) == {f"status:{w['campaign']}:2027-W11", f"status:{early}:2027-W11"}
    assert await posts(sessions, wednesday + timedelta(minutes=5)) == set()
    assert await posts(sessions, datetime(2027, 3, 19, 16, tzinfo=chicago)) == set()  # Friday catch-up: still not
    next_monday = datetime(2027, 3, 22, 9, tzinfo=chicago)
    assert await posts(sessions, next_monday - timedelta(seconds=1)) == set()
    assert await posts(sessions, next_monday) == {f"status:{c}:2027-W12" for c in (w["campaign"], new, early, at_nine)}


async def test_the_sweep_sends_no_status_for_a_campaign_made_this_week(sessions: Sessions) -> None:
    w = await world(sessions)
    async with sessions.begin() as db:
        new = await add_campaign(db, w["owner"], name="Made Tuesday", created=MONDAY + DAY)
    async with sessions.begin() as db:
        await sweep(db=db, now=MONDAY + DAY + 10 * H)
    assert set(await rows(sessions)) == {f"status:{w['campaign']}:2027-W11"}
    async with sessions.begin() as db:
        await sweep(db=db, now=MONDAY + 7 * DAY)
    assert {f"status:{new}:2027-W12", f"status:{w['campaign']}:2027-W12"} <= set(await rows(sessions))


async def test_catching_up_sends_this_week_only(sessions: Sessions) -> None:
    w = await world(sessions)
    c = w["campaign"]
    # The first sweep on Thursday at 07:00: only Monday waits for 09:00, later days catch up at any hour.
    assert await posts(sessions, MONDAY + 3 * DAY - 2 * H) == {f"status:{c}:2027-W11"}
    assert await posts(sessions, MONDAY + 6 * DAY + 14 * H + timedelta(minutes=59)) == set()  # Sunday 23:59
    # Down from then until Wednesday of W13: W12 is skipped, W13 is written once.
    assert await posts(sessions, MONDAY + 16 * DAY) == {f"status:{c}:2027-W13"}
    assert await posts(sessions, MONDAY + 17 * DAY) == set()


async def test_not_for_paused_completed_or_cancelled_campaigns(sessions: Sessions) -> None:
    w = await world(sessions)
    for status in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED, CampaignStatus.PAUSED):
        await change(sessions, Campaign, w["campaign"], status=status)
        assert await posts(sessions, MONDAY) == set()
    await change(sessions, Campaign, w["campaign"], status=CampaignStatus.PLANNING)
    assert await posts(sessions, MONDAY) == {f"status:{w['campaign']}:2027-W11"}


async def test_a_campaign_without_a_plan_has_no_post(sessions: Sessions) -> None:
    w = await world(sessions)
    async with sessions.begin() as db:
        db.add(Campaign(name="No plan", template="none", launch_date=date(2027, 5, 3), status=CampaignStatus.ACTIVE,
                        owner_id=w["owner"]))
    assert await posts(sessions, MONDAY) == {f"status:{w['campaign']}:2027-W11"}


async def test_to_the_campaign_channel_or_else_the_owner(sessions: Sessions) -> None:
    w = await world(sessions, channel="C0LAUNCH")
    async with sessions.begin() as db:
        other = await add_campaign(db, w["owner"], name="No channel")
    assert await posts(sessions, MONDAY) == {f"status:{w['campaign']}:2027-W11", f"status:{other}:2027-W11"}
    written = await rows(sessions)
    to_channel, to_owner = written[f"status:{w['campaign']}:2027-W11"], written[f"status:{other}:2027-W11"]
    assert (to_channel.recipient_channel, to_channel.recipient_id, to_channel.channel) == (
        "C0LAUNCH", None, NotificationChannel.SLACK)
    assert (to_owner.recipient_channel, to_owner.recipient_id) == (None, w["owner"])


async def test_the_owner_post_keeps_quiet_hours_mute_and_time_off(sessions: Sessions) -> None:
    # Berlin, Mon-Fri 09-17. A post caught up on Wednesday night waits for Thursday 09:00.
    w = await world(sessions, tz="Europe/Berlin", hours=default_availability())
    async with sessions.begin() as db:
        channelled = await add_campaign(db, w["owner"], name="Has a channel", channel="C0TEAM")
    wednesday_night = datetime(2027, 3, 17, 22, 0, tzinfo=BERLIN)
    assert await posts(sessions, wednesday_night) == {f"status:{w['campaign']}:2027-W11", f"status:{channelled}:2027-W11"}
    written = await rows(sessions)
    assert written[f"status:{w['campaign']}:2027-W11"].scheduled_for == datetime(2027, 3, 18, 9, 0, tzinfo=BERLIN)
    assert written[f"status:{channelled}:2027-W11"].scheduled_for == wednesday_night  # a channel has no hours

    # Next week: muted, then away until the week is over. The channel post goes all the same.
    await change(sessions, TeamMember, w["owner"], muted_campaigns=[w["campaign"]])
    assert await posts(sessions, datetime(2027, 3, 22, 9, 0, tzinfo=BERLIN)) == {f"status:{channelled}:2027-W12"}
    await change(sessions, TeamMember, w["owner"], muted_campaigns=[], out_of_office_from=date(2027, 3, 22),
                 out_of_office_until=date(2027, 3, 28))
    assert await posts(sessions, datetime(2027, 3, 23, 9, 0, tzinfo=BERLIN)) == set()  # would land in W13
    await change(sessions, TeamMember, w["owner"], out_of_office_until=date(2027, 3, 25))
    assert await posts(sessions, datetime(2027, 3, 23, 9, 0, tzinfo=BERLIN)) == {f"status:{w['campaign']}:2027-W12"}
    assert (await rows(sessions))[f"status:{w['campaign']}:2027-W12"].scheduled_for == datetime(
        2027, 3, 26, 9, 0, tzinfo=BERLIN)


async def test_daylight_saving_moves_the_utc_instant_not_the_local_nine(sessions: Sessions) -> None:
    w = await world(sessions, tz="Europe/Berlin")  # clocks go forward on Sunday 2027-03-28
    c = w["campaign"]
    assert await posts(sessions, datetime(2027, 3, 22, 7, 59, tzinfo=UTC)) == set()  # 08:59 CET
    assert await posts(sessions, datetime(2027, 3, 22, 8, 0, tzinfo=UTC)) == {f"status:{c}:2027-W12"}
    assert await posts(sessions, datetime(2027, 3, 28, 23, 0, tzinfo=UTC)) == set()  # Monday 01:00 CEST
    assert await posts(sessions, datetime(2027, 3, 29, 6, 59, tzinfo=UTC)) == set()  # 08:59 CEST
    assert await posts(sessions, datetime(2027, 3, 29, 7, 0, tzinfo=UTC)) == {f"status:{c}:2027-W13"}


async def test_the_iso_week_is_the_owners_local_week(sessions: Sessions) -> None:
    w = await world(sessions, tz="Pacific/Auckland")  # UTC+13 (NZDT) in March
    c = w["campaign"]
    # Sunday evening UTC is Monday morning in Auckland: this week's post, never the missed W10.
    assert await posts(sessions, datetime(2027, 3, 14, 19, 59, tzinfo=UTC)) == set()
    assert await posts(sessions, datetime(2027, 3, 14, 20, 0, tzinfo=UTC)) == {f"status:{c}:2027-W11"}
    # Across New Year: Monday 2026-12-28 and Friday 2027-01-01 are both in ISO week 2026-W53.
    assert await posts(sessions, datetime(2026, 12, 28, 9, 0, tzinfo=ZoneInfo("Pacific/Auckland"))) == {
        f"status:{c}:2026-W53"}
    assert await posts(sessions, datetime(2027, 1, 1, 9, 0, tzinfo=ZoneInfo("Pacific/Auckland"))) == set()


async def add_content(sessions: Sessions, w: dict[str, int]) -> dict[str, int]:
    """Tasks and approvals with known numbers, at MONDAY; returns the ids the payload should name."""
    c, a, o = w["campaign"], w["assignee"], w["owner"]
    async with sessions.begin() as db:
        delegate = TeamMember(slack_user_id="UDELEGATE", name="Delegate", weekly_availability={})
        db.add(delegate)
        await db.flush()
        done = TaskStatus.DONE
        db.add_all([
            Task(campaign_id=c, title="Brief", status=done, completed_at=MONDAY - 3 * DAY, due_at=MONDAY - 4 * DAY),
            Task(campaign_id=c, title="Research", status=done, completed_at=MONDAY - 10 * DAY),
            Task(campaign_id=c, title="Dropped", status=TaskStatus.CANCELLED, due_at=MONDAY - 2 * DAY),
            Task(campaign_id=c, title="Later", due_at=MONDAY + 8 * DAY),
            Task(campaign_id=c, title="Someday"),
        ])
        late = [Task(campaign_id=c, title=f"Late {i}", assignee_id=a if i != 6 else None, due_at=MONDAY - i * DAY,
                     status=TaskStatus.BLOCKED if i == 1 else TaskStatus.TODO) for i in range(1, 7)]
        soon = Task(campaign_id=c, title="Launch email", assignee_id=a, is_milestone=True,
                    status=TaskStatus.IN_PROGRESS, due_at=MONDAY + 2 * DAY)
        db.add_all([*late, soon])
        # Stages 1 (two of them, open) and 2 (waiting behind them): only open stages' pending rows count.
        legal = Approval(campaign_id=c, stage="Legal", stage_order=1, approver_id=a, deadline=MONDAY + DAY,
                         created_at=MONDAY - 2 * DAY)
        copy = Approval(campaign_id=c, stage="Copy", stage_order=1, approver_id=o, delegated_to_id=delegate.id,
                        created_at=MONDAY - 5 * DAY)
        db.add_all([legal, copy,
                    Approval(campaign_id=c, stage="Legal", stage_order=1, approver_id=o, status=ApprovalStatus.APPROVED),
                    Approval(campaign_id=c, stage="Brand", stage_order=2, approver_id=o)])
        other = await add_campaign(db, o, name="Other", consumed=120.0, projected=date(2027, 5, 6))
        db.add(Task(campaign_id=other, title="Other late", due_at=MONDAY - H))
        await db.flush()
        return {"late6": late[5].id, "late2": late[1].id, "soon": soon.id, "legal": legal.id, "copy": copy.id,
                "other": other}


async def test_the_payload_counts(sessions: Sessions) -> None:
    w = await world(sessions, tz="America/Chicago")
    ids = await add_content(sessions, w)
    c = w["campaign"]
    now = datetime(2027, 3, 15, 9, 0, tzinfo=ZoneInfo("America/Chicago"))  # 14:00 UTC, MONDAY + 5 h
    assert await posts(sessions, now) == {f"status:{c}:2027-W11", f"status:{ids['other']}:2027-W11"}
    written = await rows(sessions)
    payload = written[f"status:{c}:2027-W11"].payload
    overdue = payload.pop("overdue")
    assert payload == {
        "kind": "campaign_status", "campaign": f"CM-{c}", "campaign_id": c, "campaign_name": "Spring launch",
        "week": "2027-W11", "as_of": now.astimezone(UTC).isoformat(), "status": "active",
        "launch_date": "2027-05-03", "projected_launch": "2027-05-03", "risk": "on track",
        "tasks_done": 2, "tasks_total": 11, "tasks_done_pct": 18, "progress_pct": 30.0,
        "buffer_days": 2.0, "buffer_left_pct": 75.0, "buffer_left_days": 1.5,
        "overdue_count": 6,
        "due_soon_count": 1,
        "due_soon": [{"task": f"T-{ids['soon']}", "task_id": ids["soon"], "title": "Launch email",
                      "assignee": "UASSIGNEE", "due": (MONDAY + 2 * DAY).isoformat(), "milestone": True,
                      "due_day": "2027-03-17"}],
        "approvals_waiting": 2,
        "oldest_approvals": [
            {"approval": f"AP-{ids['copy']}", "stage": "Copy", "approver": "UDELEGATE",
             "requested": (MONDAY - 5 * DAY).isoformat(), "deadline": None, "requested_day": "2027-03-10"},
            {"approval": f"AP-{ids['legal']}", "stage": "Legal", "approver": "UASSIGNEE",
             "requested": (MONDAY - 2 * DAY).isoformat(), "deadline": (MONDAY + DAY).isoformat(),
             "requested_day": "2027-03-13"},
        ],
        "done_last_7_days": 1,
    }
    # The five most overdue, oldest first; the unassigned one has no assignee. Day 4 at 09:00 UTC is
    # 04:00 in Chicago, still the same calendar day.
    assert [t["title"] for t in overdue] == ["Late 6", "Late 5", "Late 4", "Late 3", "Late 2"]
    assert overdue[0] == {"task": f"T-{ids['late6']}", "task_id": ids["late6"], "title": "Late 6", "assignee": None,
                          "due": (MONDAY - 6 * DAY).isoformat(), "milestone": False, "due_day": "2027-03-09"}
    assert overdue[4]["task_id"] == ids["late2"] and overdue[4]["assignee"] == "UASSIGNEE"
    other = written[f"status:{ids['other']}:2027-W11"].payload
    assert (other["risk"], other["overdue_count"], other["tasks_total"], other["approvals_waiting"]) == ("late", 1, 1, 0)
    assert other["buffer_left_pct"] == 0.0 and other["done_last_7_days"] == 0


async def test_sweep_writes_the_post_within_its_budget(sessions: Sessions) -> None:
    w = await world(sessions)
    async with sessions.begin() as db:
        second = await add_campaign(db, w["owner"], name="Second")
    async with sessions.begin() as db:
        assert await weekly_status_posts(db=db, now=MONDAY, max_writes=1) == 1
    async with sessions.begin() as db:
        result = await sweep(db=db, now=MONDAY)
    assert result.written == 1  # the other campaign's post; no task, so no reminder
    assert set(await rows(sessions)) == {f"status:{w['campaign']}:2027-W11", f"status:{second}:2027-W11"}
    assert len(result.due_ids) == 2


@pytest.mark.parametrize("channel", ["C0LAUNCH", None])
async def test_the_post_is_delivered_through_the_delivery_job(sessions: Sessions, fake_slack: FakeSlack,
                                                              channel: str | None) -> None:
    w = await world(sessions, channel=channel, name="<!channel> & <@U0BOB> launch")
    await add_content(sessions, w)
    async with sessions.begin() as db:
        result = await sweep(db=db, now=MONDAY)
        status_id = await db.scalar(select(Notification.id).where(
            Notification.dedupe_key == f"status:{w['campaign']}:2027-W11"))
    assert status_id is not None and status_id in result.due_ids
    client = delivery_client(AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.base_url))
    outcome = await deliver_notification(sessions=sessions, slack=client, notification_id=status_id,
                                         clock=lambda: MONDAY, enqueue=None)
    assert outcome.status == "sent"
    [post] = [call for call in fake_slack.calls_to("chat.postMessage") if "Weekly status" in call.args["text"]]
    assert post.args["channel"] == (channel or "UOWNER")
    assert block_problems(post.args["blocks"], MESSAGE_BLOCK_LIMIT) == []
    shown = repr(post.args)
    assert "<!channel>" not in shown and "<@U0BOB>" not in shown and "&lt;!channel&gt; &amp;" in shown
    assert "*Overdue (6)*" in shown and "…and 1 more" in shown and "<@UASSIGNEE>" in shown
    async with sessions() as db:
        row = await db.get(Notification, status_id)
    assert row is not None and row.status is NotificationStatus.SENT and row.slack_ts == post.response["ts"]
