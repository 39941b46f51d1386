"""Multi-stage approvals decided in Slack, end to end: `/approval request`, the DMs with buttons, every copy
updated in place, the next stage opening, the owner told, and `/approval mine`."""

from __future__ import annotations

from sqlalchemy import select

from models import ApprovalStatus, TeamMember
from tests.approval_helpers import (
    BOB,
    CAROL,
    CHANNEL,
    DAN,
    MENTION,
    OWNER,
    approval,
    approvals,
    audit_actions,
    buttons,
    campaign,
    click,
    copies,
    new_campaign,
    posts_in,
    requests_to,
    settled,
    task_id,
    text_of,
    to_owner,
    told_owner,
    unstaffed_notices,
    updates_of,
)
from tests.conftest import RunningApp, app_settings, start_app
from tests.fake_slack import FakeSlack
from tests.slack_helpers import send_command


async def test_two_stages_all_then_any(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    app, fake = running_app, fake_slack
    await new_campaign(app, fake, name="Spring <!here> launch")

    reply = await approval(app, fake, f'request CM-1 "Copy review" {MENTION[BOB]} {MENTION[CAROL]} rule=all')
    assert "Asked" in text_of(reply) and reply.args["response_type"] == "ephemeral"
    reply = await approval(app, fake, f"request CM-1 Final sign-off {MENTION[DAN]} {MENTION[BOB]} rule=any by 2099-12-31")
    assert "opens when" in text_of(reply) and "Copy review" in text_of(reply)
    await settled(app)

    # The first stage is open: Bob and Carol have a DM with the three buttons, the channel a post without.
    for user in (BOB, CAROL):
        [request] = requests_to(fake, user)
        assert buttons(request.args) == ["approval_approve", "approval_reject", "approval_delegate"]
        assert "Copy review" in text_of(request) and "CM-1" in text_of(request)
        assert "Spring &lt;!here&gt; launch" in text_of(request) and "<!here>" not in text_of(request)
        assert "/campaign show CM-1" in text_of(request)  # no assets: review the plan
    [post] = posts_in(fake, CHANNEL)
    assert buttons(post.args) == [] and "<@U0BOB>" in text_of(post) and "<@U0CAROL>" in text_of(post)
    assert requests_to(fake, DAN) == []  # the second stage waits
    first = await copies(app, "Copy review")
    assert len(first) == 3

    # Bob approves: every copy is updated, his own loses its buttons and says it waits for one more.
    await click(app, fake, BOB, "approval_approve", 1)
    await fake.wait_for("chat.update", count=3)
    await settled(app)
    mine = {approval_id: fake.messages[(channel, ts)] for channel, ts, approval_id in first}
    assert buttons(mine[1]) == [] and "You approved. Waiting for 1 more approval." in text_of(mine[1])
    assert buttons(mine[2]) == ["approval_approve", "approval_reject", "approval_delegate"]
    assert "1 of 2 approved" in text_of(mine[None])
    assert requests_to(fake, DAN) == [] and told_owner(fake) == []

    # Carol approves: the stage passes, the buttons are gone everywhere, the next stage opens.
    await click(app, fake, CAROL, "approval_approve", 2)
    await fake.wait_for("chat.postMessage", lambda call: "Final sign-off" in text_of(call) and call.args["channel"] != OWNER, count=3)
    await settled(app)
    for channel, ts, _ in first:
        assert len(updates_of(fake, channel, ts)) == 2
        assert buttons(fake.messages[(channel, ts)]) == [] and "Stage passed" in text_of(fake.messages[(channel, ts)])
    assert [len(requests_to(fake, user)) for user in (BOB, CAROL, DAN)] == [2, 1, 1]
    [passed] = told_owner(fake)
    assert "Copy review" in text_of(passed) and "passed" in text_of(passed) and "Final sign-off" in text_of(passed)

    # One approval is enough for the last stage: Dan's passes it, Bob's is no longer needed.
    second = await copies(app, "Final sign-off")
    assert len(second) == 3
    assert (await campaign(app)).approved_at is None
    await click(app, fake, DAN, "approval_approve", 3)
    await fake.wait_for("chat.postMessage", to_owner, count=2)
    await settled(app)
    for channel, ts, _ in second:
        assert buttons(fake.messages[(channel, ts)]) == [] and len(updates_of(fake, channel, ts)) == 1
    assert "not needed any more" in text_of(fake.messages[(second[-1][0], second[-1][1])])
    rows = await approvals(app)
    assert [rows[i].status for i in (1, 2, 3, 4)] == [ApprovalStatus.APPROVED] * 3 + [ApprovalStatus.CANCELLED]
    # The template's own stages have not run yet: two ad hoc stages passing do not sign off the campaign.
    assert (await campaign(app)).approved_at is None
    assert "Final sign-off" in text_of(told_owner(fake)[-1]) and "is approved" not in text_of(told_owner(fake)[-1])
    actions = await audit_actions(app)
    assert actions.count("approval.approved") == 3 and "campaign.approved" not in actions

    # Taking the template's stages out leaves nothing to sign off: only then is the campaign approved.
    reply = await approval(app, fake, 'skip CM-1 "Topic sign-off" the exec review covered it')
    assert "is skipped" in text_of(reply) and "Every sign-off" not in text_of(reply)
    assert (await campaign(app)).approved_at is None
    reply = await approval(app, fake, 'skip CM-1 "deck review"')
    assert "Every sign-off of CM-1 is in" in text_of(reply)
    assert (await campaign(app)).approved_at is not None
    assert "campaign.approved" in await audit_actions(app)
    shown = await send_command(app, fake, "/campaign", "show CM-1")
    assert "Topic sign-off* · skipped (skipped by" in text_of(shown) and "the exec review covered it" in text_of(shown)
    assert "Copy review* · approved" in text_of(shown) and "Final sign-off* · approved" in text_of(shown)


async def test_a_template_stage_opens_when_its_task_is_done(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    app, fake = running_app, fake_slack
    await new_campaign(app, fake, staffed=False)  # webinar: "Topic sign-off" (marketing lead, any, 1d) after the abstract,
    # then "Deck review" (brand, any, 1d) after the deck design
    abstract, deck_design = await task_id(app, "abstract"), await task_id(app, "deck_design")
    # Nobody has either role yet: the owner hears at once, with the command that names approvers instead.
    for stage in ("Topic sign-off", "Deck review"):
        notice = await fake.wait_for("chat.postMessage", lambda call, stage=stage: bool(unstaffed_notices(fake, stage)))
        assert f'/approval request CM-1 \\"{stage}\\" @dana' in repr(notice.args) or "/approval request CM-1" in text_of(notice)
    for user in (BOB, CAROL):
        await send_team(app, fake, user, "me role=Marketing  Lead")

    shown = await send_command(app, fake, "/campaign", "show CM-1")
    assert f"Topic sign-off* · waiting for T-{abstract}" in text_of(shown)
    assert f"Deck review* · waiting for T-{deck_design}" in text_of(shown)
    assert await approvals(app) == {}  # nobody is asked before the work is there to review

    # The abstract is done: the stage opens by itself, to the people with the role, with its 1 day.
    done = await send_command(app, fake, "/task", f"done T-{abstract}")
    assert "Open for sign-off now: *Topic sign-off*" in text_of(done)
    await fake.wait_for("chat.postMessage", lambda call: call.args["channel"] == CHANNEL and "Topic sign-off" in text_of(call))
    await settled(app)
    rows = await approvals(app)
    assert {row.stage for row in rows.values()} == {"Topic sign-off"}
    assert all(row.rule.value == "any" and row.deadline is not None for row in rows.values())
    assert len(requests_to(fake, BOB)) == 1 and len(requests_to(fake, CAROL)) == 1
    mine = await approval(app, fake, "mine", user=BOB)
    assert "Topic sign-off" in text_of(mine)
    shown = await send_command(app, fake, "/campaign", "show CM-1")
    assert "Topic sign-off* · open until <!date^" in text_of(shown) and "nobody has decided yet" in text_of(shown)

    # Bob's approval passes it ("any"); the campaign still waits for the deck review.
    first = min(rows)
    await click(app, fake, BOB, "approval_approve", first)
    await fake.wait_for("chat.postMessage", lambda call: call.args["channel"] == OWNER and "passed" in text_of(call))
    assert (await campaign(app)).approved_at is None

    # The deck design is done but nobody has the role "brand": the stage can't open, the owner hears once.
    await send_command(app, fake, "/task", f"done T-{deck_design}")
    await fake.wait_for("chat.postMessage", lambda call: len(unstaffed_notices(fake, "Deck review")) == 2)
    shown = await send_command(app, fake, "/campaign", "show CM-1")
    assert "Deck review* · needs approvers" in text_of(shown) and "Topic sign-off* · approved" in text_of(shown)
    # Naming the approvers opens it at once; Dan's approval is the last sign-off.
    await approval(app, fake, f'request CM-1 "Deck review" {MENTION[DAN]}')
    await fake.wait_for("chat.postMessage", lambda call: bool(requests_to(fake, DAN)))
    deck = max(await approvals(app))
    await click(app, fake, DAN, "approval_approve", deck)
    await fake.wait_for("chat.postMessage", lambda call: call.args["channel"] == OWNER and "is approved" in text_of(call))
    assert (await campaign(app)).approved_at is not None
    await send_command(app, fake, "/task", "done T-1")  # more work done: no stage to open, no notice again
    await settled(app)
    assert len(unstaffed_notices(fake, "Deck review")) == 2 and len(unstaffed_notices(fake, "Topic sign-off")) == 1


async def send_team(app: RunningApp, fake: FakeSlack, user: str, text: str) -> None:
    await send_command(app, fake, "/team", text, user_id=user)


async def test_stages_open_in_order_even_when_asked_out_of_order(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    app, fake = running_app, fake_slack
    await new_campaign(app, fake, staffed=False)
    for key in ("abstract", "deck_design"):  # the work both template stages review is done
        await send_command(app, fake, "/task", f"done T-{await task_id(app, key)}")
    # "Deck review" is second in the template: asked first, it still waits for "Topic sign-off".
    reply = await approval(app, fake, f'request CM-1 "Deck review" {MENTION[BOB]}')
    assert "opens when *Topic sign-off* has passed" in text_of(reply)
    reply = await approval(app, fake, f'request CM-1 "Topic sign-off" {MENTION[CAROL]}')
    assert "Asked" in text_of(reply)
    await approval(app, fake, f'request CM-1 "Launch go" {MENTION[DAN]}')  # asked last: runs last
    await settled(app)
    assert [len(requests_to(fake, user)) for user in (BOB, CAROL, DAN)] == [0, 1, 0]
    await click(app, fake, CAROL, "approval_approve", 2)
    await fake.wait_for("chat.postMessage", lambda call: bool(requests_to(fake, BOB)))
    await settled(app)
    assert requests_to(fake, DAN) == []  # still waits for the deck review
    await click(app, fake, BOB, "approval_approve", 1)
    await fake.wait_for("chat.postMessage", lambda call: "Launch go" in text_of(call), count=2)


async def test_mine_lists_what_waits_for_me_with_buttons(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    app, fake = running_app, fake_slack
    await new_campaign(app, fake)
    await approval(app, fake, f'request CM-1 "Copy review" {MENTION[BOB]} {MENTION[CAROL]}')
    await approval(app, fake, f'request CM-1 "Final sign-off" {MENTION[BOB]}')  # waits: not listed yet
    await settled(app)
    reply = await approval(app, fake, "mine", user=BOB)
    assert reply.args["response_type"] == "ephemeral"
    assert "Waiting for you: 1 approval" in text_of(reply) and "Copy review" in text_of(reply)
    assert "Final sign-off" not in text_of(reply)
    assert buttons(reply.args) == ["approval_approve", "approval_reject", "approval_delegate"]

    # Approving from the list updates the DMs and replaces the list with what is left.
    url_id = await click(app, fake, BOB, "approval_approve", 1, channel="C0GENERAL", ephemeral=True)
    refreshed = await fake.wait_for("response_url", lambda call: call.url_id == url_id)
    assert refreshed.args["replace_original"] is True and "Nothing waits for your approval" in text_of(refreshed)
    assert (await approvals(app))[1].status is ApprovalStatus.APPROVED
    nothing = await approval(app, fake, "mine", user=DAN)
    assert "Nothing waits for your approval" in text_of(nothing)


async def test_who_may_request_and_what_is_refused(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    app, fake = running_app, fake_slack
    await new_campaign(app, fake)
    cases = [
        (f'request CM-1 "Copy review" {MENTION[CAROL]}', BOB, "Only the campaign owner or an admin"),
        (f'request CM-9 "Copy review" {MENTION[CAROL]}', OWNER, "There is no campaign CM-9"),
        ('request CM-1 "Copy review"', OWNER, "Who should approve"),
        ('request CM-1 "Copy review" <@UBOT|campaign-manager>', OWNER, "is a bot"),
        ('request CM-1 "Copy review" <@U0NOBODY>', OWNER, "can't find the person"),
        (f'request CM-1 "Copy review" {MENTION[BOB]} rule=most', OWNER, "`rule=` is `all`"),
        (f'request CM-1 "Copy review" {MENTION[BOB]} by 2020-01-01', OWNER, "in the past"),
        (f'request CM-1 {MENTION[BOB]} "Copy review"', OWNER, "Put the stage name first"),
        ("request", OWNER, "Which campaign and stage"),
        ("resubmit AP-1", OWNER, "There is no approval AP-1"),
        ("dance", OWNER, "not a command I know"),
    ]
    for text, user, expected in cases:
        reply = await approval(app, fake, text, user=user)
        assert expected in text_of(reply), (text, text_of(reply))
    assert await approvals(app) == {}
    await approval(app, fake, f'request CM-1 "Copy review" {MENTION[BOB]}')
    again = await approval(app, fake, f'request CM-1 "copy REVIEW" {MENTION[CAROL]}')
    assert 'already has the stage "Copy review" (AP-1)' in text_of(again)
    help_reply = await approval(app, fake, "help")
    assert "/approval request" in text_of(help_reply) and "/approval mine" in text_of(help_reply)


async def test_a_stage_name_and_mentions_are_stored_as_typed_and_shown_escaped(
    running_app: RunningApp, fake_slack: FakeSlack
) -> None:
    app, fake = running_app, fake_slack
    await new_campaign(app, fake)
    await approval(app, fake, f'request CM-1 "Legal <!channel> & co" {MENTION[BOB]}')
    await settled(app)
    rows = await approvals(app)
    assert rows[1].stage == "Legal <!channel> & co"
    [request] = requests_to(fake, BOB)
    assert "Legal &lt;!channel&gt; &amp; co" in text_of(request) and "<!channel>" not in text_of(request)
    async with app.sessions() as db:
        assert (await db.scalars(select(TeamMember.name).where(TeamMember.slack_user_id == BOB))).one() == "Bob Baker"


async def test_an_admin_may_request_for_someone_elses_campaign(db_url: str, fake_slack: FakeSlack) -> None:
    async with start_app(app_settings(db_url, fake_slack, admin_user_ids=DAN), fake_slack) as app:
        await new_campaign(app, fake_slack)
        reply = await approval(app, fake_slack, f'request CM-1 "Copy review" {MENTION[BOB]}', user=DAN)
        assert "Asked <@U0BOB>" in text_of(reply)
        await settled(app)
        assert len(requests_to(fake_slack, BOB)) == 1


async def test_who_cannot_be_reached_is_the_owners_notice_and_still_decides(db_url: str, fake_slack: FakeSlack) -> None:
    # The requester's reply promises only what is true when it is sent: who is asked and how they will be
    # told. A request Slack refuses for good reaches the owner as the outbox's delivery-failed notice.
    fake = fake_slack
    async with start_app(app_settings(db_url, fake), fake, run_worker=True) as app:
        await new_campaign(app, fake)
        fake.fail_next("chat.postMessage", error="not_in_channel", times=3)  # Bob's DM, Carol's, the channel post
        reply = await approval(app, fake, f'request CM-1 "Copy review" {MENTION[BOB]} {MENTION[CAROL]}')
        text = text_of(reply)
        assert "Asked <@U0BOB>, <@U0CAROL>" in text and "<@U0BOB> in Slack" in text and "<@U0CAROL> in Slack" in text
        assert "could not" not in text
        notices = await fake.wait_for("chat.postMessage", lambda call: call.args["channel"] == OWNER
                                      and "could not deliver" in text_of(call), count=3)
        assert "approval request" in text_of(notices) and "delivery_retry" in text_of(notices)
        owner_heard = " ".join(text_of(call) for call in told_owner(fake))
        assert "<@U0BOB>" in owner_heard and "<@U0CAROL>" in owner_heard and "<#C0GENERAL>" in owner_heard
        await settled(app)
        assert requests_to(fake, BOB) == []
        # Bob still finds it with /approval mine and decides from there.
        mine = await approval(app, fake, "mine", user=BOB)
        assert "Copy review" in text_of(mine)
        assert buttons(mine.args) == ["approval_approve", "approval_reject", "approval_delegate"]
