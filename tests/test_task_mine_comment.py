"""`/task mine` (my open tasks by when they are due, in my own calendar) and `/task comment` end to end."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from models import AuditEntry, Campaign, CampaignStatus, Comment, Task, TaskStatus, TeamMember
from tests.conftest import RunningApp, app_settings, start_app
from tests.fake_slack import Call, FakeSlack
from tests.slack_helpers import count, owner_today, reply_text, send_command

BERLIN, CHICAGO = ZoneInfo("Europe/Berlin"), ZoneInfo("America/Chicago")  # Alice's and Bob's time zones


async def task(app: RunningApp, fake: FakeSlack, text: str, *, user_id: str = "U0ALICE") -> Call:
    return await send_command(app, fake, "/task", text, user_id=user_id)


async def new_campaign(app: RunningApp, fake: FakeSlack, name: str = "Spring", user_id: str = "U0ALICE") -> None:
    launch = owner_today() + timedelta(days=60)
    reply = await send_command(app, fake, "/campaign", f'new "{name}" product_launch {launch}', user_id=user_id)
    assert "created" in reply.args["text"], reply.args["text"]


async def member_id(app: RunningApp, slack_user_id: str) -> int:
    async with app.sessions() as db:
        found = await db.scalar(select(TeamMember.id).where(TeamMember.slack_user_id == slack_user_id))
    assert found is not None
    return found


async def give(app: RunningApp, slack_user_id: str, dues: dict[int, datetime | None], **changes: object) -> None:
    """Assign tasks (by id) to someone, due at the given moments (None: no due date)."""
    owner = await member_id(app, slack_user_id)
    async with app.sessions.begin() as db:
        for task_id, due in dues.items():
            row = await db.get(Task, task_id)
            assert row is not None
            row.assignee_id, row.due_at = owner, due
            for key, value in changes.items():
                setattr(row, key, value)


def at(day: date, zone: ZoneInfo, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour, 0), tzinfo=zone).astimezone(UTC)


def sections(reply: Call) -> list[str]:
    return [block["text"]["text"] for block in reply.args["blocks"] if block["type"] == "section"]


def bucket_refs(reply: Call) -> dict[str, list[str]]:
    """{"Overdue": ["T-3", ...], ...} as the reply groups them."""
    groups = {}
    for text in sections(reply):
        title = re.match(r":[a-z_]+: \*([A-Za-z ]+)\* \((\d+)\)", text)
        if title:
            groups[title.group(1)] = re.findall(r"`(T-\d+)`", text)
    return groups


# ---------------------------------------------------------------- /task mine


async def test_mine_groups_my_open_tasks_by_when_they_are_due(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    await send_command(running_app, fake_slack, "/team", "list", user_id="U0BOB")  # Bob exists
    today = owner_today()
    await give(running_app, "U0ALICE", {
        1: at(today - timedelta(days=3), BERLIN), 2: at(today, BERLIN, 17), 3: at(today + timedelta(days=2), BERLIN),
        4: at(today + timedelta(days=30), BERLIN), 5: None, 6: at(today - timedelta(days=1), BERLIN),
    })
    await give(running_app, "U0ALICE", {7: at(today, BERLIN)}, status=TaskStatus.DONE)  # done: not open
    await give(running_app, "U0BOB", {8: at(today, BERLIN)})  # not mine

    reply = await task(running_app, fake_slack, "mine")

    assert reply.args["response_type"] == "ephemeral"
    assert reply.args["text"] == "You have 6 open tasks"
    assert bucket_refs(reply) == {"Overdue": ["T-1", "T-6"], "Due today": ["T-2"], "This week": ["T-3"],
                                  "Later": ["T-4", "T-5"]}
    shown = reply_text(reply)
    assert "was due" in shown and "(3 days ago)" in shown and "(1 day ago)" in shown
    assert "no due date" in shown and "CM-1 Spring" in shown and "Dates in Europe/Berlin" in shown


async def test_mine_is_in_my_own_time_zone(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    await send_command(running_app, fake_slack, "/team", "list", user_id="U0BOB")
    # 00:30 in Berlin is the evening before in Chicago: one moment, two calendar days.
    moment = datetime.combine(owner_today(), time(0, 30), tzinfo=BERLIN).astimezone(UTC)
    await give(running_app, "U0ALICE", {1: moment})
    await give(running_app, "U0BOB", {2: moment})
    alice, bob = await task(running_app, fake_slack, "mine"), await task(running_app, fake_slack, "mine", user_id="U0BOB")
    assert bucket_refs(alice) == {"Due today": ["T-1"]}
    bob_today = datetime.now(CHICAGO).date()
    expected = "Due today" if moment.astimezone(CHICAGO).date() == bob_today else "Overdue"
    assert bucket_refs(bob) == {expected: ["T-2"]} and "Dates in America/Chicago" in reply_text(bob)


async def test_mine_leaves_out_closed_campaigns_and_caps_each_group(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    await new_campaign(running_app, fake_slack, name="Gone")
    today = owner_today()
    late = {task_id: at(today - timedelta(days=task_id), BERLIN) for task_id in range(1, 13)}
    await give(running_app, "U0ALICE", late)
    await give(running_app, "U0ALICE", {30: at(today, BERLIN)})  # a task of CM-2
    await send_command(running_app, fake_slack, "/campaign", "launch CM-2")
    await send_command(running_app, fake_slack, "/campaign", "complete CM-2")
    reply = await task(running_app, fake_slack, "mine")
    groups = bucket_refs(reply)
    assert list(groups) == ["Overdue"] and len(groups["Overdue"]) == 8
    assert groups["Overdue"][0] == "T-12"  # the longest overdue first
    assert ":rotating_light: *Overdue* (12)" in reply_text(reply) and "4 more overdue" in reply_text(reply)
    assert "T-30" not in reply_text(reply)


async def test_mine_with_nothing_to_do(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    reply = await task(running_app, fake_slack, "mine")
    assert reply.args["text"] == "Nothing assigned to you right now."


async def test_mine_escapes_what_people_typed(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack, name="Sale &lt;!channel&gt;")
    await give(running_app, "U0ALICE", {1: None}, title="Brief <@U0BOB> & co")
    shown = reply_text(await task(running_app, fake_slack, "mine"))
    assert "Brief &lt;@U0BOB&gt; &amp; co" in shown and "Sale &lt;!channel&gt;" in shown
    assert "<!channel>" not in shown and "<@U0BOB>" not in shown


# ---------------------------------------------------------------- /task comment


async def comments(app: RunningApp) -> list[Comment]:
    async with app.sessions() as db:
        return list(await db.scalars(select(Comment).order_by(Comment.id)))


async def test_a_comment_is_stored_as_typed_and_echoed_escaped(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    typed = 'comment T-1 Copy is in &lt;!channel&gt; &amp; "the doc\n  second line <@U0BOB|bob>  '
    reply = await task(running_app, fake_slack, typed)

    [comment] = await comments(running_app)
    assert comment.body == 'Copy is in <!channel> & "the doc\n  second line <@U0BOB|bob>'
    assert (comment.task_id, comment.campaign_id, comment.author_id) == (1, 1, await member_id(running_app, "U0ALICE"))
    assert reply.args["response_type"] == "ephemeral" and reply.args["text"] == "Comment on T-1 saved"
    [section] = sections(reply)
    assert section == (':speech_balloon: Comment on `T-1` Launch brief saved.\n'
                       '>Copy is in &lt;!channel&gt; &amp; "the doc\n>  second line &lt;@U0BOB|bob&gt;')
    assert "<!channel>" not in reply_text(reply) and "<@U0BOB" not in reply_text(reply)
    async with running_app.sessions() as db:
        [entry] = await db.scalars(select(AuditEntry).where(AuditEntry.action == "task.commented"))
    assert (entry.actor, entry.entity_type, entry.entity_id) == ("U0ALICE", "task", 1)
    assert entry.details == {"comment_id": comment.id, "length": len(comment.body)}


async def test_only_the_campaign_team_comments(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    refused = await task(running_app, fake_slack, "comment T-1 drive-by", user_id="U0BOB")
    assert refused.args["text"] == "Only the owner of CM-1, people with a task in it, or an admin can comment on its tasks."
    assert await count(running_app, Comment) == 0
    await send_command(running_app, fake_slack, "/task", "assign T-5 <@U0BOB|bob>")
    allowed = await task(running_app, fake_slack, "comment T-1 now I'm in", user_id="U0BOB")  # any task of CM-1
    assert allowed.args["text"] == "Comment on T-1 saved"
    assert [c.body for c in await comments(running_app)] == ["now I'm in"]


async def test_an_admin_may_comment_anywhere(db_url: str, fake_slack: FakeSlack) -> None:
    async with start_app(app_settings(db_url, fake_slack, admin_user_ids="U0BOB"), fake_slack) as app:
        await new_campaign(app, fake_slack)
        reply = await task(app, fake_slack, "comment T-2 checked", user_id="U0BOB")
        assert reply.args["text"] == "Comment on T-2 saved"


async def test_the_length_cap(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    too_long = await task(running_app, fake_slack, "comment T-1 " + "x" * 3001)
    assert too_long.args["text"] == ("A comment holds at most 3,000 characters; this one has 3,001. "
                                     "Shorten it or split it in two.")
    assert await count(running_app, Comment) == 0
    # The most a comment holds, made of characters that grow when escaped, still makes a valid reply.
    full = await task(running_app, fake_slack, "comment T-1 " + "&amp;" * 3000)
    assert full.response == "ok" and full.args["text"] == "Comment on T-1 saved"
    assert "Shortened here; the whole comment is kept." in reply_text(full)
    [comment] = await comments(running_app)
    assert comment.body == "&" * 3000


@pytest.mark.parametrize(
    ("text", "explains"),
    [
        ("comment", "Which task? Usage: `/task comment T-42 The copy is ready`"),
        ("comment T-1", "Write the comment after the task: `/task comment T-1 The copy is ready`"),
        ("comment T-1    ", "Write the comment after the task"),
        ("comment CM-1 hello", "`CM-1` is not a task reference"),
        ("comment T-999 hello", "There is no task T-999."),
    ],
)
async def test_comment_bad_input(running_app: RunningApp, fake_slack: FakeSlack, text: str, explains: str) -> None:
    await new_campaign(running_app, fake_slack)
    reply = await task(running_app, fake_slack, text)
    assert reply.args["response_type"] == "ephemeral" and explains in reply.args["text"], reply.args["text"]
    assert await count(running_app, Comment) == 0


async def test_a_comment_on_a_cancelled_campaign_is_still_kept(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    await send_command(running_app, fake_slack, "/campaign", "cancel CM-1")
    async with running_app.sessions() as db:
        assert (await db.get(Campaign, 1)).status is CampaignStatus.CANCELLED  # type: ignore[union-attr]
    reply = await task(running_app, fake_slack, "comment T-1 why we stopped")
    assert reply.args["text"] == "Comment on T-1 saved"


async def test_help_lists_the_new_subcommands(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    shown = reply_text(await task(running_app, fake_slack, "help"))
    for usage in ("/task mine", "/task new", "/task comment T-42", "Create task from message"):
        assert usage in shown, usage
    new_with_words = await task(running_app, fake_slack, "new Write the copy")
    assert "`/task new` opens a form" in new_with_words.args["text"]
