"""Deciding an approval in Slack: reject through the modal, resubmit, delegate, clicks by the wrong person,
double clicks and races, and clicks from the Home tab."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from handlers.jobs.delivery import Delivery, delivery_client
from models import ApprovalStatus, AuditEntry, Notification, NotificationStatus
from services.kinds import Kind
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
    click,
    copies,
    delegate,
    new_campaign,
    reject,
    requests_to,
    settled,
    text_of,
    to_owner,
    told_owner,
    updates_of,
)
from tests.conftest import BOT_TOKEN, RunningApp, app_settings, start_app
from tests.fake_slack import FakeSlack
from tests.slack_requests import view_submission_payload

BUTTONS = ["approval_approve", "approval_reject", "approval_delegate"]


async def open_stage(app: RunningApp, fake: FakeSlack, *people: str, rule: str = "all", stage: str = "Copy review") -> None:
    await new_campaign(app, fake)
    mentions = " ".join(MENTION[person] for person in people)
    await approval(app, fake, f'request CM-1 "{stage}" {mentions} rule={rule}')
    await settled(app)


async def test_reject_through_the_modal_then_resubmit(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    app, fake = running_app, fake_slack
    await open_stage(app, fake, BOB, CAROL)
    first = await copies(app, "Copy review")

    await click(app, fake, CAROL, "approval_reject", 2)
    opened = await fake.wait_for("views.open")
    modal = opened.args["view"]
    assert opened.args["trigger_id"] == "trig.123"
    assert (modal["callback_id"], modal["private_metadata"]) == ("approval_reject_modal", "2")
    await settled(app)
    assert not fake.calls_to("views.update")  # Carol may decide: the modal stays as it is

    # An empty reason is refused in the modal itself; nothing is decided.
    status, body = await reject(app, CAROL, 2, "  \n ")
    assert status == 200 and body["response_action"] == "errors" and "reason" in body["errors"]
    assert (await approvals(app))[2].status is ApprovalStatus.PENDING

    status, body = await reject(app, CAROL, 2, "The <!channel> claim & the price are wrong.\nFix both.")
    assert (status, body) == (200, None)
    told = await fake.wait_for("chat.postMessage", to_owner)
    await settled(app)
    assert "&lt;!channel&gt; claim &amp; the price" in text_of(told) and "<!channel>" not in text_of(told)
    assert "/approval resubmit AP-2" in text_of(told)
    rows = await approvals(app)
    assert (rows[2].status, rows[2].comments) == (ApprovalStatus.REJECTED, "The <!channel> claim & the price are wrong.\nFix both.")
    assert rows[1].status is ApprovalStatus.CANCELLED  # Bob's answer is not needed any more
    for channel, ts, _ in first:
        message = fake.messages[(channel, ts)]
        assert len(updates_of(fake, channel, ts)) == 1 and buttons(message) == []
        assert "Rejected" in text_of(message) and "&lt;!channel&gt;" in text_of(message) and "<!channel>" not in text_of(message)

    # Only the owner or an admin resubmits; then every approval is pending again, in round 2, with new DMs.
    refused = await approval(app, fake, "resubmit AP-2", user=BOB)
    assert "Only the campaign owner or an admin" in text_of(refused)
    reply = await approval(app, fake, 'resubmit CM-1 "copy review" by 2099-06-30')
    assert "Sent back to" in text_of(reply) and "round 2" in text_of(reply)
    await settled(app)
    rows = await approvals(app)
    assert all((row.status, row.round, row.comments, row.decided_at) == (ApprovalStatus.PENDING, 2, None, None)
               for row in rows.values())
    assert {row.deadline.date().isoformat() for row in rows.values() if row.deadline} == {"2099-06-30"}
    assert [len(requests_to(fake, user)) for user in (BOB, CAROL)] == [2, 2]
    assert buttons(requests_to(fake, CAROL)[-1].args) == BUTTONS
    second = await copies(app, "Copy review")
    assert not set(second) & set(first) and len(second) == 3
    again = await approval(app, fake, "resubmit AP-1")
    assert "only a rejected stage can be resubmitted" in text_of(again)

    # The new round is decided on the new messages; the old ones keep the record of round 1.
    updates_before = len(fake.calls_to("chat.update"))
    await click(app, fake, BOB, "approval_approve", 1)
    await click(app, fake, CAROL, "approval_approve", 2)
    await fake.wait_for("chat.postMessage", to_owner, count=2)
    await settled(app)
    assert all(len(updates_of(fake, channel, ts)) == 1 for channel, ts, _ in first)
    assert len(fake.calls_to("chat.update")) > updates_before
    # The stage passed; the campaign is not signed off while its template's stages have not run.
    assert "passed" in text_of(told_owner(fake)[-1]) and "is approved" not in text_of(told_owner(fake)[-1])
    assert (await audit_actions(app)).count("approval.resubmitted") == 2


async def test_delegate_then_the_delegate_decides(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    app, fake = running_app, fake_slack
    await open_stage(app, fake, BOB)
    [(bob_channel, bob_ts, _), _channel_post] = await copies(app, "Copy review")

    await click(app, fake, BOB, "approval_delegate", 1)
    opened = await fake.wait_for("views.open")
    assert opened.args["view"]["callback_id"] == "approval_delegate_modal"
    assert opened.args["view"]["private_metadata"] == "1"
    for chosen, refusal in ((BOB, "yourself"), ("UBOT", "is a bot"), (None, "Pick the person")):
        status, body = await delegate(app, BOB, 1, chosen)
        assert status == 200 and refusal in body["errors"]["delegate"], chosen

    assert await delegate(app, BOB, 1, DAN) == (200, None)
    [request] = [call for call in await _wait_requests(fake, DAN)]
    assert buttons(request.args) == BUTTONS and "Copy review" in text_of(request)
    await settled(app)
    bob_copy = fake.messages[(bob_channel, bob_ts)]
    assert "Delegated to <@U0DAN>" in text_of(bob_copy) and buttons(bob_copy) == BUTTONS  # Bob may still decide
    rows = await approvals(app)
    assert rows[1].delegated_to_id is not None and rows[1].status is ApprovalStatus.PENDING

    await click(app, fake, DAN, "approval_approve", 1)
    await fake.wait_for("chat.postMessage", to_owner)
    await settled(app)
    for channel, ts, _ in await copies(app, "Copy review"):  # Bob's DM, the channel post and Dan's DM
        assert buttons(fake.messages[(channel, ts)]) == [] and "Stage passed" in text_of(fake.messages[(channel, ts)])
    assert "approved (through <@U0DAN>)" in text_of(fake.messages[(bob_channel, bob_ts)])
    rows = await approvals(app)
    assert rows[1].status is ApprovalStatus.APPROVED and rows[1].decided_by_id == rows[1].delegated_to_id
    async with app.sessions() as db:
        entries = {entry.action: entry for entry in await db.scalars(select(AuditEntry))}
    delegated, approved = entries["approval.delegated"], entries["approval.approved"]
    assert (delegated.actor, delegated.details["approver"], delegated.details["to"]) == (BOB, BOB, DAN)
    assert (approved.actor, approved.details["on_behalf_of"]) == (DAN, BOB)


async def _wait_requests(fake: FakeSlack, user: str) -> list:
    await fake.wait_for("chat.postMessage", lambda call: "approval_approve" in text_of(call) and call.args["channel"] != CHANNEL, count=2)
    return requests_to(fake, user)


async def test_a_stranger_is_told_it_is_not_theirs(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    app, fake = running_app, fake_slack
    await open_stage(app, fake, BOB)
    calls_before = len(fake.calls_to("chat.update"))

    url_id = await click(app, fake, CAROL, "approval_approve", 1, channel=CHANNEL)
    reply = await fake.wait_for("response_url", lambda call: call.url_id == url_id)
    assert "not yours" in text_of(reply) and "Bob Baker" in text_of(reply)
    assert (reply.args["response_type"], reply.args["replace_original"]) == ("ephemeral", False)

    # The owner can't decide for Bob either, and a Reject click turns its modal into the same notice.
    url_id = await click(app, fake, OWNER, "approval_reject", 1, channel=CHANNEL)
    notice = await fake.wait_for("views.update")
    assert "not yours" in text_of(notice.args["view"]) and "submit" not in notice.args["view"]
    await fake.wait_for("response_url", lambda call: call.url_id == url_id)
    status, body = await reject(app, OWNER, 1, "sneaky")  # a forged submit changes nothing either: said on the form
    assert status == 200 and body["response_action"] == "errors" and "not yours" in body["errors"]["reason"]
    await settled(app)
    assert len(fake.calls_to("chat.update")) == calls_before
    rows = await approvals(app)
    assert rows[1].status is ApprovalStatus.PENDING and rows[1].decided_by_id is None
    assert told_owner(fake) == []  # nothing by direct message: the listener answers only where it was asked
    assert "approval.approved" not in await audit_actions(app)


async def test_a_double_click_decides_once(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    app, fake = running_app, fake_slack
    await open_stage(app, fake, BOB, CAROL)
    stage_copies = await copies(app, "Copy review")

    url_ids = await asyncio.gather(*(click(app, fake, BOB, "approval_approve", 1) for _ in range(2)))
    await fake.wait_for("chat.update", count=len(stage_copies))
    await settled(app)
    assert len(fake.calls_to("chat.update")) == len(stage_copies)  # one set of updates
    assert all(len(updates_of(fake, channel, ts)) == 1 for channel, ts, _ in stage_copies)
    assert [call for call in fake.calls_to("response_url") if call.url_id in url_ids] == []  # no "already" either
    assert len(fake.calls_to("chat.postMessage")) == len(stage_copies)  # nothing new was posted
    assert (await audit_actions(app)).count("approval.approved") == 1
    assert (await approvals(app))[1].status is ApprovalStatus.APPROVED


async def test_two_approvers_racing_on_an_any_stage_pass_it_once(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    app, fake = running_app, fake_slack
    await open_stage(app, fake, BOB, CAROL, rule="any")
    await approval(app, fake, f'request CM-1 "Final sign-off" {MENTION[DAN]}')
    await settled(app)

    await asyncio.gather(click(app, fake, BOB, "approval_approve", 1), click(app, fake, CAROL, "approval_approve", 2))
    await fake.wait_for("chat.postMessage", to_owner)
    await settled(app)
    statuses = sorted(row.status.value for row in (await approvals(app)).values() if row.stage == "Copy review")
    assert statuses == ["approved", "cancelled"]
    assert len(told_owner(fake)) == 1 and len(requests_to(fake, DAN)) == 1  # the next stage opened once
    actions = await audit_actions(app)
    assert actions.count("approval.approved") == 1 and actions.count("approval.stage_passed") == 1
    # Whoever lost the race sees every copy settle on the final state: no buttons, one approval.
    for channel, ts, _ in await copies(app, "Copy review"):
        assert buttons(fake.messages[(channel, ts)]) == [] and "1 of 2 approved" in text_of(fake.messages[(channel, ts)])


async def test_a_late_click_on_a_decided_stage_says_so(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    app, fake = running_app, fake_slack
    await open_stage(app, fake, BOB, CAROL, rule="any")
    await click(app, fake, BOB, "approval_approve", 1)
    await settled(app)
    updates = len(fake.calls_to("chat.update"))
    url_id = await click(app, fake, CAROL, "approval_approve", 2)
    reply = await fake.wait_for("response_url", lambda call: call.url_id == url_id)
    assert "no longer needed" in text_of(reply)
    await settled(app)
    assert len(fake.calls_to("chat.update")) == updates


async def test_a_click_on_the_home_tab_republishes_it(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    app, fake = running_app, fake_slack
    await open_stage(app, fake, BOB)
    await click(app, fake, BOB, "approval_approve", 1, home=True)
    published = await fake.wait_for("views.publish")
    assert published.args["user_id"] == BOB
    await settled(app)
    assert (await approvals(app))[1].status is ApprovalStatus.APPROVED
    assert all(buttons(fake.messages[(channel, ts)]) == [] for channel, ts, _ in await copies(app, "Copy review"))

    # A Reject click from Home marks its modal, so the submission re-publishes Home too.
    await approval(app, fake, f'request CM-1 "Final sign-off" {MENTION[BOB]}')
    await settled(app)
    await click(app, fake, BOB, "approval_reject", 2, home=True)
    assert (await fake.wait_for("views.open")).args["view"]["private_metadata"] == "2:home"
    status, _ = await app.slack.interaction(_submission(BOB, "2:home", "Not yet"))
    assert status == 200
    await fake.wait_for("views.publish", count=2)


def _submission(user: str, metadata: str, reason: str) -> dict:
    return view_submission_payload(user_id=user, callback_id="approval_reject_modal", private_metadata=metadata,
                                   values={"reason": {"reason": reason}})


async def test_a_late_click_on_the_home_tab_is_answered_in_a_modal(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    # The Home tab gives a click no response_url: the answer is a notice opened with the click's trigger_id,
    # never a direct message.
    app, fake = running_app, fake_slack
    await open_stage(app, fake, BOB, CAROL, rule="any")
    await click(app, fake, BOB, "approval_approve", 1)
    await settled(app)
    posted = len(fake.calls_to("chat.postMessage"))
    await click(app, fake, CAROL, "approval_approve", 2, home=True)
    notice = await fake.wait_for("views.open")
    assert notice.args["trigger_id"] == "trig.123" and "no longer needed" in text_of(notice.args["view"])
    await fake.wait_for("views.publish")
    await settled(app)
    assert len(fake.calls_to("chat.postMessage")) == posted


async def test_copy_updates_coalesce_and_show_the_latest_state(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    # Slack refuses the first round of updates; a second decision meanwhile writes no update of its own
    # (one open row per copy), and the retry, rendered when it goes out, shows both decisions.
    app, fake = running_app, fake_slack
    await open_stage(app, fake, BOB, CAROL, DAN)
    stage_copies = await copies(app, "Copy review")
    assert len(stage_copies) == 4  # three DMs and the channel's post
    fake.fail_next("chat.update", status=503, times=len(stage_copies))
    await click(app, fake, BOB, "approval_approve", 1)
    await fake.wait_for("chat.update", count=len(stage_copies))
    await settled(app)
    await click(app, fake, CAROL, "approval_approve", 2)
    await settled(app)
    async with app.sessions() as db:
        rows = list(await db.scalars(select(Notification).where(Notification.kind == Kind.APPROVAL_COPY_UPDATE)))
    assert len(rows) == len(stage_copies)
    assert all(row.status is NotificationStatus.PENDING and row.retries == 1 for row in rows)
    assert all(call.injected for call in fake.calls_to("chat.update"))

    later = datetime.now(UTC) + timedelta(hours=1)  # past the retry's backoff
    client = delivery_client(AsyncWebClient(token=BOT_TOKEN, base_url=fake.base_url))
    outcomes = await Delivery(sessions=app.sessions, slack=client, clock=lambda: later).run([row.id for row in rows])
    assert {outcome.status for outcome in outcomes.values()} == {"sent"}
    for channel, ts, _ in stage_copies:
        assert len([call for call in updates_of(fake, channel, ts) if not call.injected]) == 1
        assert "2 of 3 approved" in text_of(fake.messages[(channel, ts)])


async def test_a_copy_posted_while_the_stage_moved_is_brought_up_to_date(db_url: str, fake_slack: FakeSlack) -> None:
    # Carol decides while Slack is still taking the first request: that copy was rendered before her answer
    # and recorded after it, so the record itself writes its update.
    fake = fake_slack
    async with start_app(app_settings(db_url, fake), fake, run_worker=True) as app:
        await new_campaign(app, fake)
        await settled(app)
        fake.hold_next("chat.postMessage", seconds=1.0)
        await approval(app, fake, f'request CM-1 "Copy review" {MENTION[BOB]} {MENTION[CAROL]}')
        await fake.wait_until(lambda: bool(fake.holding), what="the first request to be on its way")
        await click(app, fake, CAROL, "approval_approve", 2)
        await fake.wait_for("chat.update")

        async def every_copy_current() -> bool:
            shown = [fake.messages[(channel, ts)] for channel, ts, _ in await copies(app, "Copy review")]
            return len(shown) == 3 and all("1 of 2 approved" in text_of(message) for message in shown)

        async with asyncio.timeout(20):
            while True:
                if await every_copy_current():
                    break
                await asyncio.sleep(0.05)
        await settled(app)
