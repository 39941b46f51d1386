"""A whole campaign run from Slack alone: team, plan, staffing, the email draft, work, approvals, launch,
completion.

Every step is a signed request to the real app (commands, button clicks); the assertions read the
database and what the fake Slack server recorded, as a person in the workspace would see it.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from models import Approval, ApprovalStatus, Campaign, CampaignStatus, Task, TaskStatus
from tests.approval_helpers import AT_WORK, BOB, CAROL, MENTION, OWNER, add_people, click, settled
from tests.conftest import RunningApp
from tests.fake_slack import FakeSlack
from tests.slack_helpers import reply_text, send_command
from tests.slack_requests import view_submission_payload


async def campaign(app: RunningApp) -> Campaign:
    async with app.sessions() as db:
        found = (await db.scalars(select(Campaign))).one()
    return found


async def open_tasks(app: RunningApp) -> list[Task]:
    async with app.sessions() as db:
        return list(await db.scalars(
            select(Task).where(Task.status != TaskStatus.DONE, Task.is_milestone.is_(False)).order_by(Task.id)))


async def test_a_campaign_from_new_to_sign_off_and_launch(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    app, fake = running_app, fake_slack
    add_people(fake)

    # The team says what it can do (and works round the clock, so no message waits for the morning).
    await send_command(app, fake, "/team", f"me skills=strategy,copywriting,email,approvals capacity=20 {AT_WORK}",
                       user_id=OWNER)
    await send_command(app, fake, "/team", f"me skills=design,web,social capacity=20 {AT_WORK}", user_id=BOB)
    await send_command(app, fake, "/team", f"me skills=analytics,ads,pr role=marketing lead capacity=20 {AT_WORK}",
                       user_id=CAROL)

    # The owner plans a newsletter three weeks out and staffs it.
    launch = (date.today() + timedelta(days=21)).isoformat()
    created = await send_command(app, fake, "/campaign", f'new "March newsletter" newsletter {launch}',
                                 user_id=OWNER, channel_id="C0GENERAL")
    assert created.args["response_type"] == "in_channel" and "CM-1 created" in created.args["text"]
    staffed = await send_command(app, fake, "/campaign", "assign CM-1", user_id=OWNER)
    assert "assigned" in staffed.args["text"]
    shown = await send_command(app, fake, "/campaign", "show CM-1", user_id=BOB)
    assert "Critical path" in reply_text(shown) and "on track" in reply_text(shown)

    # The issue itself, as an email draft in the form, handed over by the copy edit: the newsletter's
    # sign-offs wait for it (its content checks run before each stage opens).
    copy_edit = next(task.id for task in await open_tasks(app) if task.template_key == "copy_edit")
    draft = view_submission_payload(user_id=OWNER, callback_id="asset_draft_modal", private_metadata="campaign:1",
                                    values={block: {"value": text} for block, text in {
                                        "title": "March issue", "subject": "March: what is new",
                                        "preheader": "Three stories and a webinar",
                                        "body": '<p>Hello</p><a href="https://example.com/?utm_source=mail">Read</a>'
                                                '<a href="https://example.com/unsubscribe">Unsubscribe</a>',
                                        "url": "", "deliverable": f"T-{copy_edit}"}.items()})
    assert (await app.slack.interaction(draft))[0] == 200

    # People do their work: each assignee (or the owner for unassigned work) finishes every task.
    for task in await open_tasks(app):
        person = {None: OWNER}.get(task.assignee_id)
        actor = person or await _slack_id(app, task.assignee_id)
        await send_command(app, fake, "/task", f"start T-{task.id}", user_id=actor)
        done = await send_command(app, fake, "/task", f"done T-{task.id}", user_id=actor)
        assert f"T-{task.id} is done" in done.args["text"], done.args["text"]
    assert await open_tasks(app) == []

    # Sign-off: the template's stages opened by themselves as the work they review got done. Carol has
    # the marketing lead role, so "Editorial sign-off" is in her DMs; "Final proof" waits for it. The
    # owner adds a stage of their own for Bob, which runs once the editorial sign-off has passed.
    await fake.wait_for("chat.postMessage", lambda call: "Editorial sign-off" in str(call.args.get("text")))
    extra = await send_command(app, fake, "/approval", f'request CM-1 "Draft review" {MENTION[BOB]}', user_id=OWNER)
    assert "error id" not in extra.args["text"]
    await settled(app)
    for stage, person in (("Editorial sign-off", CAROL), ("Final proof", CAROL), ("Draft review", BOB)):
        assert (await campaign(app)).approved_at is None  # not before every stage has passed
        approval_id = await _approval_id(app, stage, person)
        await click(app, fake, person, "approval_approve", approval_id)
        await settled(app)
    async with app.sessions() as db:
        statuses = set((await db.scalars(select(Approval.status))).all())
    assert statuses == {ApprovalStatus.APPROVED}
    assert (await campaign(app)).approved_at is not None
    told = [call.args["text"] for call in fake.calls_to("chat.postMessage") if call.args.get("channel") == OWNER]
    assert "CM-1 is approved" in told

    # Launch day and wrap-up, by the owner only.
    refused = await send_command(app, fake, "/campaign", "launch CM-1", user_id=BOB)
    assert "Only the campaign owner or an admin" in refused.args["text"]
    await send_command(app, fake, "/campaign", "launch CM-1", user_id=OWNER)
    assert (await campaign(app)).status is CampaignStatus.ACTIVE
    await send_command(app, fake, "/campaign", "complete CM-1", user_id=OWNER)
    assert (await campaign(app)).status is CampaignStatus.COMPLETED
    late = await send_command(app, fake, "/campaign", "pause CM-1", user_id=OWNER)
    assert "completed" in late.args["text"]


async def _slack_id(app: RunningApp, member_id: int | None) -> str:
    from models import TeamMember

    async with app.sessions() as db:
        member = await db.get(TeamMember, member_id)
    assert member is not None
    return member.slack_user_id


async def _approval_id(app: RunningApp, stage: str, slack_user_id: str) -> int:
    from models import TeamMember

    async with app.sessions() as db:
        found = await db.scalar(
            select(Approval.id).join(TeamMember, TeamMember.id == Approval.approver_id)
            .where(Approval.stage == stage, TeamMember.slack_user_id == slack_user_id))
    assert found is not None
    return found
