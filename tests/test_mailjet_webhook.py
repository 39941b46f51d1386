"""Mailjet's event webhook end to end: real HTTP posts to the real app (`POST /webhooks/mailjet`), the
embedded worker storing the events, and the results read back through a signed `/campaign show`, the
dashboard's metrics JSON and the weekly status; on SQLite and PostgreSQL.

Waits are on definite signals: a batch row's status (set by the job in the same transaction as its
events), a reply arriving at its response_url.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from blocks.emails import render_email
from blocks.status_report import campaign_status
from handlers.jobs import email_events as email_jobs
from models import EmailEvent, EmailEventBatch
from services import email_events
from services.kinds import Kind
from services.status_reports import weekly_status_posts
from tests import services as test_services
from tests.conftest import RunningApp, app_settings, start_app
from tests.fake_slack import FakeSlack
from tests.fake_slack_blocks import MESSAGE_BLOCK_LIMIT, block_problems
from tests.slack_helpers import owner_today, reply_text, send_command
from tests.support.dashboard import dashboard_token
from tests.support.waiting import eventually
from tests.support.worker import worker_process
from tests.test_reminders import rows
from tests.test_status_reports import MONDAY, world

SECRET = "mj-webhook-secret-for-tests"
PATH = "/webhooks/mailjet"
AUTH = aiohttp.encode_basic_auth("mailjet", SECRET)
NOW = int(datetime.now(UTC).timestamp())


def event(kind: str, email: str, *, campaign: str = "CM-1", message_id: int = 1000, at: int = NOW,
          **extra: Any) -> dict[str, Any]:
    """One Mailjet event as its webhook posts it (with the fields we ignore, too)."""
    body: dict[str, Any] = {
        "event": kind, "time": at, "MessageID": message_id, "Message_GUID": "1ab23cd4-e567-8901-2345-6789f0gh1i2j",
        "email": email, "mj_campaign_id": 7, "mj_contact_id": 42, "customcampaign": campaign, "CustomID": "",
        "Payload": "",
    }
    if kind in ("open", "click"):
        body.update(ip="127.0.0.1", geo="FR", agent="Mozilla/5.0")
    if kind == "click":
        body["url"] = "https://example.com/spring"
    if kind == "bounce":
        body.update(blocked=False, hard_bounce=True, error_related_to="recipient", error="user unknown")
    if kind == "blocked":
        body.update(error_related_to="recipient", error="user unknown")
    if kind == "spam":
        body["source"] = "JMRPP"
    if kind == "unsub":
        body.update(mj_list_id=1, ip="127.0.0.1", geo="FR", agent="Mozilla/5.0")
    body.update(extra)
    return body


# Four people: all sent to but one, who bounced; two opened, one clicked, one unsubscribed.
CAMPAIGN_EVENTS = [
    event("sent", "ann@example.com", message_id=1), event("sent", "Bob@Example.com", message_id=2),
    event("sent", "cy@example.com", message_id=3), event("bounce", "dee@example.com", message_id=4),
    event("open", "ann@example.com", message_id=1), event("open", "bob@example.com", message_id=2),
    event("click", "ann@example.com", message_id=1), event("unsub", "cy@example.com", message_id=3),
]
EMAIL_LINE = "4 recipients, 75% delivered, 67% opened, 33% clicked, 1 bounce, 1 unsubscribed"


async def post(app: RunningApp, body: Any, *, auth: str | None = AUTH,
               params: dict[str, str] | None = None) -> tuple[int, Any]:
    """POST `body` (bytes as they are, anything else as JSON) with `auth` as the Authorization header; return
    the status and the JSON answer."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": auth} if auth else {})}
    async with app.http.post(app.url(PATH), data=data, params=params, headers=headers) as response:
        text = await response.text()
        return response.status, json.loads(text) if response.content_type == "application/json" else text


async def batch(app: RunningApp, batch_id: int) -> EmailEventBatch:
    async with app.sessions() as db:
        row = await db.get(EmailEventBatch, batch_id)
    assert row is not None
    return row


async def processed(app: RunningApp, batch_id: int, *, timeout: float = 30) -> EmailEventBatch:  # noqa: ASYNC109
    async def done() -> EmailEventBatch | None:
        row = await batch(app, batch_id)
        return row if row.status != email_events.PENDING else None

    return await eventually(done, what=f"email event batch {batch_id} to be processed", timeout=timeout, every=0.05)


async def count(app: RunningApp, model: type) -> int:
    async with app.sessions() as db:
        return await db.scalar(select(func.count()).select_from(model)) or 0


async def stored_events(app: RunningApp) -> list[EmailEvent]:
    async with app.sessions() as db:
        return list(await db.scalars(select(EmailEvent).order_by(EmailEvent.id)))


async def a_campaign(app: RunningApp, fake: FakeSlack) -> None:
    launch = owner_today() + timedelta(days=60)
    reply = await send_command(app, fake, "/campaign", f'new "Spring" product_launch {launch.isoformat()}')
    assert "CM-1 created" in reply.args["text"], reply.args["text"]


@pytest.fixture
async def app(db_url: str, fake_slack: FakeSlack) -> AsyncIterator[RunningApp]:
    settings = app_settings(db_url, fake_slack, mailjet_webhook_secret=SECRET)
    async with start_app(settings, fake_slack, run_worker=True) as running:
        yield running


async def test_a_single_event_is_stored_once_for_its_campaign(app: RunningApp, fake_slack: FakeSlack) -> None:
    await a_campaign(app, fake_slack)
    status, answer = await post(app, event("sent", " Ann@Example.com ", message_id=19421777396190490))
    assert (status, answer) == (200, {"batch": 1, "events": 1})
    done = await processed(app, 1)
    assert (done.status, done.events, done.stored, done.duplicates, done.unmatched, done.rejected) == \
        ("done", 1, 1, 0, 0, 0)
    assert done.body == ""  # the body held the address: gone once its events are stored
    [stored] = await stored_events(app)
    assert (stored.event, stored.campaign_id, stored.custom_campaign, stored.message_id) == \
        ("sent", 1, "CM-1", "19421777396190490")
    assert stored.recipient_hash == hashlib.sha256(b"ann@example.com").hexdigest()
    assert stored.occurred_at == datetime.fromtimestamp(NOW, UTC)


async def test_a_batch_of_every_kind_is_counted_in_people(app: RunningApp, fake_slack: FakeSlack) -> None:
    await a_campaign(app, fake_slack)
    spam = event("spam", "ed@example.com", message_id=5)
    blocked = event("blocked", "fay@example.com", message_id=6)
    status, answer = await post(app, [*CAMPAIGN_EVENTS, spam, blocked])
    assert status == 200 and answer["events"] == 10
    done = await processed(app, answer["batch"])
    assert (done.stored, done.duplicates, done.unmatched, done.rejected) == (10, 0, 0, 0)
    async with app.sessions() as db:
        results = (await email_events.results(db=db, campaign_ids=[1]))[1]
    assert results.recipients == 6 and results.delivered.part == 4  # the spam report proves a delivery
    assert (results.opened.part, results.clicked.part, results.bounced, results.hard_bounced) == (2, 1, 1, 1)
    assert (results.blocked, results.spam_reports, results.unsubscribed) == (1, 1, 1)
    bounce = next(row for row in await stored_events(app) if row.event == "bounce")
    assert bounce.hard_bounce is True and bounce.error == "recipient: user unknown"
    click = next(row for row in await stored_events(app) if row.event == "click")
    assert click.url == "https://example.com/spring"


async def test_ten_thousand_events_are_taken_at_once_then_stored(app: RunningApp, fake_slack: FakeSlack) -> None:
    await a_campaign(app, fake_slack)
    people = [f"person{n}@example.com" for n in range(5000)]
    body = [event("sent", who, message_id=n) for n, who in enumerate(people)]
    body += [event("open" if n % 5 else "click", who, message_id=n) for n, who in enumerate(people)]
    raw = json.dumps(body).encode()
    assert len(raw) > 1024 * 1024  # past the app's limit for Slack's bodies: this route reads its own
    status, answer = await post(app, raw)
    assert status == 200 and answer["events"] == 10_000
    assert (await batch(app, answer["batch"])).events == 10_000  # committed before the 200
    done = await processed(app, answer["batch"], timeout=90)
    assert (done.status, done.stored, done.duplicates, done.rejected) == ("done", 10_000, 0, 0)
    async with app.sessions() as db:
        results = (await email_events.results(db=db, campaign_ids=[1]))[1]
    assert (results.recipients, results.delivered.pct, results.opened.part, results.clicked.part) == \
        (5000, 100.0, 4000, 1000)

    status, again = await post(app, raw)  # Mailjet did not hear our 200 and posts it all again
    assert status == 200
    replay = await processed(app, again["batch"], timeout=90)
    assert (replay.stored, replay.duplicates) == (0, 10_000)
    assert await count(app, EmailEvent) == 10_000


async def test_a_replayed_post_and_a_repeated_event_count_once(app: RunningApp, fake_slack: FakeSlack) -> None:
    await a_campaign(app, fake_slack)
    body = [event("open", "ann@example.com"), event("open", "ann@example.com"),
            event("open", "ann@example.com", at=NOW + 60)]  # opened again a minute later: another event
    first = (await post(app, body))[1]["batch"]
    assert (await processed(app, first)).stored == 2
    assert ((await batch(app, first)).duplicates) == 1
    second = (await post(app, body))[1]["batch"]
    replay = await processed(app, second)
    assert (replay.stored, replay.duplicates) == (0, 3)
    assert await count(app, EmailEvent) == 2


def _bodies() -> Iterator[Any]:
    yield pytest.param(b"this is not json", id="not-json")
    yield pytest.param(b"42", id="a-number")
    yield pytest.param(b'"sent"', id="a-string")
    yield pytest.param(b"null", id="null")
    yield pytest.param(b"[1, 2, 3]", id="array-of-numbers")
    yield pytest.param(b'[{"event": "sent"}, 7]', id="an-object-and-a-number")
    yield pytest.param(b"[]", id="empty-array")
    yield pytest.param(b'[{"event": "sent", "time": 17', id="truncated")
    yield pytest.param(b"", id="empty")
    yield pytest.param(b'{"event": "sent", "email": "\xff\xfe"}', id="not-utf8")
    yield pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-too-deep")
    yield pytest.param(b'{"time": 1' + b"0" * 5000 + b"}", id="an-int-of-5000-digits")


@pytest.mark.parametrize("body", list(_bodies()))
async def test_malformed_bodies_get_400_and_store_nothing(app: RunningApp, body: bytes,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    status, answer = await post(app, body)
    assert status == 400 and answer["error"] == "malformed" and answer["detail"], answer
    assert await count(app, EmailEventBatch) == 0
    refusals = [r.getMessage() for r in caplog.records if r.name == "handlers.web.mailjet"]
    assert len(refusals) == 1 and len(refusals[0]) < 200 and "Traceback" not in caplog.text
    async with app.http.get(app.url("/health")) as health:
        assert health.status == 200


async def test_too_large_bodies_get_413(app: RunningApp) -> None:
    from handlers.web.mailjet import MAX_BODY_BYTES

    too_big = b"[" + b" " * MAX_BODY_BYTES + b"]"
    status, answer = await post(app, too_big)
    assert status == 413 and answer["error"] == "too_large"

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the read itself must stop
        for _ in range(MAX_BODY_BYTES // (1024 * 1024) + 2):
            yield b" " * (1024 * 1024)

    async with app.http.post(app.url(PATH), data=chunked(), headers={"Authorization": AUTH}) as response:
        assert response.status == 413
    assert await count(app, EmailEventBatch) == 0
    async with app.http.get(app.url("/health")) as health:
        assert health.status == 200


async def test_items_that_are_not_events_are_rejected_not_the_batch(app: RunningApp, fake_slack: FakeSlack) -> None:
    await a_campaign(app, fake_slack)
    good = event("sent", "ann@example.com")
    bad = [
        {"hello": "world"},
        event("sent", "bob@example.com", time="1700000000"),  # a string where Mailjet sends a number
        event("forward", "bob@example.com"),  # not an event we know
        event("sent", "bob@example.com", MessageID=-3),
        event("sent", "bob\u0000@example.com"),  # PostgreSQL text holds no NUL
        event("sent", "\ud800@example.com"),  # a lone surrogate is not UTF-8
        event("sent", "bob@example.com", hard_bounce="yes"),
        event("sent", "bob@example.com", time=10**20),
    ]
    status, answer = await post(app, [good, *bad])
    assert status == 200
    done = await processed(app, answer["batch"])
    assert (done.status, done.events, done.stored, done.rejected) == ("done", 9, 1, 8)


async def test_the_secret_is_required(app: RunningApp) -> None:
    one = event("sent", "ann@example.com")
    refused: list[tuple[str | None, dict[str, str] | None]] = [
        (None, None), (aiohttp.encode_basic_auth("mailjet", "wrong"), None), (None, {"secret": "wrong"}),
        (None, {"secret": SECRET[:-1]}), (aiohttp.encode_basic_auth(SECRET, ""), None), (f"Bearer {SECRET}", None),
        ("Basic %%%", None), ("Basic " + base64.b64encode(SECRET.encode()).decode(), None),  # no colon
    ]
    for auth, params in refused:
        status, answer = await post(app, one, auth=auth, params=params)
        assert status == 401 and answer["error"] == "unauthorized", (auth, params)
    assert await count(app, EmailEventBatch) == 0
    assert (await post(app, one, auth=None, params={"secret": SECRET}))[0] == 200
    assert (await post(app, one))[0] == 200  # basic auth, whatever the user name
    assert await count(app, EmailEventBatch) == 2


@pytest.mark.parametrize("secret", [None, "   "])
async def test_without_a_secret_the_endpoint_is_off(db_url: str, fake_slack: FakeSlack, secret: str | None) -> None:
    settings = app_settings(db_url, fake_slack, mailjet_webhook_secret=secret)
    async with start_app(settings, fake_slack) as running:
        status, _ = await post(running, event("sent", "ann@example.com"), auth=aiohttp.encode_basic_auth("mailjet", "   "))
        assert status == 404
        assert await count(running, EmailEventBatch) == 0


async def test_events_for_unknown_campaigns_are_kept_aside(app: RunningApp, fake_slack: FakeSlack) -> None:
    await a_campaign(app, fake_slack)
    body = [
        event("sent", "a@example.com", campaign="CM-999"),  # our kind of ref, no such campaign
        event("sent", "b@example.com", campaign="spring-newsletter"),
        event("sent", "c@example.com", campaign="1"),  # a bare number may be anyone's label
        event("sent", "d@example.com", campaign="", CustomID="cm1"),  # no campaign label: CustomID names it
        event("sent", "e@example.com", campaign="CM-999", CustomID="CM-1"),
    ]
    answer = (await post(app, body))[1]
    done = await processed(app, answer["batch"])
    assert (done.stored, done.unmatched) == (5, 3)
    kept = {row.custom_campaign: row.campaign_id for row in await stored_events(app)}
    assert kept == {"CM-999": 1, "spring-newsletter": None, "1": None, "cm1": 1}  # CM-999 twice: the last wins
    unmatched = [row for row in await stored_events(app) if row.campaign_id is None]
    assert sorted(str(row.custom_campaign) for row in unmatched) == ["1", "CM-999", "spring-newsletter"]


async def test_campaign_show_tells_the_email_results(app: RunningApp, fake_slack: FakeSlack) -> None:
    await a_campaign(app, fake_slack)
    before = reply_text(await send_command(app, fake_slack, "/campaign", "show CM-1"))
    assert "Email" not in before  # nothing reported yet: no line
    answer = (await post(app, CAMPAIGN_EVENTS))[1]
    await processed(app, answer["batch"])
    shown = await send_command(app, fake_slack, "/campaign", "show CM-1")
    assert EMAIL_LINE in reply_text(shown), reply_text(shown)
    assert not block_problems(shown.args["blocks"], MESSAGE_BLOCK_LIMIT)


async def test_dashboard_metrics_show_the_email_rates(app: RunningApp, fake_slack: FakeSlack) -> None:
    await a_campaign(app, fake_slack)
    answer = (await post(app, CAMPAIGN_EVENTS))[1]
    await processed(app, answer["batch"])
    today = datetime.now(UTC).date()
    window = {"from": (today - timedelta(days=3)).isoformat(), "to": (today + timedelta(days=3)).isoformat()}
    async with app.http.get(app.url("/api/dashboard/metrics"),
                            params={"token": await dashboard_token(app), **window}) as response:
        assert response.status == 200
        email = (await response.json())["email"]
    assert email["available"] is True and email["recipients"] == 4
    assert email["delivered"] == {"part": 3, "whole": 4, "pct": 75.0}
    assert email["opens"] == {"part": 2, "whole": 3, "pct": 66.7}
    assert email["clicks"] == {"part": 1, "whole": 3, "pct": 33.3}
    assert (email["bounces"], email["unsubscribes"]) == (1, 1)

    earlier = {"from": (today - timedelta(days=30)).isoformat(), "to": (today - timedelta(days=10)).isoformat()}
    async with app.http.get(app.url("/api/dashboard/metrics"),
                            params={"token": await dashboard_token(app), **earlier}) as response:
        assert (await response.json())["email"]["available"] is False  # no event in that range

    async with app.http.get(app.url(f"/dashboard/{await dashboard_token(app)}/metrics"), params=window) as page:
        html = await page.text()
    assert page.status == 200 and "No data yet" not in html and "67%" in html and "75%" in html


async def test_the_sweep_processes_a_batch_no_worker_took(db_url: str, fake_slack: FakeSlack) -> None:
    settings = app_settings(db_url, fake_slack, mailjet_webhook_secret=SECRET)
    async with start_app(settings, fake_slack, run_worker=False) as running:  # nothing consumes the queue
        answer = (await post(running, CAMPAIGN_EVENTS))[1]
        sweeper = running.runtime.sweeper_for_tests()
        await sweeper.run_once()
        assert (await batch(running, answer["batch"])).status == "pending"  # received under a minute ago
        await sweeper.run_once(datetime.now(UTC) + email_events.PICK_UP_AFTER + timedelta(seconds=5))
        done = await batch(running, answer["batch"])
        assert (done.status, done.stored, done.unmatched) == ("done", 8, 8)  # no campaign CM-1 here


async def test_a_worker_process_on_redis_stores_the_batch(db_url: str, fake_slack: FakeSlack, redis_prefix: str,
                                                          tmp_path: Path) -> None:
    settings = app_settings(db_url, fake_slack, mailjet_webhook_secret=SECRET, redis_url=test_services.REDIS_URL,
                            redis_namespace=redis_prefix)
    async with start_app(settings, fake_slack) as running:
        answer = (await post(running, CAMPAIGN_EVENTS))[1]
        assert (await batch(running, answer["batch"])).status == "pending"  # its job waits in Redis
        async with worker_process(db_url, fake_slack, redis_prefix, tmp_path):
            done = await processed(running, answer["batch"])
        assert (done.status, done.stored) == ("done", 8)


async def test_two_workers_on_one_batch_store_it_once(app: RunningApp) -> None:
    async with app.sessions.begin() as db:
        batch_id = await email_events.store_batch(db=db, body=json.dumps(CAMPAIGN_EVENTS), events=8,
                                                  now=datetime.now(UTC))
    outcomes = await asyncio.gather(*(email_jobs.process(app.sessions, batch_id, now=datetime.now(UTC))
                                      for _ in range(2)))
    assert sorted(outcome is None for outcome in outcomes) == [False, True]
    assert (await batch(app, batch_id)).stored == 8 and await count(app, EmailEvent) == 8


async def test_the_weekly_status_carries_the_email_results(sessions: Any) -> None:
    w = await world(sessions)
    async with sessions.begin() as db:
        batch_id = await email_events.store_batch(
            db=db, body=json.dumps([{**item, "customcampaign": f"CM-{w['campaign']}"} for item in CAMPAIGN_EVENTS]),
            events=len(CAMPAIGN_EVENTS), now=MONDAY)
    async with sessions.begin() as db:
        assert await email_events.process_batch(db=db, batch_id=batch_id, now=MONDAY) is not None
    async with sessions.begin() as db:
        await weekly_status_posts(db=db, now=MONDAY)
    payload = (await rows(sessions))[f"status:{w['campaign']}:2027-W11"].payload
    assert payload["email"]["recipients"] == 4 and payload["email"]["opened_pct"] == 66.7
    rendered = campaign_status(payload)
    assert EMAIL_LINE in json.dumps(rendered["blocks"]) and not block_problems(rendered["blocks"], MESSAGE_BLOCK_LIMIT)
    mailed = render_email(Kind.CAMPAIGN_STATUS, payload)  # an owner who chose email reads the same figures
    assert "Email: 4 recipients" in mailed.text and "67% opened" in mailed.text and "*Email*" not in mailed.text
