"""Issue 12's "done means": an approval request leaves only through the outbox, so a Slack outage delays
it and loses nothing; it goes the way each approver chose, in their working hours unless the deadline is near.

Signed requests to the real app with its embedded worker, on both backends; the fake Slack answers 503 while
the request is made, a local SMTP server takes the email. Waits are on definite signals (a call the fake
recorded, an outbox row's state), never on a quiet spell.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from handlers.jobs.delivery import Delivery, delivery_client
from models import Notification, NotificationChannel, NotificationStatus, TeamMember, Urgency
from services import delivery as delivery_policy
from services.kinds import Kind
from services.quiet_hours import DAYS, DEADLINE_NEAR, delivery_time
from tests.approval_helpers import (
    AT_WORK,
    BOB,
    CAROL,
    CHANNEL,
    DAN,
    MENTION,
    OWNER,
    posts_in,
    requests_to,
    settled,
    text_of,
)
from tests.conftest import BOT_TOKEN, RunningApp, app_settings, start_app
from tests.fake_slack import FakeSlack
from tests.slack_helpers import send_command
from tests.support.mail import Smtp
from tests.support.waiting import eventually

BERLIN = ZoneInfo("Europe/Berlin")  # Alice, the owner: a `by <day>` deadline is 17:00 on that day, here


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slack's outage lasts two attempts; the job's backoff (30 s and up) is shortened so the test need
    not wait it out. What is retried, and how often, is the job's own."""
    monkeypatch.setattr(delivery_policy, "BACKOFF_BASE", timedelta(milliseconds=100))


async def requests(app: RunningApp) -> dict[int, Notification]:
    """The approval requests in the outbox, by id."""
    async with app.sessions() as db:
        return {row.id: row for row in await db.scalars(select(Notification).where(Notification.kind == Kind.APPROVAL_REQUEST))}


async def member_id(app: RunningApp, slack_user_id: str) -> int:
    async with app.sessions() as db:
        found = await db.scalar(select(TeamMember.id).where(TeamMember.slack_user_id == slack_user_id))
    assert found is not None
    return found


def channel_copies(fake: FakeSlack) -> list[object]:
    return [call for call in posts_in(fake, CHANNEL) if "Approval requested" in text_of(call)]


def utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def dan_wakes_up(now: datetime) -> tuple[date, datetime]:
    """A deadline day three days out, and the start of Dan's one working hour that day: two hours before
    the deadline (17:00 in Berlin), so a request due then is "near" when his quiet hours end."""
    due_day = now.astimezone(BERLIN).date() + timedelta(days=3)
    deadline = datetime.combine(due_day, time(17), tzinfo=BERLIN)
    return due_day, (deadline - timedelta(hours=2)).astimezone(UTC)


async def test_slack_down_when_approval_is_requested(db_url: str, fake_slack: FakeSlack, smtp: Smtp) -> None:
    fake = fake_slack
    due_day, morning = dan_wakes_up(datetime.now(UTC))
    settings = app_settings(db_url, fake, smtp_url=f"smtp://127.0.0.1:{smtp.port}?starttls=0",
                            email_from="cm@example.test")
    async with start_app(settings, fake, run_worker=True) as app:
        fake.add_user(CAROL, name="carol", real_name="Carol Chen", email="carol@example.com", tz="Europe/Paris")
        fake.add_user(DAN, name="dan", real_name="Dan Diaz", tz="America/New_York")
        for user, extra in ((OWNER, ""), (BOB, ""), (CAROL, " notify=email")):
            await send_command(app, fake, "/team", f"me {AT_WORK}{extra}", user_id=user)
        # Dan works one hour a week: now is in his quiet hours, and they end at `morning`.
        await send_command(app, fake, "/team", f"me tz=UTC hours={DAYS[morning.weekday()]} "
                                               f"{morning.hour}-{morning.hour + 1}", user_id=DAN)
        launch = (date.today() + timedelta(days=120)).isoformat()
        for name in ("Spring launch", "Autumn launch"):
            await send_command(app, fake, "/campaign", f'new "{name}" webinar {launch}', channel_id=CHANNEL)
        bob, carol, dan = [await member_id(app, user) for user in (BOB, CAROL, DAN)]
        await settled(app)  # what creating the campaigns sent has gone out: the outage below is the request's

        # Slack answers 503 to the first two rounds of posts (Bob's DM and the channel's copy, twice).
        fake.fail_next("chat.postMessage", status=503, times=4)
        reply = await send_command(app, fake, "/approval", f'request CM-1 "Copy review" {MENTION[BOB]} '
                                   f"{MENTION[CAROL]} {MENTION[DAN]}", user_id=OWNER)
        said = text_of(reply)
        assert "Asked <@U0BOB>, <@U0CAROL>, <@U0DAN>" in said and "could not" not in said
        assert "<@U0BOB> in Slack" in said and "<@U0CAROL> by email" in said
        assert "<@U0DAN> in Slack when their working hours begin" in said

        async def all_but_dans_sent() -> bool:
            rows = (await requests(app)).values()
            return len(rows) == 4 and all(row.status is NotificationStatus.SENT for row in rows
                                          if row.recipient_id != dan)

        await eventually(all_but_dans_sent, what="the requests to go out once Slack is back", timeout=30, every=0.05)
        assert len([call for call in fake.calls_to("chat.postMessage") if call.injected]) == 4
        rows = {row.recipient_id or row.recipient_channel: row for row in (await requests(app)).values()}
        assert rows[bob].retries == 2 and rows[CHANNEL].retries == 2  # refused twice, sent the third time
        assert rows[carol].channel is NotificationChannel.EMAIL and rows[carol].retries == 0

        # Everyone reachable now has it exactly once: Bob in Slack, the channel its copy, Carol by email.
        [bobs] = requests_to(fake, BOB)
        assert "Copy review" in text_of(bobs) and "CM-1" in text_of(bobs)
        assert len(channel_copies(fake)) == 1 and requests_to(fake, CAROL) == []
        [(recipients, mail)] = smtp.collector.messages
        assert recipients == ["carol@example.com"] and "sign-off is requested: Copy review" in str(mail["Subject"])
        body = mail.get_body(("plain",))
        assert body is not None and "/approval mine" in body.get_content() and "Home tab" in body.get_content()

        # Dan is in his quiet hours: his request waits for the start of his working hour, and not a minute less.
        held = rows[dan]
        assert held.status is NotificationStatus.PENDING and utc(held.scheduled_for) == morning
        assert requests_to(fake, DAN) == []
        client = delivery_client(AsyncWebClient(token=BOT_TOKEN, base_url=fake.base_url))
        early = await Delivery(sessions=app.sessions, slack=client, clock=lambda: morning - timedelta(minutes=1)).run(
            [held.id])
        assert early[held.id].status == "skipped" and requests_to(fake, DAN) == []
        on_time = await Delivery(sessions=app.sessions, slack=client, clock=lambda: morning).run([held.id])
        assert on_time[held.id].status == "sent"
        [dans] = requests_to(fake, DAN)
        assert "CM-1" in text_of(dans)

        # Unless the deadline is near: due two hours after his quiet hours end, Dan hears at once.
        reply = await send_command(app, fake, "/approval", f'request CM-2 "Legal review" {MENTION[DAN]} '
                                   f"by {due_day.isoformat()}", user_id=OWNER)
        assert "<@U0DAN> in Slack." in text_of(reply)
        await fake.wait_for("chat.postMessage", lambda call: call.args.get("channel") == DAN and "CM-2" in text_of(call))

        # A sweep after all this sends nothing twice.
        await app.runtime.sweeper_for_tests().run_once()

        async def every_request_sent() -> bool:
            return all(row.status is NotificationStatus.SENT for row in (await requests(app)).values())

        await eventually(every_request_sent, what="every request to be sent", timeout=30, every=0.05)
    assert [len(requests_to(fake, user)) for user in (BOB, CAROL, DAN)] == [1, 0, 2]
    assert len(channel_copies(fake)) == 2  # CM-1's copy, CM-2's
    asked = [mail for _, mail in smtp.collector.messages if "sign-off is requested" in str(mail["Subject"])]
    assert len(asked) == 1, [str(mail["Subject"]) for _, mail in smtp.collector.messages]


class _Member:
    """Quiet hours read these columns only."""

    timezone = "UTC"
    weekly_availability = {"wed": [["09:00", "17:00"]]}
    out_of_office_from = None
    out_of_office_until = None


def test_quiet_hours_hold_a_request_unless_its_deadline_is_near() -> None:
    night = datetime(2027, 3, 9, 22, 0, tzinfo=UTC)  # a Tuesday night; the member starts Wednesday 09:00
    start = datetime(2027, 3, 10, 9, 0, tzinfo=UTC)
    member = _Member()
    assert delivery_time(member, night, Urgency.NORMAL) == start
    assert delivery_time(member, night, Urgency.NORMAL, deadline=start + DEADLINE_NEAR) == start
    assert delivery_time(member, night, Urgency.NORMAL, deadline=start + DEADLINE_NEAR - timedelta(minutes=1)) == night
    assert delivery_time(member, night, Urgency.NORMAL, deadline=night - timedelta(hours=1)) == night  # overdue: now
    during = datetime(2027, 3, 10, 10, 0, tzinfo=UTC)
    assert delivery_time(member, during, Urgency.NORMAL, deadline=during + timedelta(minutes=5)) == during
