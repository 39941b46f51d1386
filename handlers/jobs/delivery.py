"""Deliver outbox notifications in batches: claim, render, pace, post, record.

The row carries the retry state (Dramatiq's own retries are off): a rate limit reschedules the row at
Slack's Retry-After without counting, an outage (5xx, timeout, connection error) counts and backs off,
an error no retry can fix fails the row and tells the campaign's owner once.

Short transactions, none open while Slack is called: (1) claim the batch's rows with a lease in one
conditional UPDATE and read what to send, commit: the lease keeps every other worker off them; (2) take
a pacing slot per channel and post, several at a time; (3) record what went out in one statement. A
crash after a post and before its record sends it again when the lease runs out, so delivery is
at-least-once and never concurrent; the window is one batch's posts (bounded by POST_TIMEOUT).

The database down after the posts went out: the record is tried again, with backoff, for as long as the
lease holds (less RECORD_MARGIN), so an outage shorter than that repeats nothing. Past it another worker
may take the rows, so the record gives up and the rows go out once more after the lease (logged).

Approval requests and copy updates (`services.approval_notices`) are rendered from the stage as it is at
the claim, read in the claim's transaction. A copy update is a `chat.update` of the copy its payload names,
held back while the copy's previous update is still going out. A request that went out as a Slack message
is recorded as a copy of its stage in the transaction that marks it sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from blocks import notifications as messages
from blocks.emails import Email, render_email
from handlers.jobs.pacing import NoPacing, Pacer
from models import Campaign, Notification, NotificationChannel, TeamMember, Urgency
from models.db import is_unreachable
from services import approval_notices, notifications, relevance
from services import mailer as mail
from services.approval_stages import StageView
from services.delivery_retry import notice_key
from services.mailer import Mailer

log = logging.getLogger(__name__)

BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
DEFAULT_RETRY_AFTER = 30  # seconds, when a 429 comes without a usable Retry-After
DELAY_MARGIN_MS = 250  # a re-sent job arrives just after the row is due, never before
POST_TIMEOUT = 15  # seconds; well inside the claim's lease
MAX_PACE_WAIT = 3.0  # seconds a post may wait for its channel's slot in place; longer: back to the outbox
CONCURRENT_POSTS = 8  # posts of one batch in flight at once
RECORD_ATTEMPTS = 3  # a statement error recording posts that went out is worth a couple of quick retries
RECORD_FIRST_DELAY = 0.2  # seconds; doubling up to RECORD_MAX_DELAY while the database is unreachable
RECORD_MAX_DELAY = 2.0
RECORD_MARGIN = timedelta(seconds=10)  # (or a quarter of a short lease) stop retrying this long before it ends

# Errors no retry will fix: the row fails and the campaign's owner hears about it once.
PERMANENT_ERRORS = frozenset({
    "channel_not_found", "user_not_found", "not_in_channel", "account_inactive", "is_archived", "invalid_auth",
    "message_not_found", "cant_update_message", "edit_window_closed",  # a copy update's message is gone or frozen
})
# Kinds whose failure is not news for the owner: a copy that could not be edited was delivered before.
NO_OWNER_NOTICE = frozenset({messages.DELIVERY_FAILED, approval_notices.COPY_UPDATE})
# Slack's own "try again later" answers (HTTP 200, ok=false).
TRANSIENT_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})

Clock = Callable[[], datetime]
Enqueue = Callable[[int, int | None], Awaitable[None]]  # (notification id, delay in ms)


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt did: sent | skipped | withdrawn | paced | rate_limited | retry | failed,
    or unreachable (the database was down at the claim: the row waits, untouched, for the next sweep)."""

    status: str
    error: str | None = None
    retry_at: datetime | None = None
    owner_notice_id: int | None = None  # the delivery-failed notification written for the owner


@dataclass(frozen=True)
class _Claimed:
    id: int
    kind: str
    target: str
    content: dict[str, Any]
    campaign_id: int | None
    recipient_id: int | None
    recipient_channel: str | None
    recipient_user: str | None
    email: Email | None = None  # set when this one goes out by email (the target is then the address)
    update_ts: str | None = None  # set for a chat.update of the message at (target, update_ts)
    payload: dict[str, Any] | None = None
    stage: StageView | None = None  # the approval stage it was rendered from


def delivery_client(client: AsyncWebClient) -> AsyncWebClient:
    """A client like `client` but without retry handlers, so every fault comes back to the row.

    The shared clients retry a 429 by sleeping out Retry-After inside the call (holding the lease and a
    worker thread, possibly past the lease, which lets a second worker send the same message) and retry
    connection errors at once (re-posting a message that may already have been delivered). Here the row
    records the fault and the job is sent again with a delay instead.
    """
    return AsyncWebClient(token=client.token, base_url=client.base_url, session=client.session,
                          timeout=POST_TIMEOUT, retry_handlers=[])


@dataclass
class Delivery:
    """What a delivery attempt needs. `enqueue` sends follow-ups (a delayed retry, the owner's notice);
    None leaves them to the sweep. No `mailer` (SMTP unset): email-preferring members get Slack."""

    sessions: async_sessionmaker[AsyncSession]
    slack: AsyncWebClient | None  # None (no token): only in-app and email rows are taken
    clock: Clock
    enqueue: Enqueue | None = None
    mailer: Mailer | None = None
    pacer: Pacer | None = None
    lease: timedelta = notifications.LEASE
    max_pace_wait: float = MAX_PACE_WAIT

    async def run(self, notification_ids: Sequence[int]) -> dict[int, Outcome]:
        """One attempt at each row; rows that are not due, already done or held elsewhere are skipped."""
        outcomes = {nid: Outcome("skipped") for nid in notification_ids}
        lease_ends = time.monotonic() + self.lease.total_seconds()  # taken before the claim: never late
        try:
            claimed = await self._claim(notification_ids, outcomes)
        except Exception as error:
            if not is_unreachable(error):
                raise
            log.warning("database unreachable; %d notifications wait for the next sweep: %r", len(outcomes), error)
            return {nid: Outcome("unreachable") for nid in outcomes}
        waits = await self._pace(claimed, outcomes)
        gate = asyncio.Semaphore(CONCURRENT_POSTS)

        async def post(item: _Claimed, wait: float) -> tuple[_Claimed, Outcome | tuple[str | None, str | None]]:
            if wait > 0:
                await asyncio.sleep(wait)  # before taking a place in the gate: waiting is not sending
            async with gate:
                try:
                    return item, await self._post(item)
                except Exception as error:  # a bug in one send must not cost the batch its records
                    log.exception("notification %s: unexpected error while sending", item.id)
                    return item, await self._retry(item, f"unexpected: {error!r}")

        gathered = await asyncio.gather(*(post(item, waits[item.id]) for item in claimed if item.id in waits),
                                        return_exceptions=True)
        results = [result for result in gathered if not isinstance(result, BaseException)]
        for failure in gathered:
            if isinstance(failure, BaseException):  # even recording the retry failed: the lease will free it
                log.error("a notification of the batch is left to its lease", exc_info=failure)
        sent = [(item.id, *result) for item, result in results if isinstance(result, tuple)]
        copies = [_copy_of(item, *result) for item, result in results if isinstance(result, tuple)]
        updates = await self._record_sent(sent, [copy for copy in copies if copy is not None],
                                          give_up_at=lease_ends - min(RECORD_MARGIN, self.lease / 4).total_seconds())
        for update_id in updates:  # copies whose stage moved while their request was on its way
            await self._send(update_id, None)
        outcomes.update({nid: Outcome("sent") for nid, _, _ in sent})
        outcomes.update({item.id: result for item, result in results if isinstance(result, Outcome)})
        return outcomes

    async def _claim(self, ids: Sequence[int], outcomes: dict[int, Outcome]) -> list[_Claimed]:
        """Claim, withdraw what became moot, render; in-app rows are done here (the inbox is the table)."""
        claimed = []
        later: dict[int, datetime] = {}
        async with self.sessions.begin() as db:
            now = self.clock()
            rows = await notifications.claim_many(db=db, notification_ids=ids, now=now, lease=self.lease,
                                                  channels=self._channels())
            members = await _members(db, rows)
            moot = await relevance.moot(db=db, rows=rows, now=now)
            stages = await approval_notices.stages_at_delivery(db=db, rows=rows)
            later = await approval_notices.held_back(db=db, rows=rows, now=now)
            for row in rows:
                if row.kind in approval_notices.RENDERED_FROM_STAGE and row.id not in stages:
                    moot.setdefault(row.id, "stage gone")
                if row.id in moot:  # the task is done, the approval decided, ...: nothing to say any more
                    await notifications.withdraw(db=db, notification=row, reason=moot[row.id])
                    outcomes[row.id] = Outcome("withdrawn", error=moot[row.id])
                    continue
                if row.id in later:  # the copy's previous update is still on its way: after it
                    await notifications.retry_later(db=db, notification=row, at=later[row.id], counts=False,
                                                    error="held back: the copy's previous update is going out")
                    outcomes[row.id] = Outcome("paced", retry_at=later[row.id])
                    continue
                if row.channel is NotificationChannel.IN_APP and row.recipient_id is not None:
                    await notifications.mark_sent(db=db, notification=row, now=now, slack_channel=None, slack_ts=None)
                    outcomes[row.id] = Outcome("sent")
                    continue
                try:
                    claimed.append(_prepare(row, members, by_email=self.mailer is not None, stage=stages.get(row.id)))
                except Exception as error:  # a payload no renderer understands: retrying won't help
                    log.exception("notification %s cannot be rendered", row.id)
                    await notifications.mark_failed(db=db, notification=row, error=f"render_failed: {error!r}")
                    outcomes[row.id] = Outcome("failed", error="render_failed")
        for nid, at in later.items():
            if outcomes[nid].status == "paced":
                await self._send(nid, max(0, int((at - now).total_seconds() * 1000)) + DELAY_MARGIN_MS)
        return claimed

    def _channels(self) -> frozenset[NotificationChannel] | None:
        if self.slack is not None:
            return None  # all
        return frozenset({NotificationChannel.IN_APP} | ({NotificationChannel.EMAIL} if self.mailer else set()))

    async def _pace(self, claimed: list[_Claimed], outcomes: dict[int, Outcome]) -> dict[int, float]:
        """The wait before each Slack post; rows whose channel is busy for long go back to the outbox."""
        posts = [item for item in claimed if item.email is None]
        waits = dict.fromkeys((item.id for item in claimed), 0.0)
        slots = await (self.pacer or NoPacing()).reserve([item.target for item in posts], max_wait=self.max_pace_wait)
        later = {item.id: wait for item, wait in zip(posts, slots, strict=True) if wait > self.max_pace_wait}
        waits.update({item.id: wait for item, wait in zip(posts, slots, strict=True)})
        if later:
            async with self.sessions.begin() as db:
                now = self.clock()
                for nid, wait in later.items():
                    row = await db.get(Notification, nid)
                    if row is not None:
                        at = now + timedelta(seconds=wait)
                        await notifications.retry_later(db=db, notification=row, at=at, counts=False,
                                                        error=f"paced: channel busy for {wait:.1f}s")
                        outcomes[nid] = Outcome("paced", retry_at=at)
            for nid, wait in later.items():
                waits.pop(nid)
                await self._send(nid, int(wait * 1000) + DELAY_MARGIN_MS)
        return waits

    async def _post(self, item: _Claimed) -> Outcome | tuple[str | None, str | None]:
        """Send one; (channel, ts) when it went out, else what became of the row."""
        if item.email is not None and self.mailer is not None:
            try:
                await self.mailer.send(item.email.message(to=item.target, sender=self.mailer.sender))
            except mail.SEND_ERRORS as error:
                if mail.is_permanent(error):  # 550 mailbox unavailable and the like: no retry will help
                    return await self._fail(item, mail.describe(error))
                return await self._retry(item, mail.describe(error))  # 4xx, connection errors
            return None, None  # no Slack message to point at
        if self.slack is None:  # an email row for a member without an address: Slack was the fallback
            return await self._retry(item, "no Slack token configured")
        try:
            if item.update_ts is not None:
                response = await self.slack.chat_update(channel=item.target, ts=item.update_ts, **item.content)
            else:
                response = await self.slack.chat_postMessage(channel=item.target, **item.content)
        except SlackApiError as error:
            return await self._after_slack_error(item, error)
        except (TimeoutError, aiohttp.ClientError, SlackClientError) as error:
            return await self._retry(item, f"{type(error).__name__}: {error}")
        return str(response.get("channel") or item.target), response.get("ts")

    async def _record_sent(self, sent: list[tuple[int, str | None, str | None]],
                           copies: list[approval_notices.SentCopy], *, give_up_at: float) -> list[int]:
        """Record what went out (and the approval copies among it); an unreachable database is waited for
        until `give_up_at` (monotonic). Returns the copy updates the record wrote, to hand out."""
        delay, attempt = RECORD_FIRST_DELAY, 0
        while True:
            try:
                async with self.sessions.begin() as db:
                    now = self.clock()
                    updates = await approval_notices.record_copies(db=db, sent=copies, now=now)
                    await notifications.mark_sent_many(db=db, sent=sent, now=now)
                return updates
            except Exception as error:
                attempt += 1
                unreachable = is_unreachable(error)
                again = unreachable or (isinstance(error, DBAPIError) and attempt < RECORD_ATTEMPTS)
                if not again or time.monotonic() + delay > give_up_at:
                    # Posted but not recorded: when the lease runs out the sweep will send them again.
                    log.exception("notifications %s were posted but could not be recorded", [s[0] for s in sent])
                    raise
                if attempt == 1 and unreachable:
                    log.warning("database unreachable while recording %d sent notifications; retrying: %r",
                                len(sent), error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECORD_MAX_DELAY)

    async def _after_slack_error(self, item: _Claimed, error: SlackApiError) -> Outcome:
        status = error.response.status_code
        code = str(error.response.get("error") or "") if isinstance(error.response.data, dict) else ""
        if status == 429 or code == "ratelimited":
            raw = _header(error.response.headers, "Retry-After")
            seconds = int(raw) if raw is not None and raw.strip().isdigit() else DEFAULT_RETRY_AFTER
            return await self._rate_limited(item, seconds)
        if status >= 500 or code in TRANSIENT_ERRORS:
            return await self._retry(item, f"HTTP {status} {code}".strip())
        if code in PERMANENT_ERRORS:
            return await self._fail(item, code)
        # Anything else (invalid_blocks, an unknown code) counts against the budget: bounded, then failed.
        return await self._retry(item, code or f"HTTP {status}")

    async def _rate_limited(self, item: _Claimed, seconds: int) -> Outcome:
        async with self.sessions.begin() as db:
            row = await db.get(Notification, item.id)
            if row is None:
                return Outcome("skipped")
            at = self.clock() + timedelta(seconds=seconds)
            await notifications.retry_later(db=db, notification=row, at=at, counts=False,
                                            error=f"ratelimited: retry after {seconds}s")
        await self._send(item.id, seconds * 1000 + DELAY_MARGIN_MS)
        return Outcome("rate_limited", error="ratelimited", retry_at=at)

    async def _retry(self, item: _Claimed, error: str) -> Outcome:
        async with self.sessions.begin() as db:
            row = await db.get(Notification, item.id)
            if row is None:
                return Outcome("skipped")
            delay = backoff(row.retries)
            at = self.clock() + delay
            again = await notifications.retry_later(db=db, notification=row, at=at, error=error, counts=True)
            attempts = row.retries
        if not again:
            log.warning("notification %s failed for good after %s attempts: %s", item.id, attempts, error)
            return Outcome("failed", error=error)
        await self._send(item.id, int(delay.total_seconds() * 1000) + DELAY_MARGIN_MS)
        return Outcome("retry", error=error, retry_at=at)

    async def _fail(self, item: _Claimed, reason: str) -> Outcome:
        """Fail the row and, in the same transaction, tell the campaign's owner (once per recipient)."""
        notice_id = None
        async with self.sessions.begin() as db:
            row = await db.get(Notification, item.id)
            if row is None:
                return Outcome("skipped")
            await notifications.mark_failed(db=db, notification=row, error=reason)
            if item.kind not in NO_OWNER_NOTICE and item.campaign_id is not None:
                notice_id = await _tell_owner(db, item, reason, self.clock())
        log.warning("notification %s to %s failed: %s", item.id, item.target, reason)
        if notice_id is not None:
            await self._send(notice_id, None)
        return Outcome("failed", error=reason, owner_notice_id=notice_id)

    async def _send(self, notification_id: int, delay_ms: int | None) -> None:
        if self.enqueue is None:
            return
        try:
            await self.enqueue(notification_id, delay_ms)
        except Exception:  # the row is due in the table; the sweep hands it out again
            log.warning("could not enqueue notification %s; the sweep will pick it up", notification_id, exc_info=True)


async def _members(db: AsyncSession, rows: Sequence[Notification]) -> dict[int, TeamMember]:
    ids = {row.recipient_id for row in rows if row.recipient_id is not None and row.recipient_channel is None}
    if not ids:
        return {}
    return {member.id: member for member in await db.scalars(select(TeamMember).where(TeamMember.id.in_(ids)))}


def _prepare(row: Notification, members: Mapping[int, TeamMember], *, by_email: bool,
             stage: StageView | None = None) -> _Claimed:
    user = None
    email: Email | None = None
    update_ts = None
    if row.kind == approval_notices.COPY_UPDATE:
        update = approval_notices.CopyUpdate.from_payload(row.payload)
        target, update_ts = update.channel, update.ts
    elif row.recipient_channel is not None:
        target = row.recipient_channel
    else:
        member = members.get(row.recipient_id or 0)
        if member is None:
            raise LookupError(f"member {row.recipient_id} is gone")
        target = user = member.slack_user_id
        if by_email and row.channel is NotificationChannel.EMAIL and member.email and "@" in member.email:
            target, email = member.email, render_email(row.kind, row.payload, tz=member.timezone, stage=stage)
    content = {} if email is not None else messages.render(row.kind, row.payload, stage=stage)
    return _Claimed(id=row.id, kind=row.kind, target=target, content=content, campaign_id=row.campaign_id,
                    recipient_id=row.recipient_id, recipient_channel=row.recipient_channel, recipient_user=user,
                    email=email, update_ts=update_ts, payload=row.payload, stage=stage)


def _copy_of(item: _Claimed, channel: str | None, ts: str | None) -> approval_notices.SentCopy | None:
    """A request posted to Slack is a copy of its stage, kept current from now on."""
    if item.kind != approval_notices.REQUEST or item.email is not None or item.stage is None:
        return None
    if not channel or not ts or item.payload is None:
        return None
    return approval_notices.SentCopy(notification_id=item.id, payload=item.payload, channel=channel, ts=ts,
                                     shown=item.stage)


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


def backoff(retries: int) -> timedelta:
    """30 s, 1 min, 2 min, ... capped at an hour; `retries` counts the failures before this one."""
    return min(BACKOFF_BASE * 2 ** min(retries, 20), BACKOFF_CAP)


async def _tell_owner(db: AsyncSession, item: _Claimed, reason: str, now: datetime) -> int | None:
    campaign = await db.get(Campaign, item.campaign_id)
    if campaign is None or campaign.owner_id == item.recipient_id:
        return None  # nobody to tell, or the owner is the one we cannot reach
    payload = messages.delivery_failed_payload(
        campaign_id=campaign.id, campaign_name=campaign.name, kind=item.kind, recipient_user=item.recipient_user,
        recipient_channel=item.recipient_channel, recipient_id=item.recipient_id, reason=reason,
    )
    return await notifications.notify(
        db=db, dedupe_key=notice_key(campaign.id, slack_user=item.recipient_user, channel=item.recipient_channel,
                                     member_id=item.recipient_id), kind=messages.DELIVERY_FAILED,
        payload=payload, recipient_id=campaign.owner_id, campaign_id=campaign.id, urgency=Urgency.HIGH, now=now,
    )
