"""`/campaign launch|pause|resume|complete|cancel` and `/campaign channel` end to end: the state machine, its
refusals with their reasons, who may move a campaign, the audit trail, and the tasks a cancel leaves."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from models import AuditEntry, Campaign, CampaignStatus, Task, TaskStatus
from services.campaigns import LIFECYCLE, Move, refusal
from tests.conftest import RunningApp, app_settings, start_app
from tests.fake_slack import Call, FakeSlack
from tests.slack_helpers import owner_today, reply_text, send_command

P, A, PA, C, X = (CampaignStatus.PLANNING, CampaignStatus.ACTIVE, CampaignStatus.PAUSED, CampaignStatus.COMPLETED,
                  CampaignStatus.CANCELLED)


async def campaign(app: RunningApp, fake: FakeSlack, text: str, *, user_id: str = "U0ALICE", **kw: str) -> Call:
    return await send_command(app, fake, "/campaign", text, user_id=user_id, **kw)


async def new_campaign(app: RunningApp, fake: FakeSlack, *, user_id: str = "U0ALICE") -> None:
    launch = owner_today() + timedelta(days=60)
    reply = await campaign(app, fake, f'new "Spring &amp; sale" product_launch {launch}', user_id=user_id)
    assert "created" in reply.args["text"], reply.args["text"]


async def status_of(app: RunningApp, campaign_id: int = 1) -> CampaignStatus:
    async with app.sessions() as db:
        found = await db.get(Campaign, campaign_id)
    assert found is not None
    return found.status


async def set_status(app: RunningApp, status: CampaignStatus, campaign_id: int = 1) -> None:
    async with app.sessions.begin() as db:
        found = await db.get(Campaign, campaign_id)
        assert found is not None
        found.status = status


async def audit(app: RunningApp, prefix: str = "campaign.") -> list[AuditEntry]:
    async with app.sessions() as db:
        rows = await db.scalars(select(AuditEntry).where(AuditEntry.action.startswith(prefix)).order_by(AuditEntry.id))
        return list(rows)


async def task_statuses(app: RunningApp) -> dict[int, TaskStatus]:
    async with app.sessions() as db:
        return {task.id: task.status for task in await db.scalars(select(Task).order_by(Task.id))}


# ---------------------------------------------------------------- the state machine, as data


def test_every_move_from_every_status_is_allowed_or_explained() -> None:
    allowed = {(status, move) for move, transition in LIFECYCLE.items() for status in transition.allowed_from}
    assert allowed == {(P, Move.LAUNCH), (A, Move.PAUSE), (PA, Move.RESUME), (A, Move.COMPLETE), (PA, Move.COMPLETE),
                       (P, Move.CANCEL), (A, Move.CANCEL), (PA, Move.CANCEL)}
    for status in CampaignStatus:
        for move in Move:
            reason = refusal(status, move, "CM-3")
            assert (reason is None) == ((status, move) in allowed), (status, move)
            if reason is not None:
                assert reason.startswith(f"CM-3 is {'still in ' if status is P else ''}"), reason


@pytest.mark.parametrize(
    ("status", "move", "reason"),
    [
        (PA, Move.LAUNCH, "CM-3 is paused; resume it first: `/campaign resume CM-3`."),
        (PA, Move.PAUSE, "CM-3 is already paused."),
        (A, Move.LAUNCH, "CM-3 is already active."),
        (A, Move.RESUME, "CM-3 is already active."),
        (P, Move.PAUSE, "CM-3 is still in planning; launch it first: `/campaign launch CM-3`."),
        (P, Move.RESUME, "CM-3 is still in planning; launch it first: `/campaign launch CM-3`."),
        (P, Move.COMPLETE, "CM-3 is still in planning; launch it first: `/campaign launch CM-3`."),
        (C, Move.CANCEL, "CM-3 is completed; nothing can change."),
        (C, Move.RESUME, "CM-3 is completed; nothing can change."),
        (X, Move.LAUNCH, "CM-3 is cancelled; nothing can change."),
        (X, Move.CANCEL, "CM-3 is cancelled; nothing can change."),
    ],
)
def test_refusals_say_why(status: CampaignStatus, move: Move, reason: str) -> None:
    assert refusal(status, move, "CM-3") == reason


# ---------------------------------------------------------------- each move, end to end


@pytest.mark.parametrize(
    ("start", "move", "end", "says"),
    [
        (P, "launch", A, ":rocket: CM-1 *Spring &amp; sale* is launched."),
        (A, "pause", PA, ":double_vertical_bar: CM-1 *Spring &amp; sale* is paused."),
        (PA, "resume", A, ":arrow_forward: CM-1 *Spring &amp; sale* is resumed."),
        (A, "complete", C, ":checkered_flag: CM-1 *Spring &amp; sale* is completed."),
        (PA, "complete", C, ":checkered_flag: CM-1 *Spring &amp; sale* is completed."),
        (A, "cancel", X, ":x: CM-1 *Spring &amp; sale* is cancelled."),
    ],
)
async def test_each_move(
    running_app: RunningApp, fake_slack: FakeSlack, start: CampaignStatus, move: str, end: CampaignStatus, says: str
) -> None:
    await new_campaign(running_app, fake_slack)
    await set_status(running_app, start)
    reply = await campaign(running_app, fake_slack, f"{move} cm-1")
    assert reply.args["response_type"] == "in_channel"
    assert reply.args["text"] == f"CM-1 Spring &amp; sale is {LIFECYCLE[Move(move)].done}"
    section = reply.args["blocks"][0]["text"]["text"]
    assert section.startswith(says), section
    assert "by <@U0ALICE>" in reply_text(reply)
    assert await status_of(running_app) is end
    [entry] = await audit(running_app, f"campaign.{LIFECYCLE[Move(move)].done}")
    assert (entry.actor, entry.entity_type, entry.entity_id) == ("U0ALICE", "campaign", 1)
    assert entry.details["previous"] == start.value and entry.details["status"] == end.value


async def test_a_whole_life(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    for move, status in [("launch", A), ("pause", PA), ("resume", A), ("pause", PA), ("complete", C)]:
        await campaign(running_app, fake_slack, f"{move} CM-1")
        assert await status_of(running_app) is status, move
    assert [entry.action for entry in await audit(running_app)] == [
        "campaign.created", "campaign.launched", "campaign.paused", "campaign.resumed", "campaign.paused",
        "campaign.completed"]
    shown = await campaign(running_app, fake_slack, "show CM-1")
    assert ":white_check_mark: completed" in reply_text(shown)


async def test_a_double_click_moves_it_once(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    replies = await asyncio.gather(*(campaign(running_app, fake_slack, "launch CM-1") for _ in range(3)))
    texts = sorted(reply.args["text"] for reply in replies)
    assert texts == ["CM-1 Spring &amp; sale is launched"] + ["CM-1 is already active."] * 2, texts
    assert len(await audit(running_app, "campaign.launched")) == 1


async def test_a_cancel_cancels_the_open_tasks_and_says_how_many(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    await campaign(running_app, fake_slack, "launch CM-1")
    await send_command(running_app, fake_slack, "/task", "done T-1")
    await send_command(running_app, fake_slack, "/task", "block T-2 waiting for legal")
    before = await task_statuses(running_app)
    open_count = sum(status not in (TaskStatus.DONE, TaskStatus.CANCELLED) for status in before.values())
    assert open_count == len(before) - 1

    reply = await campaign(running_app, fake_slack, "cancel CM-1")

    assert f"{open_count} open tasks cancelled with it." in reply_text(reply)
    after = await task_statuses(running_app)
    assert after[1] is TaskStatus.DONE  # finished work stays finished
    assert all(status is TaskStatus.CANCELLED for task_id, status in after.items() if task_id != 1)
    [entry] = await audit(running_app, "campaign.cancelled")
    assert entry.details == {"previous": "active", "status": "cancelled", "open_tasks": open_count}
    # The tasks of a cancelled campaign can't be worked on any more.
    refused = await send_command(running_app, fake_slack, "/task", "start T-3")
    assert refused.args["text"] == "T-3 is cancelled; it can't change any more."


async def test_completing_leaves_open_tasks_be_and_says_so(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    await campaign(running_app, fake_slack, "launch CM-1")
    before = await task_statuses(running_app)
    reply = await campaign(running_app, fake_slack, "complete CM-1")
    assert f"{len(before)} open tasks left as they were." in reply_text(reply)
    assert await task_statuses(running_app) == before


@pytest.mark.parametrize(
    ("start", "text", "reason"),
    [
        (PA, "launch CM-1", "CM-1 is paused; resume it first"),
        (P, "pause CM-1", "CM-1 is still in planning; launch it first"),
        (P, "complete CM-1", "CM-1 is still in planning; launch it first"),
        (A, "resume CM-1", "CM-1 is already active."),
        (A, "launch CM-1", "CM-1 is already active."),
        (PA, "pause CM-1", "CM-1 is already paused."),
        (C, "cancel CM-1", "CM-1 is completed; nothing can change."),
        (C, "resume CM-1", "CM-1 is completed; nothing can change."),
        (X, "launch CM-1", "CM-1 is cancelled; nothing can change."),
        (X, "cancel CM-1", "CM-1 is cancelled; nothing can change."),
        (C, "channel CM-1 <#C0LAUNCH|launch>", "CM-1 is completed; nothing can change."),
    ],
)
async def test_an_illegal_move_is_refused_with_the_reason(
    running_app: RunningApp, fake_slack: FakeSlack, start: CampaignStatus, text: str, reason: str
) -> None:
    await new_campaign(running_app, fake_slack)
    await set_status(running_app, start)
    tasks_before, entries = await task_statuses(running_app), len(await audit(running_app))
    reply = await campaign(running_app, fake_slack, text)
    assert reply.args["response_type"] == "ephemeral"
    assert reason in reply.args["text"], reply.args["text"]
    assert await status_of(running_app) is start
    assert await task_statuses(running_app) == tasks_before
    assert len(await audit(running_app)) == entries


@pytest.mark.parametrize(
    ("text", "refusal_text"),
    [
        ("launch CM-1", "Only the campaign owner or an admin can launch this campaign."),
        ("cancel CM-1", "Only the campaign owner or an admin can cancel this campaign."),
        ("channel CM-1 <#C0LAUNCH|launch>", "Only the campaign owner or an admin can change its channel."),
    ],
)
async def test_someone_else_may_not_move_it(
    running_app: RunningApp, fake_slack: FakeSlack, text: str, refusal_text: str
) -> None:
    await new_campaign(running_app, fake_slack)
    reply = await campaign(running_app, fake_slack, text, user_id="U0BOB")
    assert reply.args["response_type"] == "ephemeral" and reply.args["text"] == refusal_text
    assert await status_of(running_app) is P
    async with running_app.sessions() as db:
        assert (await db.get(Campaign, 1)).channel_id == "C0GENERAL"  # type: ignore[union-attr]
    assert [entry.action for entry in await audit(running_app)] == ["campaign.created"]


async def test_an_admin_may_move_anyones_campaign(db_url: str, fake_slack: FakeSlack) -> None:
    async with start_app(app_settings(db_url, fake_slack, admin_user_ids="U0BOB"), fake_slack) as app:
        await new_campaign(app, fake_slack)
        for move, status in [("launch", A), ("pause", PA), ("cancel", X)]:
            await campaign(app, fake_slack, f"{move} CM-1", user_id="U0BOB")
            assert await status_of(app) is status
        assert {entry.actor for entry in await audit(app) if entry.action != "campaign.created"} == {"U0BOB"}


@pytest.mark.parametrize(
    ("text", "explains"),
    [("launch", "Which campaign? Usage: `/campaign launch CM-12`"), ("pause CM-1 CM-2", "Which campaign?"),
     ("complete T-1", "not a campaign reference"), ("cancel CM-9", "There is no campaign CM-9.")],
)
async def test_a_move_needs_one_campaign(running_app: RunningApp, fake_slack: FakeSlack, text: str, explains: str) -> None:
    await new_campaign(running_app, fake_slack)
    reply = await campaign(running_app, fake_slack, text)
    assert explains in reply.args["text"], reply.args["text"]
    assert await status_of(running_app) is P


# ---------------------------------------------------------------- /campaign channel


@pytest.mark.parametrize("typed", ["<#C0LAUNCH|spring-launch>", "<#C0LAUNCH>", "&lt;#C0LAUNCH|spring-launch&gt;"])
async def test_channel_sets_the_campaign_channel(running_app: RunningApp, fake_slack: FakeSlack, typed: str) -> None:
    await new_campaign(running_app, fake_slack)
    reply = await campaign(running_app, fake_slack, f"channel CM-1 {typed}")
    assert reply.args["response_type"] == "ephemeral"
    assert "now posts to <#C0LAUNCH>" in reply_text(reply)
    async with running_app.sessions() as db:
        assert (await db.get(Campaign, 1)).channel_id == "C0LAUNCH"  # type: ignore[union-attr]
    [entry] = await audit(running_app, "campaign.channel_set")
    assert entry.details == {"channel": "C0LAUNCH", "previous": "C0GENERAL"} and entry.actor == "U0ALICE"
    shown = await campaign(running_app, fake_slack, "show CM-1")
    assert "*Channel*\n<#C0LAUNCH>" in reply_text(shown).replace("\\n", "\n")


async def test_channel_none_forgets_it(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await new_campaign(running_app, fake_slack)
    reply = await campaign(running_app, fake_slack, "channel CM-1 none")
    assert "has no channel now" in reply.args["text"]
    async with running_app.sessions() as db:
        assert (await db.get(Campaign, 1)).channel_id is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "explains"),
    [("channel CM-1", "Which campaign and channel?"), ("channel CM-1 #launch", "I don't know the channel #launch"),
     ("channel CM-1 <@U0BOB>", "Name the channel with #"), ("channel T-1 <#C0LAUNCH>", "not a campaign reference")],
)
async def test_channel_bad_input(running_app: RunningApp, fake_slack: FakeSlack, text: str, explains: str) -> None:
    await new_campaign(running_app, fake_slack)
    reply = await campaign(running_app, fake_slack, text)
    assert explains in reply.args["text"], reply.args["text"]
    async with running_app.sessions() as db:
        assert (await db.get(Campaign, 1)).channel_id == "C0GENERAL"  # type: ignore[union-attr]


async def test_help_lists_the_moves(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    reply = await campaign(running_app, fake_slack, "help")
    for word in ("launch|pause|resume|complete|cancel", "/campaign channel CM-12", "/dashboard"):
        assert word in reply_text(reply), word


async def test_cancelling_withdraws_pending_approvals(running_app, fake_slack) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from models import Approval, ApprovalStatus
    from tests.approval_helpers import BOB, MENTION, new_campaign, settled
    from tests.slack_helpers import send_command

    await new_campaign(running_app, fake_slack)
    await send_command(running_app, fake_slack, "/approval", f'request CM-1 "Legal" {MENTION[BOB]}')
    await settled(running_app)
    reply = await send_command(running_app, fake_slack, "/campaign", "cancel CM-1")
    assert "error id" not in reply.args["text"]
    async with running_app.sessions() as db:
        statuses = set((await db.scalars(select(Approval.status))).all())
    assert statuses == {ApprovalStatus.CANCELLED}
