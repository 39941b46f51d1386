"""Deliver one outbox notification to Slack: claim, render, post, record.

The row carries the retry state (Dramatiq's own retries are off): a rate limit reschedules the row at
Slack's Retry-After without counting, an outage (5xx, timeout, connection error) counts and backs off,
an error no retry can fix fails the row and tells the campaign's owner once.

Three short transactions, none open while Slack is called: (1) claim the row with a lease and read what
to send, commit — the lease keeps every other worker off it; (2) post; (3) record the result and commit
at once, so a crash between the post and its record (which would send it again when the lease runs out)
has the smallest window we can give it. Delivery is therefore at-least-once, never concurrent.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import dramatiq
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from blocks import notifications as messages
from blocks.emails import Email, render_email
from handlers.jobs.environment import JobEnvironment
from handlers.jobs.registry import job
from models import Campaign, Notification, NotificationChannel, TeamMember, Urgency
from services import mailer as mail
from services import notifications
from services.mailer import Mailer

log = logging.getLogger(__name__)

DELIVER = "notifications.deliver"
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
DEFAULT_RETRY_AFTER = 30  # seconds, when a 429 comes without a usable Retry-After
DELAY_MARGIN_MS = 250  # a re-sent job arrives just after the row is due, never before
POST_TIMEOUT = 15  # seconds; well inside the claim's lease
RECORD_ATTEMPTS = 3  # recording a post that went out is worth a couple of quick retries

# Errors no retry will fix: the row fails and the campaign's owner hears about it once.
PERMANENT_ERRORS = frozenset({
    "channel_not_found", "user_not_found", "not_in_channel", "account_inactive", "is_archived", "invalid_auth",
})
# Slack's own "try again later" answers (HTTP 200, ok=false).
TRANSIENT_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})

Clock = Callable[[], datetime]
Enqueue = Callable[[int, int | None], Awaitable[None]]  # (notification id, delay in ms)


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt did: sent | skipped | rate_limited | retry | failed."""

    status: str
    error: str | None = None
    retry_at: datetime | None = None
    owner_notice_id: int | None = None  # the delivery-failed notification written for the owner


@dataclass(frozen=True)
class _Claimed:
    kind: str
    target: str
    content: dict[str, Any]
    retries: int
    campaign_id: int | None
    recipient_id: int | None
    recipient_channel: str | None
    recipient_user: str | None
    email: Email | None = None  # set when this one goes out by email (the target is then the address)


@job(DELIVER, max_retries=0)
async def deliver(env: JobEnvironment, *, notification_id: int) -> None:
    resources = await env.resources()
    if resources.slack is None:
        log.info("no Slack token: notification %s stays pending", notification_id)
        return

    async def enqueue(nid: int, delay_ms: int | None) -> None:
        broker = env.broker or dramatiq.get_broker()
        actor = broker.get_actor(DELIVER)
        await asyncio.to_thread(actor.send_with_options, kwargs={"notification_id": nid}, delay=delay_ms)

    await deliver_notification(
        sessions=resources.sessions, slack=delivery_client(resources.slack), notification_id=notification_id,
        clock=env.clock, enqueue=enqueue, mailer=resources.mailer,
    )


def delivery_client(client: AsyncWebClient) -> AsyncWebClient:
    """A client like `client` but without retry handlers, so every fault comes back to the row.

    The shared clients retry a 429 by sleeping out Retry-After inside the call (holding the lease and a
    worker thread, possibly past the lease, which lets a second worker send the same message) and retry
    connection errors at once (re-posting a message that may already have been delivered). Here the row
    records the fault and the job is sent again with a delay instead.
    """
    return AsyncWebClient(token=client.token, base_url=client.base_url, session=client.session,
                          timeout=POST_TIMEOUT, retry_handlers=[])


async def deliver_notification(
    *, sessions: async_sessionmaker[AsyncSession], slack: AsyncWebClient, notification_id: int, clock: Clock,
    enqueue: Enqueue | None, mailer: Mailer | None = None,
) -> Outcome:
    """One attempt. `enqueue` sends follow-ups (a delayed retry, the owner's notice); None leaves them to
    the sweep. The row's channel picks the way: in_app is only the App Home inbox (recorded as sent at
    once, nothing posted), email goes through `mailer` (no mailer or no address: Slack instead)."""
    async with sessions.begin() as db:
        row = await notifications.claim(db=db, notification_id=notification_id, now=clock())
        if row is None:
            return Outcome("skipped")  # not due, already sent or failed, or someone else holds the lease
        if row.channel is NotificationChannel.IN_APP and row.recipient_id is not None:
            await notifications.mark_sent(db=db, notification=row, now=clock(), slack_channel=None, slack_ts=None)
            return Outcome("sent")
        try:
            claimed = await _prepare(db, row, by_email=mailer is not None)
        except Exception as error:  # a payload no renderer understands: retrying won't help
            log.exception("notification %s cannot be rendered", notification_id)
            await notifications.mark_failed(db=db, notification=row, error=f"render_failed: {error!r}")
            return Outcome("failed", error="render_failed")

    if claimed.email is not None and mailer is not None:
        return await _send_email(sessions, notification_id, claimed, mailer, clock, enqueue)
    try:
        response = await slack.chat_postMessage(channel=claimed.target, **claimed.content)
    except SlackApiError as error:
        return await _after_slack_error(sessions, notification_id, claimed, error, clock, enqueue)
    except (TimeoutError, aiohttp.ClientError, SlackClientError) as error:
        return await _retry(sessions, notification_id, claimed, f"{type(error).__name__}: {error}", clock, enqueue)

    await _record_sent(sessions, notification_id, clock, str(response.get("channel") or claimed.target),
                       response.get("ts"))
    return Outcome("sent")


async def _send_email(sessions: async_sessionmaker[AsyncSession], notification_id: int, claimed: _Claimed,
                      mailer: Mailer, clock: Clock, enqueue: Enqueue | None) -> Outcome:
    assert claimed.email is not None
    try:
        await mailer.send(claimed.email.message(to=claimed.target, sender=mailer.sender))
    except mail.SEND_ERRORS as error:
        reason = mail.describe(error)
        if mail.is_permanent(error):  # 550 mailbox unavailable and the like: no retry will help
            return await _fail(sessions, notification_id, claimed, reason, clock, enqueue)
        return await _retry(sessions, notification_id, claimed, reason, clock, enqueue)  # 4xx, connection
    await _record_sent(sessions, notification_id, clock, None, None)  # no Slack message to point at
    return Outcome("sent")


async def _prepare(db: AsyncSession, row: Notification, *, by_email: bool = False) -> _Claimed:
    user = None
    email: Email | None = None
    if row.recipient_channel is not None:
        target = row.recipient_channel
    else:
        member = await db.get(TeamMember, row.recipient_id)
        if member is None:
            raise LookupError(f"member {row.recipient_id} is gone")
        target = user = member.slack_user_id
        if by_email and row.channel is NotificationChannel.EMAIL and member.email and "@" in member.email:
            target, email = member.email, render_email(row.kind, row.payload)
    if email is not None:
        return _Claimed(kind=row.kind, target=target, content={}, retries=row.retries, campaign_id=row.campaign_id,
                        recipient_id=row.recipient_id, recipient_channel=None, recipient_user=user, email=email)
    return _Claimed(
        kind=row.kind, target=target, content=messages.render(row.kind, row.payload), retries=row.retries,
        campaign_id=row.campaign_id, recipient_id=row.recipient_id, recipient_channel=row.recipient_channel,
        recipient_user=user,
    )


async def _record_sent(sessions: async_sessionmaker[AsyncSession], notification_id: int, clock: Clock,
                       channel: str | None, ts: str | None) -> None:
    for attempt in range(RECORD_ATTEMPTS):
        try:
            async with sessions.begin() as db:
                row = await db.get(Notification, notification_id)
                if row is not None:
                    await notifications.mark_sent(db=db, notification=row, now=clock(), slack_channel=channel,
                                                  slack_ts=ts)
            return
        except DBAPIError:
            if attempt == RECORD_ATTEMPTS - 1:
                # Posted but not recorded: when the lease runs out the sweep will send it again.
                log.exception("notification %s was posted (ts %s) but could not be recorded", notification_id, ts)
                raise
            await asyncio.sleep(0.2 * 2**attempt)


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


async def _after_slack_error(
    sessions: async_sessionmaker[AsyncSession], notification_id: int, claimed: _Claimed, error: SlackApiError,
    clock: Clock, enqueue: Enqueue | None,
) -> Outcome:
    status = error.response.status_code
    code = str(error.response.get("error") or "") if isinstance(error.response.data, dict) else ""
    if status == 429 or code == "ratelimited":
        raw = _header(error.response.headers, "Retry-After")
        seconds = int(raw) if raw is not None and raw.strip().isdigit() else DEFAULT_RETRY_AFTER
        return await _rate_limited(sessions, notification_id, seconds, clock, enqueue)
    if status >= 500 or code in TRANSIENT_ERRORS:
        return await _retry(sessions, notification_id, claimed, f"HTTP {status} {code}".strip(), clock, enqueue)
    if code in PERMANENT_ERRORS:
        return await _fail(sessions, notification_id, claimed, code, clock, enqueue)
    # Anything else (invalid_blocks, an unknown code) counts against the budget: bounded, then failed.
    return await _retry(sessions, notification_id, claimed, code or f"HTTP {status}", clock, enqueue)


async def _rate_limited(sessions: async_sessionmaker[AsyncSession], notification_id: int, seconds: int,
                        clock: Clock, enqueue: Enqueue | None) -> Outcome:
    async with sessions.begin() as db:
        row = await db.get(Notification, notification_id)
        if row is None:
            return Outcome("skipped")
        at = clock() + timedelta(seconds=seconds)
        await notifications.retry_later(db=db, notification=row, at=at, error=f"ratelimited: retry after {seconds}s",
                                        counts=False)
    await _send(enqueue, notification_id, seconds * 1000 + DELAY_MARGIN_MS)
    return Outcome("rate_limited", error="ratelimited", retry_at=at)


def backoff(retries: int) -> timedelta:
    """30 s, 1 min, 2 min, ... capped at an hour; `retries` counts the failures before this one."""
    return min(BACKOFF_BASE * 2 ** min(retries, 20), BACKOFF_CAP)


async def _retry(sessions: async_sessionmaker[AsyncSession], notification_id: int, claimed: _Claimed, error: str,
                 clock: Clock, enqueue: Enqueue | None) -> Outcome:
    async with sessions.begin() as db:
        row = await db.get(Notification, notification_id)
        if row is None:
            return Outcome("skipped")
        delay = backoff(row.retries)
        at = clock() + delay
        again = await notifications.retry_later(db=db, notification=row, at=at, error=error, counts=True)
        attempts = row.retries
    if not again:
        log.warning("notification %s failed for good after %s attempts: %s", notification_id, attempts, error)
        return Outcome("failed", error=error)
    await _send(enqueue, notification_id, int(delay.total_seconds() * 1000) + DELAY_MARGIN_MS)
    return Outcome("retry", error=error, retry_at=at)


async def _fail(sessions: async_sessionmaker[AsyncSession], notification_id: int, claimed: _Claimed, reason: str,
                clock: Clock, enqueue: Enqueue | None) -> Outcome:
    """Fail the row and, in the same transaction, tell the campaign's owner (once per recipient)."""
    notice_id = None
    async with sessions.begin() as db:
        row = await db.get(Notification, notification_id)
        if row is None:
            return Outcome("skipped")
        await notifications.mark_failed(db=db, notification=row, error=reason)
        if claimed.kind != messages.DELIVERY_FAILED and claimed.campaign_id is not None:
            notice_id = await _tell_owner(db, claimed, reason, clock())
    log.warning("notification %s to %s failed: %s", notification_id, claimed.target, reason)
    if notice_id is not None:
        await _send(enqueue, notice_id, None)
    return Outcome("failed", error=reason, owner_notice_id=notice_id)


async def _tell_owner(db: AsyncSession, claimed: _Claimed, reason: str, now: datetime) -> int | None:
    campaign = await db.get(Campaign, claimed.campaign_id)
    if campaign is None or campaign.owner_id == claimed.recipient_id:
        return None  # nobody to tell, or the owner is the one we cannot reach
    recipient = claimed.recipient_user or claimed.recipient_channel or f"member-{claimed.recipient_id}"
    payload = messages.delivery_failed_payload(
        campaign_id=campaign.id, campaign_name=campaign.name, kind=claimed.kind, recipient_user=claimed.recipient_user,
        recipient_channel=claimed.recipient_channel, reason=reason,
    )
    return await notifications.notify(
        db=db, dedupe_key=f"delivery-failed:{campaign.id}:{recipient}", kind=messages.DELIVERY_FAILED,
        payload=payload, recipient_id=campaign.owner_id, campaign_id=campaign.id, urgency=Urgency.HIGH, now=now,
    )


async def _send(enqueue: Enqueue | None, notification_id: int, delay_ms: int | None) -> None:
    if enqueue is None:
        return
    try:
        await enqueue(notification_id, delay_ms)
    except Exception:  # the row is due in the table; the sweep hands it out again
        log.warning("could not enqueue notification %s; the sweep will pick it up", notification_id, exc_info=True)


def plan_alert_key(campaign_id: int, alerts: list[str], computed_at: datetime | None) -> str:
    digest = hashlib.sha256("\n".join(alerts).encode()).hexdigest()[:16]
    return f"plan-alert:{campaign_id}:{digest}:{computed_at.isoformat() if computed_at else 'never'}"


__all__ = ["DELIVER", "Outcome", "backoff", "deliver", "deliver_notification",
           "delivery_client", "plan_alert_key"]
