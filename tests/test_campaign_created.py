""""Campaign created" leaves through the outbox: written with the campaign, delivered by the delivery path.

A Slack outage at the moment of creation only delays it; the requester's way of hearing from us (Slack,
email, the in-app inbox) is kept; every rendering escapes what people typed.
"""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
from sqlalchemy import select

import services.delivery as delivery_policy
from blocks.emails import render_email
from models import Notification, NotificationChannel, NotificationStatus, TeamMember
from services.campaign_created import CampaignCreated
from services.kinds import Kind
from tests.conftest import RunningApp, app_settings, start_app
from tests.fake_slack import FakeSlack
from tests.home_helpers import open_home, texts
from tests.slack_helpers import send_command
from tests.test_modals import campaign_form, submit


async def with_approvers(app: RunningApp) -> None:
    """The template's sign-off roles are staffed: no "nobody can approve" notice goes out beside it."""
    async with app.sessions.begin() as db:
        db.add_all(TeamMember(slack_user_id=f"U0{role.upper().replace(' ', '')}", name=role, role=role)
                   for role in ("marketing lead", "legal", "brand"))


async def created_row(app: RunningApp) -> Notification:
    async with app.sessions() as db:
        return (await db.scalars(select(Notification).where(Notification.kind == Kind.CAMPAIGN_CREATED))).one()


async def sent_row(app: RunningApp, *, seconds: float = 20) -> Notification:
    """The "created" row once delivery has recorded it sent (that record follows the post)."""
    async with asyncio.timeout(seconds):
        while True:
            row = await created_row(app)
            if row.status is NotificationStatus.SENT:
                return row
            await asyncio.sleep(0.05)  # the worker's own pace: the table is the only signal


def created_posts(fake: FakeSlack, channel: str) -> list:  # type: ignore[type-arg]
    return [call for call in fake.calls_to("chat.postMessage")
            if call.args.get("channel") == channel and "CM-1 created" in str(call.args.get("text"))]


async def test_a_slack_outage_at_creation_delays_the_message_and_sends_it_once(
    db_url: str, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery_policy, "BACKOFF_BASE", timedelta(milliseconds=300))  # Slack is back soon
    async with start_app(app_settings(db_url, fake_slack), fake_slack, run_worker=True) as app:
        await with_approvers(app)
        fake_slack.fail_next("chat.postMessage", status=503)

        ack = await submit(app, "campaign_new_modal", campaign_form(channel="C0LAUNCH"))

        assert ack["response_action"] == "update" and "Also posted to <#C0LAUNCH>" in str(ack["view"])
        posted = await fake_slack.wait_for("chat.postMessage", lambda call: not call.injected
                                           and call.args.get("channel") == "C0LAUNCH")
        row = await sent_row(app)
        result = await app.runtime.sweeper_for_tests().run_once()  # a sweep would resend anything still due
    assert result is not None and row.id not in result.due_ids
    assert (row.retries, row.recipient_channel, row.dedupe_key) == (1, "C0LAUNCH", f"campaign-created:{row.campaign_id}")
    assert [call.injected for call in created_posts(fake_slack, "C0LAUNCH")] == [True, False]
    assert posted.args["text"].startswith("CM-1 created: Spring launch:")


async def test_without_a_channel_the_requester_hears_it_their_way(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await with_approvers(running_app)
    await send_command(running_app, fake_slack, "/team", "me notify=in_app")

    # The ack comes after the commit and the inline hand-out (no worker here): the row is settled by then.
    await submit(running_app, "campaign_new_modal", campaign_form(name="Spring <!here> launch", channel=None))

    row = await created_row(running_app)
    assert (row.channel, row.status, row.recipient_channel) == (NotificationChannel.IN_APP, NotificationStatus.SENT, None)
    assert created_posts(fake_slack, "U0ALICE") == []
    inbox = texts(await open_home(running_app, fake_slack))
    assert any("CM-1 created: Spring &lt;!here&gt; launch:" in text for text in inbox), inbox


def test_the_email_says_the_same_and_escapes_the_name() -> None:
    payload = CampaignCreated(
        campaign_id=3, campaign_name="Spring <b>launch</b> & co", template_title="Product <launch>", owner="U0ALICE",
        launch_date=date(2027, 3, 1), created_on=date(2027, 1, 10), tasks=20, milestones=2, critical_days=18.25,
        buffer_days=3, compressed_days=2,
    ).to_payload()

    email = render_email(Kind.CAMPAIGN_CREATED, payload, tz="Europe/Berlin")

    assert email.subject == "CM-3 created: Spring <b>launch</b> & co: 20 tasks (compressed)"
    assert "Launch 2027-03-01, template Product <launch>." in email.text
    assert "Spring &lt;b&gt;launch&lt;/b&gt; &amp; co" in email.html and "<b>launch" not in email.html
    assert "2 working days short" in email.text
