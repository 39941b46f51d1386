"""How people hear from us: `/team me notify=...`, email through a real local SMTP server, the in-app inbox,
and `/campaign mute|unmute`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.settings import ConfigError, load_settings
from handlers.jobs.mail import Mailer
from handlers.jobs.notifications import deliver_notification, delivery_client
from models import (
    Campaign,
    CampaignStatus,
    Notification,
    NotificationChannel,
    NotificationStatus,
    Task,
    TeamMember,
)
from services import home, notifications
from services.mailer import SmtpConfig
from services.reminders import due_notifications
from tests.conftest import BOT_TOKEN, RunningApp, app_settings, start_app
from tests.fake_slack import FakeSlack
from tests.slack_helpers import send_command
from tests.support.mail import Smtp
from tests.support.network import free_port
from tests.support.waiting import eventually, settled
from tests.test_delivery import T0, make_world
from tests.test_task_command import plan_alert_rows, task, tight_promo

D = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)  # a Wednesday: 13:00 in Berlin, inside Alice's working hours


async def command(app: RunningApp, fake: FakeSlack, name: str, text: str, user_id: str = "U0ALICE") -> str:
    reply = await send_command(app, fake, name, text, user_id=user_id)
    return reply.args["text"] + repr(reply.args.get("blocks"))


async def campaign_with_task(sessions: async_sessionmaker[AsyncSession], slack_user_id: str,
                             name: str = "Spring <sale> & more") -> tuple[int, int]:
    """An active campaign owned and worked on by `slack_user_id`, with one task due at D."""
    async with sessions.begin() as db:
        member = await db.scalar(select(TeamMember).where(TeamMember.slack_user_id == slack_user_id))
        assert member is not None
        campaign = Campaign(name=name, template="promo", launch_date=date(2027, 5, 1), status=CampaignStatus.ACTIVE,
                            owner_id=member.id)
        db.add(campaign)
        await db.flush()
        db.add(Task(campaign_id=campaign.id, title="Write <copy> & ads", assignee_id=member.id, due_at=D))
        return campaign.id, member.id


async def sweep(sessions: async_sessionmaker[AsyncSession], now: datetime) -> list[Notification]:
    async with sessions.begin() as db:
        await due_notifications(db=db, now=now)
    async with sessions() as db:
        return list(await db.scalars(select(Notification).where(Notification.kind != "digest")
                                     .order_by(Notification.id)))


async def deliver(sessions: async_sessionmaker[AsyncSession], fake: FakeSlack, nid: int, at: datetime,
                  mailer: Mailer | None) -> str:
    client = delivery_client(AsyncWebClient(token=BOT_TOKEN, base_url=fake.base_url))
    outcome = await deliver_notification(sessions=sessions, slack=client, notification_id=nid, clock=lambda: at,
                                         enqueue=None, mailer=mailer)
    return outcome.status


def slack_posts(fake: FakeSlack) -> list[Any]:
    return [call for call in fake.calls_to("chat.postMessage") if not call.injected]


async def test_notify_email_sends_the_reminder_through_smtp(running_app: RunningApp, fake_slack: FakeSlack,
                                                            smtp: Smtp) -> None:
    reply = await command(running_app, fake_slack, "/team", "me notify=email")
    assert "Updated notify via" in reply and "reminders by email" in reply
    await campaign_with_task(running_app.sessions, "U0ALICE")

    [row] = await sweep(running_app.sessions, D - timedelta(hours=1))
    assert (row.kind, row.channel) == ("task_reminder", NotificationChannel.EMAIL)
    assert await deliver(running_app.sessions, fake_slack, row.id, row.scheduled_for, smtp.mailer()) == "sent"

    [(recipients, mail)] = smtp.collector.messages
    assert recipients == ["alice@example.com"] and mail["To"] == "alice@example.com"
    assert mail["From"] == "cm@example.test"
    assert mail["Subject"].startswith("Coming up: T-") and "Write <copy> & ads" in mail["Subject"]
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    assert "Spring <sale> & more" in text.get_content()
    body = html.get_content()
    assert "Write &lt;copy&gt; &amp; ads" in body and "Spring &lt;sale&gt; &amp; more" in body
    assert "<copy>" not in body and "<sale>" not in body
    assert slack_posts(fake_slack) == []
    async with running_app.sessions() as db:
        sent = await db.get(Notification, row.id)
    assert sent is not None and sent.status is NotificationStatus.SENT and sent.slack_ts is None


async def test_without_a_worker_a_plan_alert_reaches_an_email_reader_by_email(db_url: str, fake_slack: FakeSlack,
                                                                              smtp: Smtp) -> None:
    # No worker consumes the queue (the console, `run_worker=False`): the change's rows are delivered inline,
    # by a delivery built like the job's, so the owner who chose email gets the alert by email, not on Slack.
    settings = app_settings(db_url, fake_slack, smtp_url=f"smtp://127.0.0.1:{smtp.port}?starttls=0",
                            email_from="cm@example.test")
    async with start_app(settings, fake_slack, run_worker=False) as app:
        assert "reminders by email" in await command(app, fake_slack, "/team", "me notify=email")
        critical = await tight_promo(app, fake_slack)
        await task(app, fake_slack, f"estimate T-{critical.id} {critical.duration_hours / 8 + 5:g}d")

        await eventually(lambda: smtp.collector.messages, what="the plan alert by email")
        await settled(app, outbox=True)
        [alert] = await plan_alert_rows(app)
        assert (alert.channel, alert.status) == (NotificationChannel.EMAIL, NotificationStatus.SENT)
    [(recipients, mail)] = [(to, mail) for to, mail in smtp.collector.messages if "plan alert" in mail["Subject"]]
    assert recipients == ["alice@example.com"] and mail["Subject"] == "CM-1 Flash sale: plan alert"
    assert [post for post in slack_posts(fake_slack) if "plan alert" in str(post.args.get("text"))] == []


async def test_without_smtp_or_address_email_falls_back_to_slack(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await command(running_app, fake_slack, "/team", "me notify=email")
    await command(running_app, fake_slack, "/team", "me notify=email", user_id="U0BOB")
    async with running_app.sessions.begin() as db:  # Bob has no address: his rows are written for Slack
        await db.execute(update(TeamMember).where(TeamMember.slack_user_id == "U0BOB").values(email=None))
    card = await command(running_app, fake_slack, "/team", "me", user_id="U0BOB")
    assert "no email address known" in card
    await campaign_with_task(running_app.sessions, "U0ALICE")
    await campaign_with_task(running_app.sessions, "U0BOB")

    rows = await sweep(running_app.sessions, D - timedelta(hours=1))
    assert sorted(row.channel for row in rows) == [NotificationChannel.EMAIL, NotificationChannel.SLACK]
    for row in rows:  # no SMTP_URL: Alice's email row goes to Slack too
        assert await deliver(running_app.sessions, fake_slack, row.id, row.scheduled_for, None) == "sent"
    assert sorted(post.args["channel"] for post in slack_posts(fake_slack)) == ["U0ALICE", "U0BOB"]


async def _email_world(sessions: async_sessionmaker[AsyncSession], fake: FakeSlack) -> tuple[int, int]:
    world = await make_world(sessions, fake)
    async with sessions.begin() as db:
        await db.execute(update(TeamMember).where(TeamMember.id == world.bob_id)
                         .values(notify_via="email", email="bob@example.com"))
        nid = await notifications.notify(db=db, dedupe_key="mail", kind="generic",
                                         payload={"summary": "Hi", "text": "x"}, recipient_id=world.bob_id,
                                         campaign_id=world.campaign_id, now=T0)
    assert nid is not None
    return nid, world.owner_id


async def test_a_550_fails_the_row_and_tells_the_owner(sessions: async_sessionmaker[AsyncSession],
                                                       fake_slack: FakeSlack, smtp: Smtp) -> None:
    nid, owner_id = await _email_world(sessions, fake_slack)
    smtp.collector.refuse = "550 5.1.1 Mailbox unavailable"
    assert await deliver(sessions, fake_slack, nid, T0, smtp.mailer()) == "failed"
    async with sessions() as db:
        row = await db.get(Notification, nid)
        notices = list(await db.scalars(select(Notification).where(Notification.kind == "delivery_failed")))
    assert row is not None and row.status is NotificationStatus.FAILED and row.retries == 0
    assert row.last_error is not None and row.last_error.startswith("smtp 550")
    assert [n.recipient_id for n in notices] == [owner_id]
    assert smtp.collector.messages == [] and slack_posts(fake_slack) == []


async def test_a_4xx_or_refused_connection_is_retried(sessions: async_sessionmaker[AsyncSession],
                                                      fake_slack: FakeSlack, smtp: Smtp) -> None:
    nid, _ = await _email_world(sessions, fake_slack)
    nowhere = Mailer(SmtpConfig(hostname="127.0.0.1", port=free_port(), start_tls=False), "cm@example.test")
    assert await deliver(sessions, fake_slack, nid, T0, nowhere) == "retry"
    async with sessions() as db:
        row = await db.get(Notification, nid)
    assert row is not None and (row.status, row.retries) == (NotificationStatus.PENDING, 1) and row.last_error

    smtp.collector.refuse = "451 4.3.0 Try again later"
    at = row.scheduled_for
    assert await deliver(sessions, fake_slack, nid, at, smtp.mailer()) == "retry"
    smtp.collector.refuse = None
    async with sessions() as db:
        row = await db.get(Notification, nid)
    assert row is not None and row.retries == 2 and row.last_error is not None and "451" in row.last_error
    assert await deliver(sessions, fake_slack, nid, row.scheduled_for, smtp.mailer()) == "sent"
    assert len(smtp.collector.messages) == 1 and slack_posts(fake_slack) == []


async def test_notify_in_app_posts_nothing_and_fills_the_inbox(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    reply = await command(running_app, fake_slack, "/team", "me notify=in_app")
    assert "Home tab only" in reply
    await campaign_with_task(running_app.sessions, "U0ALICE")
    [row] = await sweep(running_app.sessions, D - timedelta(hours=1))
    assert row.channel is NotificationChannel.IN_APP
    assert await deliver(running_app.sessions, fake_slack, row.id, D, None) == "sent"
    assert slack_posts(fake_slack) == []
    async with running_app.sessions() as db:
        alice = await db.scalar(select(TeamMember).where(TeamMember.slack_user_id == "U0ALICE"))
        assert alice is not None
        data = await home.gather(db=db, member=alice, now=D)
        sent = await db.get(Notification, row.id)
    assert sent is not None and sent.status is NotificationStatus.SENT and sent.sent_at == D
    assert row.id in [n.id for n in data.inbox] and data.unread_total >= 1


async def test_a_bad_notify_value_is_explained(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    reply = await command(running_app, fake_slack, "/team", "me notify=pigeon")
    assert "is not a way I can reach you" in reply and "notify=in_app" in reply
    async with running_app.sessions() as db:
        alice = await db.scalar(select(TeamMember).where(TeamMember.slack_user_id == "U0ALICE"))
    assert alice is None or alice.notify_via == "slack"  # the whole request rolled back


async def test_mute_and_unmute_a_campaign(running_app: RunningApp, fake_slack: FakeSlack) -> None:
    await command(running_app, fake_slack, "/team", "me")
    quiet, _ = await campaign_with_task(running_app.sessions, "U0ALICE", name="Quiet one")
    loud, _ = await campaign_with_task(running_app.sessions, "U0ALICE", name="Loud one")

    reply = await command(running_app, fake_slack, "/campaign", f"mute CM-{quiet}")
    assert "Muted reminders for" in reply and "Quiet one" in reply
    assert "already muted" in await command(running_app, fake_slack, "/campaign", f"mute CM-{quiet}")
    async with running_app.sessions() as db:
        alice = await db.scalar(select(TeamMember).where(TeamMember.slack_user_id == "U0ALICE"))
    assert alice is not None and alice.muted_campaigns == [quiet]

    rows = await sweep(running_app.sessions, D - timedelta(hours=1))
    assert [row.campaign_id for row in rows] == [loud]  # the muted campaign's reminder is skipped

    reply = await command(running_app, fake_slack, "/campaign", f"unmute CM-{quiet}")
    assert "again" in reply
    rows = await sweep(running_app.sessions, D - timedelta(minutes=30))
    assert sorted(row.campaign_id for row in rows) == sorted([loud, quiet])
    assert "was not muted" in await command(running_app, fake_slack, "/campaign", f"unmute CM-{quiet}")
    assert "Which campaign?" in await command(running_app, fake_slack, "/campaign", "mute")


def test_smtp_settings_are_checked() -> None:
    settings = load_settings(smtp_url="smtp://me%40x.org:p%3Ass@mail.example.com:2525?starttls=1",
                             _env_file=None)
    config = SmtpConfig.from_url(settings.smtp_url or "")
    assert (config.hostname, config.port, config.username, config.password, config.start_tls) == (
        "mail.example.com", 2525, "me@x.org", "p:ss", True)
    assert SmtpConfig.from_url("smtps://mail.example.com").port == 465
    assert load_settings(smtp_url=" ", _env_file=None).smtp_url is None
    assert load_settings(_env_file=None).email_from == "campaign-manager@localhost"
    for bad, says in (("http://mail", "SMTP_URL: must start with smtp://"), ("smtp://mail?tls=1", "SMTP_URL"),
                      ("smtp://mail:99999", "SMTP_URL"), ("smtps://mail?starttls=1", "SMTP_URL")):
        with pytest.raises(ConfigError, match=says):
            load_settings(smtp_url=bad, _env_file=None)
    with pytest.raises(ConfigError, match="EMAIL_FROM"):
        load_settings(email_from="nobody", _env_file=None)
