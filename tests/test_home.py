"""App Home: opening the Home tab publishes the person's own overview: tasks by due day, approvals waiting,
campaign health and an inbox, inside Slack's limits however much there is."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from blocks.home import HOME_BLOCK_LIMIT, home_view, worst_case_blocks
from models import (
    Approval,
    ApprovalStatus,
    Campaign,
    CampaignStatus,
    Notification,
    NotificationChannel,
    Task,
    TaskStatus,
    TeamMember,
    Timeline,
)
from services.home import Bucket, CampaignHealth, HomeData, PendingApproval, TaskGroup
from tests.conftest import RunningApp
from tests.fake_slack import FakeSlack, view_problems
from tests.home_helpers import (
    BERLIN,
    CHICAGO,
    buttons,
    home_opened,
    local,
    member,
    open_home,
    planned_campaign,
    set_task,
    task_buckets,
    texts,
)
from tests.support.waiting import settled


async def test_home_lists_my_campaigns_and_not_others(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    launch = (date.today() + timedelta(days=60)).isoformat()
    for user, name in (("U0ALICE", "Alice's <!here> launch"), ("U0BOB", "Bob's webinar")):
        url = fake_slack.response_url()
        await running_app.slack.command("/campaign", f'new "{name}" webinar {launch}', user_id=user, response_url=url)
        await fake_slack.wait_for("response_url", lambda call, url=url: url.endswith(call.url_id))
    status, _ = await running_app.slack.event(home_opened("U0ALICE"))
    assert status == 200
    published = await fake_slack.wait_for("views.publish")
    assert published.args["user_id"] == "U0ALICE"
    text = repr(published.args["view"])
    assert "Hi Alice" in text and "Alice's &lt;!here&gt; launch" in text and "CM-1" in text
    assert "Bob's webinar" not in text and "<!here>" not in text


# ---------------------------------------------------------------- tasks


async def test_open_tasks_are_grouped_by_due_day(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    ids = await planned_campaign(running_app)
    others = await planned_campaign(running_app, owner="U0BOB", assignee="U0BOB", name="Bob's")
    today = datetime.now(BERLIN).date()
    await set_task(running_app, ids["brief"], due_at=local(today - timedelta(days=1), 12))
    await set_task(running_app, ids["copy"], due_at=local(today, 12), status=TaskStatus.IN_PROGRESS)
    await set_task(running_app, ids["design"], due_at=local(today + timedelta(days=3), 12))
    await set_task(running_app, ids["review"], due_at=local(today + timedelta(days=21), 12),
                   status=TaskStatus.BLOCKED, blocked_reason="legal")
    await set_task(running_app, ids["launch"], status=TaskStatus.DONE)  # done: off the list
    await set_task(running_app, others["brief"], due_at=local(today, 12))  # Bob's: not Alice's business

    view = await open_home(running_app, fake_slack)

    assert task_buckets(view) == {
        "Overdue": [ids["brief"]], "Due today": [ids["copy"]], "Due this week": [ids["design"]],
        "Later": [ids["review"]],
    }
    shown = "\n".join(texts(view))
    assert "was due" in shown and "(1 day ago)" in shown and "due today" in shown
    assert "1 overdue · 1 due today · 1 due this week · 0 approvals waiting" in shown
    # Start is offered unless it is started; Block unless it is blocked (Resume then); Done always.
    value = str(ids["brief"])
    assert buttons(view, f"task-{ids['brief']}") == {"task_start": value, "task_done": value, "task_block": value}
    assert set(buttons(view, f"task-{ids['copy']}")) == {"task_done", "task_block"}
    assert set(buttons(view, f"task-{ids['review']}")) == {"task_start", "task_done"}
    assert "_Blocked:_ legal" in shown


async def test_due_today_is_the_viewers_own_day(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    # 20:00 in Chicago today is the small hours of the next day in Berlin (most of the day, anyway).
    bobs = await planned_campaign(running_app, assignee="U0BOB")
    alices = await planned_campaign(running_app, assignee="U0ALICE")
    moment = local(datetime.now(CHICAGO).date(), 20, CHICAGO)
    for key in ("copy", "design", "review", "launch"):
        await set_task(running_app, bobs[key], assignee_id=None)
        await set_task(running_app, alices[key], assignee_id=None)
    await set_task(running_app, bobs["brief"], due_at=moment)
    await set_task(running_app, alices["brief"], due_at=moment)

    assert task_buckets(await open_home(running_app, fake_slack, "U0BOB")) == {"Due today": [bobs["brief"]]}
    berlin_today = datetime.now(BERLIN).date()
    expected = "Due today" if moment.astimezone(BERLIN).date() == berlin_today else "Due this week"
    assert task_buckets(await open_home(running_app, fake_slack, "U0ALICE")) == {expected: [alices["brief"]]}


async def test_nothing_to_do_says_so(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    shown = texts(await open_home(running_app, fake_slack))
    assert "Nothing assigned to you right now. :tada:" in shown
    assert "Nothing is waiting for your approval." in shown and "No notifications yet." in shown


async def test_a_crowded_home_stays_within_slacks_limits(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    now = datetime.now(UTC)
    async with running_app.sessions.begin() as db:
        alice = await member(db, "U0ALICE")
        owned = [Campaign(name=f"Campaign {i} " + "n" * 185, template="small", owner_id=alice.id,
                          launch_date=now.date() + timedelta(days=30 + i)) for i in range(30)]
        db.add_all(owned)
        await db.flush()
        db.add_all(
            Task(campaign_id=owned[i % 30].id, title=f"Task {i} <!channel> " + "t" * 280, assignee_id=alice.id,
                 blocked_reason="r" * 500, status=TaskStatus.BLOCKED if i % 3 else TaskStatus.TODO,
                 due_at=None if i % 10 == 0 else now + timedelta(hours=(i - 150) * 5))
            for i in range(300)
        )
        db.add_all(Approval(campaign_id=owned[i % 30].id, stage=f"Stage {i} " + "s" * 90, approver_id=alice.id,
                            deadline=now + timedelta(days=i - 5)) for i in range(50))
        db.add_all(Notification(dedupe_key=f"crowd-{i}", kind="task.reminder", recipient_id=alice.id,
                                channel=NotificationChannel.IN_APP, payload={"text": "x" * 900},
                                scheduled_for=now - timedelta(minutes=i)) for i in range(40))

    view = await open_home(running_app, fake_slack)  # the fake refuses what Slack would refuse

    assert len(view["blocks"]) <= HOME_BLOCK_LIMIT
    assert worst_case_blocks() <= HOME_BLOCK_LIMIT
    shown = "\n".join(texts(view))
    assert sum(len(ids) for ids in task_buckets(view).values()) == 24
    # The dashboard is a button that asks for a stored link when clicked: the Home itself carries none.
    assert "more overdue: `/task mine` or the dashboard (*Open dashboard* above)" in shown
    assert "/dashboard/" not in repr(view)
    [dashboard] = [block for block in view["blocks"] if block.get("block_id") == "home-dashboard"]
    assert [button["action_id"] for button in dashboard["elements"]] == ["home_open_dashboard"]
    assert "45 more approvals waiting" in shown and "20 more: `/campaign list`" in shown
    assert "Inbox (40 unread)" in shown and "30 older unread" in shown
    assert "<!channel>" not in repr(view)


def test_the_worst_case_is_counted_and_fits() -> None:
    """Every section full and overflowing: exactly `worst_case_blocks()` blocks, and Slack would take them."""
    now = datetime.now(UTC)
    alice = TeamMember(id=1, slack_user_id="U0ALICE", name="Alice Archer", timezone="Europe/Berlin",
                       profile_synced_at=now)
    campaign = Campaign(id=1, name="<!channel> " + "c" * 190, launch_date=now.date(), owner_id=1,
                        status=CampaignStatus.ACTIVE)

    def task(n: int) -> Task:
        made = Task(id=n, title="t" * 300, status=TaskStatus.BLOCKED, blocked_reason="r" * 500, due_at=now,
                    on_critical_path=True, is_milestone=True)
        made.campaign = campaign
        return made

    def approval(n: int) -> PendingApproval:
        made = Approval(id=n, stage="s" * 100, approver_id=2, delegated_to_id=1, deadline=now, round=2)
        made.approver = TeamMember(id=2, slack_user_id="U0BOB", name="Bob")
        return PendingApproval(approval=made, campaign=campaign)

    data = HomeData(
        member=alice, now=now, today=now.date(),
        task_groups=[TaskGroup(bucket=bucket, tasks=[task(bucket * 100 + n + 1) for n in range(8)], total=100)
                     for bucket in Bucket],
        approvals=[approval(n + 1) for n in range(5)], approvals_total=50,
        campaigns=[CampaignHealth(campaign=campaign, risk="late", buffer_left_pct=0, projected_launch=date.max,
                                  progress_pct=50)] * 10, campaigns_total=30,
        inbox=[Notification(id=n, kind="k", payload={"text": "x" * 3000}, scheduled_for=now) for n in range(10)],
        unread_total=40,
    )
    view = home_view(data)
    assert len(view["blocks"]) == worst_case_blocks() <= HOME_BLOCK_LIMIT
    assert view_problems(view) == []


# ---------------------------------------------------------------- approvals


async def test_approvals_waiting_for_me_with_their_buttons(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await planned_campaign(running_app, owner="U0BOB", assignee=None, name="Bob's <!here> sale")
    now = datetime.now(UTC)
    async with running_app.sessions.begin() as db:
        alice, bob = await member(db, "U0ALICE"), await member(db, "U0BOB")
        campaign_id = await db.scalar(select(Campaign.id))
        rows = {
            "mine": Approval(campaign_id=campaign_id, stage="Legal <!channel>", approver_id=alice.id,
                             deadline=now - timedelta(days=1)),
            "delegated": Approval(campaign_id=campaign_id, stage="Brand", approver_id=bob.id,
                                  delegated_to_id=alice.id, deadline=now + timedelta(days=2)),
            "decided": Approval(campaign_id=campaign_id, stage="Final", approver_id=alice.id,
                                status=ApprovalStatus.APPROVED),
            "bobs": Approval(campaign_id=campaign_id, stage="Budget", approver_id=bob.id),
        }
        db.add_all(rows.values())
        await db.flush()
        ids = {key: row.id for key, row in rows.items()}

    view = await open_home(running_app, fake_slack)

    shown = "\n".join(texts(view))
    assert f"*AP-{ids['mine']}* Legal &lt;!channel&gt; · *CM-1* Bob's &lt;!here&gt; sale" in shown
    assert ":warning: was due" in shown
    assert f"*AP-{ids['delegated']}* Brand" in shown and "delegated to you by <@U0BOB>" in shown
    assert "Final" not in shown and "Budget" not in shown
    for key in ("mine", "delegated"):
        value = str(ids[key])
        assert buttons(view, f"approval-{ids[key]}") == {"approval_approve": value, "approval_reject": value}
    assert "2 approvals waiting" in shown


# ---------------------------------------------------------------- campaigns


async def test_campaigns_i_own_with_their_health(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    for name in ("Steady", "Shaky", "Slipping"):
        await planned_campaign(running_app, name=name)
    await planned_campaign(running_app, owner="U0BOB", assignee=None, name="Bob's")
    async with running_app.sessions.begin() as db:
        alice = await member(db, "U0ALICE")
        by_name = {c.name: c for c in await db.scalars(select(Campaign))}
        timelines = {t.campaign_id: t for t in await db.scalars(select(Timeline))}
        timelines[by_name["Shaky"].id].buffer_consumed_pct = 60.0
        slipping = by_name["Slipping"]
        timelines[slipping.id].projected_launch = slipping.launch_date + timedelta(days=3)
        timelines[slipping.id].buffer_consumed_pct = 140.0
        db.add(Campaign(name="Unplanned", template="custom", owner_id=alice.id,
                        launch_date=slipping.launch_date + timedelta(days=1)))
        db.add(Campaign(name="Old news", template="custom", owner_id=alice.id, status=CampaignStatus.COMPLETED,
                        launch_date=slipping.launch_date))

    shown = texts(await open_home(running_app, fake_slack))

    def line(name: str) -> str:
        return next(text for text in shown if f"  {name}\n" in text)

    assert line("Steady").split("\n")[1].startswith(":large_green_circle: on track · 100% of the buffer left")
    assert ":large_yellow_circle: at risk · 40% of the buffer left" in line("Shaky")
    late = line("Slipping")
    assert ":red_circle: late · 0% of the buffer left" in late and "projected " in late
    assert line("Unplanned").split("\n")[1].startswith("no plan yet · :spiral_note_pad: planning")
    assert not any("Bob's" in text or "Old news" in text for text in shown)


# ---------------------------------------------------------------- inbox


async def _read_ids(app: RunningApp) -> set[int]:
    async with app.sessions() as db:
        return set(await db.scalars(select(Notification.id).where(Notification.read_at.is_not(None))))


async def test_the_inbox_shows_the_newest_and_marks_them_read(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    now = datetime.now(UTC)
    async with running_app.sessions.begin() as db:
        alice, bob = await member(db, "U0ALICE"), await member(db, "U0BOB")
        mine = [
            Notification(dedupe_key=f"n{i}", kind="task.reminder", recipient_id=alice.id,
                         channel=NotificationChannel.IN_APP if i % 2 else NotificationChannel.SLACK,
                         payload={"text": f"Reminder {i} <!here>"}, scheduled_for=now - timedelta(hours=i),
                         read_at=now - timedelta(minutes=5) if i == 3 else None)
            for i in range(12)
        ]
        db.add_all(mine)
        db.add(Notification(dedupe_key="later", kind="task.reminder", recipient_id=alice.id,
                            payload={"text": "Not yet due"}, scheduled_for=now + timedelta(hours=1)))
        db.add(Notification(dedupe_key="bobs", kind="approval.requested", recipient_id=bob.id,
                            payload={"text": "For Bob"}, scheduled_for=now))
        await db.flush()
        ids = [notification.id for notification in mine]
    already_read = await _read_ids(running_app)

    shown = texts(await open_home(running_app, fake_slack))

    inbox = next(text for text in shown if "Reminder 0" in text).split("\n")
    assert [line.split("· ", 1)[1] for line in inbox] == [
        f"*Reminder {i} &lt;!here&gt;*" if i != 3 else "Reminder 3 &lt;!here&gt;" for i in range(10)
    ]
    assert inbox[0].startswith(":large_blue_circle:") and inbox[3].startswith(":white_small_square:")
    assert "Inbox (11 unread)" in shown and any("2 older unread" in text for text in shown)
    assert not any("Not yet due" in text or "For Bob" in text for text in shown)
    await settled(running_app)  # marked after Slack took the view
    assert await _read_ids(running_app) == already_read | set(ids[:10])

    again = texts(await open_home(running_app, fake_slack))
    inbox = next(text for text in again if "Reminder 0" in text).split("\n")
    assert all(line.startswith(":white_small_square:") for line in inbox)
    assert "Inbox (2 unread)" in again


async def test_the_messages_tab_publishes_nothing(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    status, _ = await running_app.slack.event(home_opened("U0ALICE", tab="messages"))
    assert status == 200
    await settled(running_app)
    assert fake_slack.calls_to("views.publish") == []


async def test_a_failed_publish_still_acks_the_event(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    # Slack retries events that were not acked; a failure on our side must not turn into retries.
    fake_slack.fail_next("views.publish", status=500, times=3)
    status, _ = await running_app.slack.event(home_opened("U0BOB"))
    assert status == 200
    await fake_slack.wait_for("views.publish")


async def test_a_redelivered_event_is_handled_once(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    envelope = home_opened("U0ALICE", event_id="Ev0RETRY")
    assert (await running_app.slack.event(envelope))[0] == 200
    await fake_slack.wait_for("views.publish")
    status, _ = await running_app.slack.event(envelope, retry_num=1, retry_reason="http_timeout")
    assert status == 200
    await settled(running_app)
    assert len(fake_slack.calls_to("views.publish")) == 1
    status, _ = await running_app.slack.event(home_opened("U0ALICE", event_id="Ev0OTHER"))
    await fake_slack.wait_for("views.publish", count=2)


async def test_simultaneous_redeliveries_publish_once(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    envelope = home_opened("U0BOB", event_id="Ev0TWICE")
    results = await asyncio.gather(*(running_app.slack.event(envelope, retry_num=n) for n in range(3)))
    assert [status for status, _ in results] == [200, 200, 200]
    await fake_slack.wait_for("views.publish")
    await settled(running_app)
    assert len(fake_slack.calls_to("views.publish")) == 1
