"""Outgoing webhooks end to end: `/api webhook …` through signed Slack requests to the real app, a change
that emits an event, and a small HTTP receiver started here that records what arrives; on both backends.

Waits are on definite signals (a request the receiver recorded, an outbox row's state), never on sleeps.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from handlers.jobs.delivery import Delivery
from models import Notification, NotificationStatus, Webhook
from services import delivery as delivery_policy
from services import webhooks
from services.kinds import Kind
from tests.conftest import RunningApp, app_settings, start_app
from tests.fake_slack import FakeSlack
from tests.slack_helpers import owner_today, reply_text, send_command
from tests.support.network import free_port
from tests.support.waiting import eventually, settled

ADMIN = "U0ALICE"  # Alice owns the campaign and is the admin who registers webhooks
SECRET = re.compile(r"```([0-9a-f]{64})```")
NUMBER = re.compile(r"Webhook (\d+) posts")


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The receiver's outage lasts a few attempts; the backoff (30 s and up) is shortened so the test need
    not wait it out. What is retried, and how often, is the delivery's own."""
    monkeypatch.setattr(delivery_policy, "BACKOFF_BASE", timedelta(milliseconds=100))


@dataclass
class Arrived:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP endpoint that records each POST and answers the next status of `answers` (then 200)."""

    port: int
    answers: list[int] = field(default_factory=list)
    arrived: list[Arrived] = field(default_factory=list)
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.arrived.append(Arrived(dict(request.headers), await request.read()))
        return web.Response(status=self.answers.pop(0) if self.answers else 200, text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver(port=free_port())
    await found.start()
    yield found
    await found.stop()


@pytest.fixture
async def app(db_url: str, fake_slack: FakeSlack) -> AsyncIterator[RunningApp]:
    async with start_app(app_settings(db_url, fake_slack, admin_user_ids=ADMIN), fake_slack) as running:
        yield running


async def add_webhook(app: RunningApp, fake: FakeSlack, url: str, events: str = "task.done") -> tuple[int, str]:
    reply = await send_command(app, fake, "/api", f"webhook add {url} events={events}", user_id=ADMIN)
    text = reply_text(reply)
    secret, number = SECRET.search(text), NUMBER.search(text)
    assert secret and number, text
    return int(number.group(1)), secret.group(1)


async def campaign_with_task_done(app: RunningApp, fake: FakeSlack) -> None:
    launch = owner_today() + timedelta(days=60)
    reply = await send_command(app, fake, "/campaign", f'new "Spring" product_launch {launch.isoformat()}')
    assert "CM-1 created" in reply.args["text"], reply.args["text"]
    done = await send_command(app, fake, "/task", "done T-1", user_id=ADMIN)
    assert "T-1" in reply_text(done)


async def hook(app: RunningApp, webhook_id: int) -> Webhook:
    async with app.sessions() as db:
        row = await db.get(Webhook, webhook_id)
    assert row is not None
    return row


async def deliveries(app: RunningApp) -> list[Notification]:
    async with app.sessions() as db:
        return list(await db.scalars(select(Notification).where(Notification.kind == Kind.WEBHOOK)))


def check_signed(arrived: Arrived, secret: str) -> dict[str, Any]:
    headers = arrived.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["X-CM-Event"] == "task.done"
    timestamp = headers["X-CM-Timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + arrived.body, hashlib.sha256).hexdigest()
    assert headers["X-CM-Signature"] == f"sha256={expected}"
    body: dict[str, Any] = json.loads(arrived.body)
    assert body["event"] == "task.done" and body["id"] == headers["X-CM-Delivery"]
    return body


async def test_a_task_done_posts_once_signed(app: RunningApp, fake_slack: FakeSlack, receiver: Receiver) -> None:
    webhook_id, secret = await add_webhook(app, fake_slack, receiver.url)
    await campaign_with_task_done(app, fake_slack)
    await eventually(lambda: receiver.arrived, what="the webhook's POST")
    await settled(app, outbox=True)
    assert len(receiver.arrived) == 1
    body = check_signed(receiver.arrived[0], secret)
    assert body["data"]["task"]["ref"] == "T-1" and body["campaign"]["ref"] == "CM-1"
    wrong = hmac.new(b"not the secret", receiver.arrived[0].body, hashlib.sha256).hexdigest()
    assert receiver.arrived[0].headers["X-CM-Signature"] != f"sha256={wrong}"
    assert (await hook(app, webhook_id)).last_status == 200
    listed = reply_text(await send_command(app, fake_slack, "/api", "webhook list", user_id=ADMIN))
    assert "HTTP 200" in listed and receiver.url in listed and secret not in listed


async def test_an_outage_is_retried_with_the_same_delivery_id(app: RunningApp, fake_slack: FakeSlack,
                                                              receiver: Receiver) -> None:
    webhook_id, secret = await add_webhook(app, fake_slack, receiver.url)
    receiver.answers = [503, 503]
    await campaign_with_task_done(app, fake_slack)
    await eventually(lambda: len(receiver.arrived) >= 3, what="two failed posts and a third that works")

    async def recorded() -> bool:
        return (await hook(app, webhook_id)).last_status == 200
    await eventually(recorded, what="the webhook's last status to be 200")
    await settled(app, outbox=True)
    assert len(receiver.arrived) == 3
    assert len({arrived.headers["X-CM-Delivery"] for arrived in receiver.arrived}) == 1
    for arrived in receiver.arrived:
        check_signed(arrived, secret)
    [row] = await deliveries(app)
    assert row.status is NotificationStatus.SENT and row.retries == 2


async def test_a_receiver_down_then_up_gets_it_once(app: RunningApp, fake_slack: FakeSlack,
                                                    receiver: Receiver) -> None:
    webhook_id, secret = await add_webhook(app, fake_slack, receiver.url)
    await receiver.stop()  # the port is closed: connections are refused
    await campaign_with_task_done(app, fake_slack)

    async def failed_twice() -> bool:
        rows = await deliveries(app)
        return len(rows) == 1 and rows[0].retries >= 2
    await eventually(failed_twice, what="two refused attempts")
    assert (await hook(app, webhook_id)).last_status is None  # no answer
    await receiver.start()
    await eventually(lambda: receiver.arrived, what="the post after the receiver came back")

    async def sent() -> bool:
        return (await deliveries(app))[0].status is NotificationStatus.SENT
    await eventually(sent, what="the row to be sent")
    await settled(app, outbox=True)
    assert len(receiver.arrived) == 1
    check_signed(receiver.arrived[0], secret)


async def test_a_gone_receiver_fails_it_without_retry(app: RunningApp, fake_slack: FakeSlack,
                                                      receiver: Receiver) -> None:
    webhook_id, _ = await add_webhook(app, fake_slack, receiver.url)
    receiver.answers = [410]
    await campaign_with_task_done(app, fake_slack)

    async def failed() -> bool:
        rows = await deliveries(app)
        return bool(rows) and rows[0].status is NotificationStatus.FAILED
    await eventually(failed, what="the row to fail")
    await settled(app, outbox=True)
    assert len(receiver.arrived) == 1
    row = await hook(app, webhook_id)
    assert row.last_status == 410 and row.last_error == "HTTP 410"
    async with app.sessions() as db:  # a machine's refusal is not news for the campaign's owner
        notices = list(await db.scalars(select(Notification).where(Notification.kind == Kind.DELIVERY_FAILED)))
    assert notices == []


async def test_a_removed_webhook_gets_nothing(app: RunningApp, fake_slack: FakeSlack, receiver: Receiver) -> None:
    webhook_id, _ = await add_webhook(app, fake_slack, receiver.url)
    removed = await send_command(app, fake_slack, "/api", f"webhook remove {webhook_id}", user_id=ADMIN)
    assert "is removed" in reply_text(removed)
    await campaign_with_task_done(app, fake_slack)
    await settled(app, outbox=True)
    assert receiver.arrived == [] and await deliveries(app) == []
    listed = reply_text(await send_command(app, fake_slack, "/api", "webhook list", user_id=ADMIN))
    assert "no webhooks yet" in listed


async def test_only_admins_manage_webhooks(app: RunningApp, fake_slack: FakeSlack, receiver: Receiver) -> None:
    for text in (f"webhook add {receiver.url} events=task.done", "webhook list", "webhook remove 1"):
        reply = await send_command(app, fake_slack, "/api", text, user_id="U0BOB")
        assert "Only an admin" in reply_text(reply), text
    async with app.sessions() as db:
        assert list(await db.scalars(select(Webhook))) == []


@pytest.mark.parametrize("url", [
    "ftp://example.com/hooks", "https://user:secret@example.com/hooks", "https://:secret@example.com/hooks",
    "example.com/hooks", "https://", "https://example.com:99999/x", "javascript:alert(1)",
    "https://example.com/" + "a" * 2100, "<script>",
])
async def test_bad_urls_are_refused(app: RunningApp, fake_slack: FakeSlack, url: str) -> None:
    reply = await send_command(app, fake_slack, "/api", f"webhook add {url} events=task.done", user_id=ADMIN)
    text = reply_text(reply)
    assert "Signing secret" not in text and "<script>" not in text
    async with app.sessions() as db:
        assert list(await db.scalars(select(Webhook))) == []


async def test_bad_events_are_refused(app: RunningApp, fake_slack: FakeSlack) -> None:
    for text in ("webhook add https://example.com/h events=task.deleted", "webhook add https://example.com/h",
                 "webhook add https://example.com/h events="):
        reply = await send_command(app, fake_slack, "/api", text, user_id=ADMIN)
        assert "Signing secret" not in reply_text(reply), text
    async with app.sessions() as db:
        assert list(await db.scalars(select(Webhook))) == []


def test_the_signature_is_over_timestamp_and_body() -> None:
    body = webhooks.body_bytes({"b": 1, "a": "é"})
    assert body == '{"a":"é","b":1}'.encode()
    expected = hmac.new(b"k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert webhooks.signature("k", 1700000000, body) == f"sha256={expected}"


@pytest.mark.parametrize(("status", "verdict"), [
    (None, delivery_policy.Verdict.RETRY), (500, delivery_policy.Verdict.RETRY), (503, delivery_policy.Verdict.RETRY),
    (408, delivery_policy.Verdict.RETRY), (429, delivery_policy.Verdict.WAIT), (410, delivery_policy.Verdict.FAIL),
    (400, delivery_policy.Verdict.FAIL), (301, delivery_policy.Verdict.FAIL),
])
def test_http_faults(status: int | None, verdict: delivery_policy.Verdict) -> None:
    fault = delivery_policy.http_fault(status=status, reason="x", retry_after=7)
    assert fault.verdict is verdict and fault.status == status
    if verdict is delivery_policy.Verdict.WAIT:
        assert fault.wait == timedelta(seconds=7)


async def test_the_worker_posts_through_its_session_and_retries(db_url: str, fake_slack: FakeSlack,
                                                                receiver: Receiver) -> None:
    """The same outage with the embedded worker: the job's delivery (its own HTTP session) retries it."""
    settings = app_settings(db_url, fake_slack, admin_user_ids=ADMIN)
    async with start_app(settings, fake_slack, run_worker=True) as app:
        _, secret = await add_webhook(app, fake_slack, receiver.url)
        receiver.answers = [503]
        await campaign_with_task_done(app, fake_slack)
        await eventually(lambda: len(receiver.arrived) >= 2, what="a failed post and one that works")

        async def sent() -> bool:
            rows = await deliveries(app)
            return bool(rows) and rows[0].status is NotificationStatus.SENT
        await eventually(sent, what="the row to be sent")
        await settled(app, outbox=True)
        assert len(receiver.arrived) == 2
        assert receiver.arrived[0].headers["X-CM-Delivery"] == receiver.arrived[1].headers["X-CM-Delivery"]
        check_signed(receiver.arrived[1], secret)


async def test_a_launch_goes_only_to_webhooks_that_asked(app: RunningApp, fake_slack: FakeSlack,
                                                         receiver: Receiver) -> None:
    """Two webhooks on the same receiver: the one for task.done hears nothing of a launch."""
    launched_id, secret = await add_webhook(app, fake_slack, receiver.url + "?for=launch",
                                            events="campaign.launched,approval.decided")
    await add_webhook(app, fake_slack, receiver.url, events="task.done")
    launch = owner_today() + timedelta(days=60)
    await send_command(app, fake_slack, "/campaign", f'new "Spring" product_launch {launch.isoformat()}')
    await send_command(app, fake_slack, "/campaign", "launch CM-1", user_id=ADMIN)
    await eventually(lambda: receiver.arrived, what="the launch's POST")
    await settled(app, outbox=True)
    [arrived] = receiver.arrived
    assert arrived.headers["X-CM-Event"] == "campaign.launched"
    timestamp = arrived.headers["X-CM-Timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + arrived.body, hashlib.sha256).hexdigest()
    assert arrived.headers["X-CM-Signature"] == f"sha256={expected}"
    body = json.loads(arrived.body)
    assert body["campaign"] == {"id": 1, "ref": "CM-1", "name": "Spring", "status": "active"}
    assert (await hook(app, launched_id)).last_status == 200


async def test_a_delivery_without_a_slack_token_still_posts_webhooks(app: RunningApp, fake_slack: FakeSlack,
                                                                      receiver: Receiver) -> None:
    """A webhook never goes through Slack: a delivery that cannot post to Slack (no token) takes it anyway."""
    _, secret = await add_webhook(app, fake_slack, receiver.url)
    async with app.sessions.begin() as db:
        [nid] = await webhooks.emit(db=db, event=webhooks.Event.TASK_DONE, campaign=None, data={"task": "T-9"},
                                    now=datetime.now(UTC))

    outcomes = await Delivery(sessions=app.sessions, slack=None, clock=lambda: datetime.now(UTC)).run([nid])

    assert outcomes[nid].status == "sent"
    [arrived] = receiver.arrived
    assert check_signed(arrived, secret)["data"] == {"task": "T-9"}
