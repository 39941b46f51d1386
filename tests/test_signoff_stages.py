"""The life of a template's sign-off stages: waiting for their task, opening by themselves in order,
unstaffed, skipped; the campaign signed off only when every stage is in; shown on the App Home; and no
reminders for a stage that cannot be decided yet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Approval, ApprovalRule, ApprovalStatus, Notification, Task, TaskStatus
from services import reminders, status_reports
from services.approval_stages import StageState, TemplateStage, all_signed_off, campaign_stages, stage_states
from tests.approval_helpers import (
    BOB,
    CAROL,
    MENTION,
    approval,
    approvals,
    campaign,
    new_campaign,
    settled,
    task_id,
    text_of,
)
from tests.conftest import RunningApp
from tests.fake_slack import FakeSlack
from tests.home_helpers import home_opened
from tests.slack_helpers import send_command


def spec(name: str, order: int, after: str | None = "t") -> TemplateStage:
    return TemplateStage(name=name, order=order, rule=ApprovalRule.ALL, approver_role="legal", allowed_hours=8,
                         after_task=after)


def row(stage: str, order: int, status: ApprovalStatus = ApprovalStatus.PENDING, approval_id: int = 1) -> Approval:
    return Approval(id=approval_id, stage=stage, stage_order=order, rule=ApprovalRule.ALL, status=status, round=1)


def test_a_template_stage_waits_for_its_task_then_for_the_stage_before_it() -> None:
    template = [spec("Messaging", 1), spec("Legal", 2), spec("Brand", 2)]
    states = stage_states([], template, {"Messaging": "T-3", "Legal": "T-9", "Brand": "T-9"})
    assert states["Messaging"].state is StageState.WAITING and states["Messaging"].waits_for_task == "T-3"
    assert states["Legal"].waits_for_task == "T-9"
    # The review task is done but the messaging sign-off has not passed: legal and brand wait for it.
    states = stage_states([], template, {"Messaging": "T-3"})
    assert (states["Legal"].state, states["Legal"].waits_for) == (StageState.WAITING, "Messaging")
    # Messaging passed: legal and brand are due together; without rows nobody could be asked yet.
    states = stage_states([row("Messaging", 1, ApprovalStatus.APPROVED)], template, {})
    assert states["Messaging"].state is StageState.PASSED
    assert states["Legal"].state is StageState.UNSTAFFED and states["Brand"].state is StageState.UNSTAFFED
    assert not all_signed_off(states)


def test_a_stage_asked_for_now_is_not_held_back_by_template_stages_not_started() -> None:
    template = [spec("Messaging", 1)]
    states = stage_states([row("Exec review", 1)], template, {"Messaging": "T-3"})
    assert states["Exec review"].state is StageState.OPEN
    # ...but the campaign is not signed off while the template's stage has not run.
    states = stage_states([row("Exec review", 1, ApprovalStatus.APPROVED)], template, {"Messaging": "T-3"})
    assert not all_signed_off(states)
    skipped = [TemplateStage(**{**spec("Messaging", 1).__dict__, "skipped": "not needed"})]
    states = stage_states([row("Exec review", 1, ApprovalStatus.APPROVED)], skipped, {})
    assert states["Messaging"].state is StageState.SKIPPED and all_signed_off(states)
    assert not all_signed_off(stage_states([], skipped, {}))  # nothing passed: nothing to announce


async def test_the_app_home_lists_each_stage_in_words(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    app, fake = running_app, fake_slack
    await new_campaign(app, fake)
    abstract, deck_design = await task_id(app, "abstract"), await task_id(app, "deck_design")
    await send_command(app, fake, "/task", f"done T-{abstract}")
    await settled(app)
    status, _ = await app.slack.event(home_opened("U0ALICE"))
    assert status == 200
    published = await fake.wait_for("views.publish")
    home = repr(published.args["view"])
    assert "Topic sign-off* · open until <!date^" in home and "(nobody has decided yet)" in home
    assert f"Deck review* · waiting for T-{deck_design}" in home


async def test_a_cancelled_review_task_skips_its_stage(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    app, fake = running_app, fake_slack
    await new_campaign(app, fake)
    deck_design = await task_id(app, "deck_design")
    async with app.sessions.begin() as db:
        task = await db.get(Task, deck_design)
        assert task is not None
        task.status = TaskStatus.CANCELLED
    async with app.sessions() as db:
        states = (await campaign_stages(db, 1)).states
    assert states["Deck review"].state is StageState.SKIPPED and states["Deck review"].skipped == f"T-{deck_design} was cancelled"
    shown = await send_command(app, fake, "/campaign", "show CM-1")
    assert f"Deck review* · skipped (T-{deck_design} was cancelled)" in text_of(shown)


async def test_skip_is_for_the_owner_and_for_template_stages(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    app, fake = running_app, fake_slack
    await new_campaign(app, fake)
    refused = await approval(app, fake, 'skip CM-1 "Topic sign-off"', user=BOB)
    assert "Only the campaign owner or an admin" in text_of(refused)
    await approval(app, fake, f'request CM-1 "Exec review" {MENTION[CAROL]}')
    refused = await approval(app, fake, 'skip CM-1 "Exec review"')
    assert "no template stage by that name" in text_of(refused) and "Topic sign-off" in text_of(refused)
    unknown = await approval(app, fake, 'skip CM-1 "<!channel> stage"')
    assert "no template stage by that name" in text_of(unknown) and "<!channel>" not in text_of(unknown)
    done = await approval(app, fake, 'skip CM-1 "Topic sign-off" <!here> covered elsewhere')
    assert "is skipped" in text_of(done)
    again = await approval(app, fake, 'skip CM-1 "Topic sign-off"')
    assert "already skipped" in text_of(again)
    shown = await send_command(app, fake, "/campaign", "show CM-1")
    assert "&lt;!here&gt; covered elsewhere" in text_of(shown) and "<!here>" not in text_of(shown)
    assert (await campaign(app)).approved_at is None  # Exec review and Deck review are still to come


async def test_no_reminder_for_a_stage_that_waits(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    """Approvers named early for a template stage hear nothing until its task is done and it opens."""
    app, fake = running_app, fake_slack
    await new_campaign(app, fake)
    await send_command(app, fake, "/campaign", "launch CM-1")
    await approval(app, fake, f'request CM-1 "Topic sign-off" {MENTION[BOB]} by {(datetime.now(UTC) + timedelta(days=2)).date()}')
    [waiting] = (await approvals(app)).values()
    assert waiting.deadline is not None
    later = waiting.deadline + timedelta(hours=1)  # past the deadline: an open stage would escalate now
    async with app.sessions.begin() as db:
        await reminders.due_notifications(db=db, now=later)
    async with app.sessions() as db:
        assert await _approval_notices(db) == []
        assert (await status_reports._approvals(db, [1]))[1][0] == 0  # nor does the weekly status list it
    # Once the abstract is done the stage opens, and the same sweep does remind.
    await send_command(app, fake, "/task", f"done T-{await task_id(app, 'abstract')}")
    async with app.sessions.begin() as db:
        await reminders.due_notifications(db=db, now=later)
    async with app.sessions() as db:
        assert await _approval_notices(db) != []
        assert (await status_reports._approvals(db, [1]))[1][0] == 1


async def _approval_notices(db: AsyncSession) -> list[str]:
    rows = await db.scalars(select(Notification.kind).where(Notification.kind.like("approval_%")))
    return list(rows)
