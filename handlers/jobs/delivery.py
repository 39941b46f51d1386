"""Deliver outbox notifications in batches: claim, render, pace, post, record. The I/O half.

What to send, which way, and what a failure means are `services.delivery`'s (the policy); this module
posts to Slack, sends mail, paces, runs posts side by side and keeps the transactions short. The row
carries the retry state (Dramatiq's own retries are off): a follow-up is the row's job sent again with a
delay (`enqueue`), or the owner's notice handed out.

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

The SURFACES, a Home refresh (`services.home_views`) and a link's card (`services.unfurls`), are rendered
from the database after their claim, in a reading transaction of their own (a Home is a dozen queries;
the claim's transaction holds the write lock on SQLite), and go out by `views.publish` and `chat.unfurl`.
They are not paced: Slack's per-channel pace is about posts.

A webhook's row (`services.webhooks`) is an HTTP POST of its JSON body to the webhook's URL, signed at the
attempt, through `http` (the job's session; a session of its own when none is given), with a timeout and
without following redirects. Not paced either; its answer is classified by `services.delivery.http_fault`.

An agent hand-off's row (`services.agent_handoff`) is one MCP tool call to the marketing agent configured
now (`agent`), within POST_TIMEOUT (`handlers.jobs.agent`). With no agent configured any more, it fails.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from blocks import notifications as messages
from blocks.emails import Email, render_email
from blocks.home import home_view
from blocks.unfurl import unfurls
from handlers.jobs import agent, mail
from handlers.jobs.agent import AgentTarget
from handlers.jobs.mail import Mailer
from handlers.jobs.pacing import NoPacing, Pacer
from handlers.metrics import DELIVERIES, counting, kind_label
from models import TeamMember
from models.db import is_unreachable
from services import delivery as policy
from services import home, notifications
from services.delivery import Claimed, Delivered, Fault, Outcome
from services.kinds import HOOKS, SURFACES, Kind
from services.unfurls import UnfurlRequest, cards
from services.webhooks import WebhookPost

log = logging.getLogger(__name__)

DELAY_MARGIN_MS = 250  # a re-sent job arrives just after the row is due, never before
POST_TIMEOUT = 15  # seconds; well inside the claim's lease
MAX_PACE_WAIT = 3.0  # seconds a post may wait for its channel's slot in place; longer: back to the outbox
CONCURRENT_POSTS = 8  # posts of one batch in flight at once
RECORD_ATTEMPTS = 3  # a statement error recording posts that went out is worth a couple of quick retries
RECORD_FIRST_DELAY = 0.2  # seconds; doubling up to RECORD_MAX_DELAY while the database is unreachable
RECORD_MAX_DELAY = 2.0
RECORD_MARGIN = timedelta(seconds=10)  # (or a quarter of a short lease) stop retrying this long before it ends

Clock = Callable[[], datetime]
Enqueue = Callable[[int, int | None], Awaitable[None]]  # (notification id, delay in ms)


def delivery_client(client: AsyncWebClient) -> AsyncWebClient:
    """A client like `client` but without retry handlers, so every fault comes back to the row.

    The shared clients retry a 429 by sleeping out Retry-After inside the call (holding the lease and a
    worker thread, possibly past the lease, which lets a second worker send the same message) and retry
    connection errors at once (re-posting a message that may already have been delivered). Here the row
    records the fault and the job is sent again with a delay instead.
    """
    return AsyncWebClient(token=client.token, base_url=client.base_url, session=client.session,
                          timeout=POST_TIMEOUT, retry_handlers=counting([]))  # counts, never retries


def render(item: Claimed) -> dict[str, Any] | Email:
    """What goes out for a claimed row: an email, or a `chat.postMessage` / `chat.update` payload."""
    if item.by_email:
        return render_email(item.kind, item.payload, tz=item.timezone, stage=item.stage)
    return messages.render(item.kind, item.payload, stage=item.stage)


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
    reading_sessions: async_sessionmaker[AsyncSession] | None = None  # for rendering Homes; else `sessions`
    http: aiohttp.ClientSession | None = None  # for webhooks' posts; None: a session per post
    agent: AgentTarget | None = None  # the marketing agent launches are handed to; None: not configured

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
        claimed = await self._render_surfaces(claimed)
        waits = await self._pace(claimed, outcomes)
        gate = asyncio.Semaphore(CONCURRENT_POSTS)

        async def post(item: Claimed, wait: float) -> Outcome | Delivered:
            if wait > 0:
                await asyncio.sleep(wait)  # before taking a place in the gate: waiting is not sending
            async with gate:
                try:
                    result = await self._post(item)
                except Exception as error:  # a bug in one send must not cost the batch its records
                    log.exception("notification %s: unexpected error while sending", item.id)
                    result = policy.network_fault(f"unexpected: {error!r}")
                return await self._after_fault(item, result) if isinstance(result, Fault) else result

        posted = [item for item in claimed if item.id in waits]
        gathered = await asyncio.gather(*(post(item, waits[item.id]) for item in posted), return_exceptions=True)
        for failure in gathered:
            if isinstance(failure, BaseException):  # even recording the retry failed: the lease will free it
                log.error("a notification of the batch is left to its lease", exc_info=failure)
        delivered = [result for result in gathered if isinstance(result, Delivered)]
        updates = await self._record_sent(
            delivered, give_up_at=lease_ends - min(RECORD_MARGIN, self.lease / 4).total_seconds())
        for update_id in updates:  # copies whose stage moved while their request was on its way
            await self._send(update_id, None)
        outcomes.update({done.item.id: Outcome("sent") for done in delivered})
        outcomes.update({item.id: result for item, result in zip(posted, gathered, strict=True)
                         if isinstance(result, Outcome)})
        _count(claimed, outcomes)
        return outcomes

    async def _claim(self, ids: Sequence[int], outcomes: dict[int, Outcome]) -> list[Claimed]:
        """Claim and prepare the batch (`services.delivery.prepare`); hand out again what it held back."""
        async with self.sessions.begin() as db:
            now = self.clock()
            batch = await policy.prepare(db=db, notification_ids=ids, now=now, lease=self.lease,
                                         slack=self.slack is not None, email=self.mailer is not None, render=render)
        outcomes.update(batch.settled)
        for nid, at in batch.later.items():
            await self._send(nid, _delay_ms(at - now))
        return batch.claimed

    async def _render_surfaces(self, claimed: list[Claimed]) -> list[Claimed]:
        """Render the claimed surfaces (Homes, link cards) from the database as it is now. One that cannot
        be read (the database went away) is left out: its claim runs out and the sweep hands it out again."""
        surfaces = [item for item in claimed if item.kind in SURFACES]
        if not surfaces:
            return claimed
        rendered: dict[int, Claimed] = {}
        try:
            async with (self.reading_sessions or self.sessions).begin() as db:
                now = self.clock()
                for item in surfaces:
                    if item.kind == Kind.LINK_UNFURL:
                        found = await cards(db=db, unfurl=UnfurlRequest.from_payload(item.payload), now=now)
                        rendered[item.id] = replace(item, content=unfurls(found))
                        continue
                    member = await db.get(TeamMember, item.recipient_id)
                    if member is not None:
                        data = await home.gather(db=db, member=member, now=now)
                        rendered[item.id] = replace(item, content=home_view(data),
                                                    unread_shown=tuple(data.unread_shown_ids))
        except Exception:
            log.exception("could not read %d surfaces to publish; their claims will run out", len(surfaces))
        return [rendered.get(item.id, item) if item.kind in SURFACES else item for item in claimed
                if item.kind not in SURFACES or item.id in rendered]

    async def _pace(self, claimed: list[Claimed], outcomes: dict[int, Outcome]) -> dict[int, float]:
        """The wait before each Slack post; rows whose channel is busy for long go back to the outbox.
        A Home is not a post: it waits for nothing."""
        posts = [item for item in claimed if not item.by_email and item.kind not in SURFACES | HOOKS]
        waits = dict.fromkeys((item.id for item in claimed), 0.0)
        slots = await (self.pacer or NoPacing()).reserve([item.target for item in posts], max_wait=self.max_pace_wait)
        later = {item.id: wait for item, wait in zip(posts, slots, strict=True) if wait > self.max_pace_wait}
        waits.update({item.id: wait for item, wait in zip(posts, slots, strict=True)})
        if later:
            async with self.sessions.begin() as db:
                put_back = await policy.put_back_paced(db=db, waits=later, now=self.clock())
            outcomes.update(put_back)
            for nid, wait in later.items():
                waits.pop(nid)
                if nid in put_back:
                    await self._send(nid, int(wait * 1000) + DELAY_MARGIN_MS)
        return waits

    async def _post(self, item: Claimed) -> Delivered | Fault:
        """Send one: where it went, or the fault as plain facts for the policy."""
        if item.kind == Kind.AGENT_HANDOFF:
            return await self._hand_off(item)
        if item.kind in HOOKS:
            return await self._post_webhook(item)
        if item.by_email and self.mailer is not None:
            assert isinstance(item.content, Email)
            try:
                await self.mailer.send(item.content.message(to=item.target, sender=self.mailer.sender))
            except mail.SEND_ERRORS as error:
                return mail.fault_of(error)
            return Delivered(item)  # no Slack message to point at
        if self.slack is None:  # an email row for a member without an address: Slack was the fallback
            return policy.network_fault("no Slack token configured")
        try:
            if item.kind == Kind.HOME_VIEW:
                await self.slack.views_publish(user_id=item.target, view=item.content)
                return Delivered(item)
            if item.kind == Kind.LINK_UNFURL:
                if item.content:  # links revoked or gone meanwhile unfold into nothing
                    await _unfurl(self.slack, UnfurlRequest.from_payload(item.payload), item.content)
                return Delivered(item)
            if item.update_ts is not None:
                response = await self.slack.chat_update(channel=item.target, ts=item.update_ts, **item.content)
            else:
                response = await self.slack.chat_postMessage(channel=item.target, **item.content)
        except SlackApiError as error:
            return _slack_fault(error)
        except (TimeoutError, aiohttp.ClientError, SlackClientError) as error:
            return policy.network_fault(f"{type(error).__name__}: {error}")
        return Delivered(item, str(response.get("channel") or item.target), response.get("ts"))

    async def _post_webhook(self, item: Claimed) -> Delivered | Fault:
        """POST a webhook's body, signed now; its answer as plain facts (HTTP status, Retry-After)."""
        post = item.content
        assert isinstance(post, WebhookPost)
        if self.http is not None:
            return await _post_hook(self.http, item, post, timestamp=int(self.clock().timestamp()))
        async with aiohttp.ClientSession() as http:
            return await _post_hook(http, item, post, timestamp=int(self.clock().timestamp()))

    async def _hand_off(self, item: Claimed) -> Delivered | Fault:
        """Call the agent's `cm_campaign_launched` with the row's arguments (`item.content`)."""
        if self.agent is None:  # MARKETING_AGENT_URL was unset after the launch wrote the row
            return policy.refused("no marketing agent configured")
        fault = await agent.call_launched(self.agent, item.content, timeout=POST_TIMEOUT)
        return Delivered(item) if fault is None else fault

    async def _after_fault(self, item: Claimed, fault: Fault) -> Outcome:
        """The policy's answer to a failed attempt, in its own transaction; then its follow-ups."""
        async with self.sessions.begin() as db:
            now = self.clock()
            outcome = await policy.after_fault(db=db, item=item, fault=fault, now=now)
        if outcome.status in ("retry", "rate_limited") and outcome.retry_at is not None:
            await self._send(item.id, _delay_ms(outcome.retry_at - now))
        if outcome.owner_notice_id is not None:
            await self._send(outcome.owner_notice_id, None)
        return outcome

    async def _record_sent(self, delivered: list[Delivered], *, give_up_at: float) -> list[int]:
        """Record what went out (`services.delivery.record_sent`); an unreachable database is waited for
        until `give_up_at` (monotonic). Returns the copy updates the record wrote, to hand out."""
        delay, attempt = RECORD_FIRST_DELAY, 0
        while True:
            try:
                async with self.sessions.begin() as db:
                    return await policy.record_sent(db=db, delivered=delivered, now=self.clock())
            except Exception as error:
                attempt += 1
                unreachable = is_unreachable(error)
                again = unreachable or (isinstance(error, DBAPIError) and attempt < RECORD_ATTEMPTS)
                if not again or time.monotonic() + delay > give_up_at:
                    # Posted but not recorded: when the lease runs out the sweep will send them again.
                    log.exception("notifications %s were posted but could not be recorded",
                                  [done.item.id for done in delivered])
                    raise
                if attempt == 1 and unreachable:
                    log.warning("database unreachable while recording %d sent notifications; retrying: %r",
                                len(delivered), error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECORD_MAX_DELAY)

    async def _send(self, notification_id: int, delay_ms: int | None) -> None:
        if self.enqueue is None:
            return
        try:
            await self.enqueue(notification_id, delay_ms)
        except Exception:  # the row is due in the table; the sweep hands it out again
            log.warning("could not enqueue notification %s; the sweep will pick it up", notification_id, exc_info=True)


async def _post_hook(http: aiohttp.ClientSession, item: Claimed, post: WebhookPost, *, timestamp: int) -> Delivered | Fault:
    try:
        async with http.post(post.url, data=post.body, headers=post.headers(timestamp), allow_redirects=False,
                             timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT)) as response:
            status = response.status
            raw = response.headers.get("Retry-After")
    except (TimeoutError, aiohttp.ClientError, ValueError) as error:  # ValueError: a URL aiohttp will not take
        return policy.http_fault(status=None, reason=f"{type(error).__name__}: {error}"[:300])
    if 200 <= status < 300:
        return Delivered(item, status=status)
    seconds = int(raw) if raw is not None and raw.strip().isdigit() else None
    return policy.http_fault(status=status, reason=f"HTTP {status}", retry_after=seconds)


async def _unfurl(slack: AsyncWebClient, request: UnfurlRequest, unfurls: dict[str, Any]) -> None:
    """A sent message's links by (channel, ts); those of a message still being written by Slack's id."""
    if request.unfurl_id and request.source:
        await slack.chat_unfurl(unfurl_id=request.unfurl_id, source=request.source, unfurls=unfurls)
    else:
        await slack.chat_unfurl(channel=request.channel, ts=request.ts or "", unfurls=unfurls)


def _slack_fault(error: SlackApiError) -> Fault:
    """Slack's refusal as plain facts: the HTTP status, its error code, Retry-After in seconds."""
    response = error.response
    code = str(response.get("error") or "") if isinstance(response.data, dict) else ""
    raw = _header(response.headers, "Retry-After")
    seconds = int(raw) if raw is not None and raw.strip().isdigit() else None
    return policy.slack_fault(status=response.status_code, error=code, retry_after=seconds)


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _count(claimed: Sequence[Claimed], outcomes: Mapping[int, Outcome]) -> None:
    """Each claimed row's attempt, once its outcome is recorded: sent, retry, rate_limited, paced, failed."""
    for item in claimed:
        outcome = outcomes.get(item.id)
        DELIVERIES.labels(kind_label(item.kind), channel_of(item), outcome.status if outcome else "unknown").inc()


def channel_of(item: Claimed) -> str:
    if item.kind == Kind.WEBHOOK:
        return "webhook"
    if item.kind == Kind.AGENT_HANDOFF:
        return "agent"
    return "email" if item.by_email else "slack"


def _delay_ms(wait: timedelta) -> int:
    """A follow-up's delay: until the row is due again, plus a margin so it never arrives early."""
    return max(0, int(wait.total_seconds() * 1000)) + DELAY_MARGIN_MS


__all__ = ["Clock", "Delivery", "Enqueue", "Outcome", "delivery_client", "render"]
