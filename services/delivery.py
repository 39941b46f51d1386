"""The delivery policy: what a claimed batch needs, what an attempt's outcome means, what follows a failure.

The delivery job (`handlers.jobs.delivery`) does the I/O: Slack calls, mail, pacing, concurrency. It opens
a short transaction for each step here and calls nothing while one is open; nothing here calls out.

- `prepare` claims a batch and settles what needs no send: rows that became moot are withdrawn, in-app rows
  are done (the inbox is the table), a copy update waits for the one before it. For the rest it decides
  the way (email when the member chose it, has an address and mail is configured; else Slack) and the
  target, and has the caller's renderer render each one, so a payload no renderer understands fails here.
- Webhook rows (`Kind.WEBHOOK`, `services.webhooks`) go to their webhook's URL as it is at the claim;
  one whose webhook was removed is withdrawn. Each attempt's HTTP status is noted on the webhook.
- Agent hand-offs (`Kind.AGENT_HANDOFF`, `services.agent_handoff`) carry their tool arguments as content.
  Settled, they tell the campaign's owner once: it went through (`record_sent`), or it failed for good
  (`after_fault`: refused, or out of retries).
- `slack_fault` / `mail_fault` / `network_fault` / `http_fault` / `rpc_fault` / `refused` classify a failed
  attempt from plain facts (an HTTP status, Slack's error code, Retry-After, SMTP reply codes, a JSON-RPC
  error code): a rate limit waits without counting, an outage or an unknown answer counts and backs off,
  an error no retry will fix fails the row.
- `after_fault` does what follows: the row is rescheduled (backoff, within MAX_ATTEMPTS) or failed, and
  a failure for good of a campaign's message tells its owner once (`DeliveryFailed`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import Campaign, Notification, NotificationChannel, TeamMember, Urgency
from services import agent_handoff, approval_notices, home_views, notifications, relevance, webhooks
from services.approval_stages import StageView
from services.delivery_retry import notice_key
from services.kinds import HOOKS, SURFACES, Kind

log = logging.getLogger(__name__)

BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
MAX_ATTEMPTS = 8  # failures that count (outages, unknown answers); rate limits and pacing do not
DEFAULT_RETRY_AFTER = 30  # seconds, when a 429 comes without a usable Retry-After
JSONRPC_INTERNAL_ERROR = -32603  # an MCP server's "something went wrong on my side"

# Slack errors no retry will fix: the row fails and the campaign's owner hears about it once.
PERMANENT_ERRORS = frozenset({
    "channel_not_found", "user_not_found", "not_in_channel", "account_inactive", "is_archived", "invalid_auth",
    "message_not_found", "cant_update_message", "edit_window_closed",  # a copy update's message is gone or frozen
})
# Slack's own "try again later" answers (HTTP 200, ok=false).
TRANSIENT_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout"})
# Kinds whose failure is not news for the owner: a notice about a notice, and a copy that could not be
# edited (it was delivered before).
# A webhook's receiver is a machine: its last status is on the webhook (`/api webhook list`).
NO_OWNER_NOTICE = frozenset({Kind.DELIVERY_FAILED, Kind.APPROVAL_COPY_UPDATE, *SURFACES, *HOOKS})


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt did: sent | skipped | withdrawn | paced | rate_limited | retry | failed,
    or unreachable (the database was down at the claim: the row waits, untouched, for the next sweep)."""

    status: str
    error: str | None = None
    retry_at: datetime | None = None
    owner_notice_id: int | None = None  # the delivery-failed notification written for the owner


@dataclass(frozen=True)
class Claimed:
    """A claimed row that goes out now: where, which way, and what the renderer made of it (`content`)."""

    id: int
    kind: str
    target: str  # a Slack channel or user id; the address when `by_email`
    payload: dict[str, Any]
    campaign_id: int | None
    recipient_id: int | None
    recipient_channel: str | None
    recipient_user: str | None  # the member's Slack id, to name them in the owner's notice
    by_email: bool = False
    timezone: str | None = None  # the member's, for the dates an email prints
    update_ts: str | None = None  # a chat.update of the message at (target, update_ts)
    stage: StageView | None = None  # an approval stage as it is at the claim, for the kinds rendered from it
    content: Any = None
    unread_shown: tuple[int, ...] = ()  # a Home: the unread notifications it shows


@dataclass
class Batch:
    """A claim's result: the rows to send now, what became of the others, and when to look at rows held
    back (a copy update waiting for the one before it)."""

    claimed: list[Claimed]
    settled: dict[int, Outcome]
    later: dict[int, datetime]


def claimable_channels(*, slack: bool, email: bool) -> frozenset[NotificationChannel] | None:
    """The rows a delivery can take: all with Slack (email falls back to it), else in-app and, with mail
    configured, email. None means every channel."""
    if slack:
        return None
    return frozenset({NotificationChannel.IN_APP} | ({NotificationChannel.EMAIL} if email else set()))


async def prepare(*, db: AsyncSession, notification_ids: Sequence[int], now: datetime, lease: timedelta,
                  slack: bool, email: bool, render: Callable[[Claimed], Any]) -> Batch:
    """Claim the due, free rows among `notification_ids` and get them ready, in the caller's transaction.

    `slack` / `email`: whether this delivery can post to Slack and send mail. `render` turns a `Claimed`
    into what the sender sends (`Claimed.content`); a row it raises on fails (`render_failed`). The
    SURFACES are left unrendered: the sender renders them from the database after this claim commits.
    """
    rows = await notifications.claim_many(db=db, notification_ids=notification_ids, now=now, lease=lease,
                                          channels=claimable_channels(slack=slack, email=email), any_channel=HOOKS)
    members = await _members(db, rows)
    moot = await relevance.moot(db=db, rows=rows, now=now)
    stages = await approval_notices.stages_at_delivery(db=db, rows=rows)
    held = await approval_notices.held_back(db=db, rows=rows, now=now)
    posts = await webhooks.posts_at_claim(db=db, rows=rows)
    for nid, post in posts.items():
        if post is None:
            moot.setdefault(nid, "webhook removed")
    batch = Batch(claimed=[], settled={}, later={})
    for row in rows:
        if row.kind in approval_notices.RENDERED_FROM_STAGE and row.id not in stages:
            moot.setdefault(row.id, "stage gone")
        if row.id in moot:  # the task is done, the approval decided, ...: nothing to say any more
            await notifications.withdraw(db=db, notification=row, reason=moot[row.id])
            batch.settled[row.id] = Outcome("withdrawn", error=moot[row.id])
        elif row.id in held:  # the copy's previous update is still on its way: after it
            await notifications.retry_later(db=db, notification=row, at=held[row.id], counts=False,
                                            error="held back: the copy's previous update is going out")
            batch.settled[row.id] = Outcome("paced", retry_at=held[row.id])
            batch.later[row.id] = held[row.id]
        elif row.channel is NotificationChannel.IN_APP and row.recipient_id is not None:
            await notifications.mark_sent(db=db, notification=row, now=now, slack_channel=None, slack_ts=None)
            batch.settled[row.id] = Outcome("sent")
        else:
            try:
                item = _claimed(row, members, email=email, stage=stages.get(row.id))
                if row.kind == Kind.WEBHOOK:  # to the webhook's URL as it is now, signed at the attempt
                    post = posts[row.id]
                    assert post is not None
                    batch.claimed.append(replace(item, target=post.url, content=post))
                elif row.kind == Kind.AGENT_HANDOFF:  # to the agent configured where it is sent
                    batch.claimed.append(replace(item, content=agent_handoff.arguments_of(row.payload)))
                elif row.kind in SURFACES:
                    if row.kind == Kind.HOME_VIEW:
                        home_views.claimed(row)
                    batch.claimed.append(item)
                else:
                    batch.claimed.append(replace(item, content=render(item)))
            except Exception as error:  # a payload no renderer understands, a member gone: retrying won't help
                log.exception("notification %s cannot be rendered", row.id)
                await notifications.mark_failed(db=db, notification=row, error=f"render_failed: {error!r}")
                batch.settled[row.id] = Outcome("failed", error="render_failed")
    return batch


async def _members(db: AsyncSession, rows: Sequence[Notification]) -> dict[int, TeamMember]:
    ids = {row.recipient_id for row in rows if row.recipient_id is not None and row.recipient_channel is None}
    if not ids:
        return {}
    return {member.id: member for member in await db.scalars(select(TeamMember).where(TeamMember.id.in_(ids)))}


def _claimed(row: Notification, members: Mapping[int, TeamMember], *, email: bool,
             stage: StageView | None) -> Claimed:
    common: dict[str, Any] = {"id": row.id, "kind": row.kind, "payload": row.payload, "campaign_id": row.campaign_id,
                              "recipient_id": row.recipient_id, "recipient_channel": row.recipient_channel,
                              "stage": stage}
    if row.kind == Kind.APPROVAL_COPY_UPDATE:
        update = approval_notices.CopyUpdate.from_payload(row.payload)
        return Claimed(target=update.channel, update_ts=update.ts, recipient_user=None, **common)
    if row.recipient_channel is not None:
        return Claimed(target=row.recipient_channel, recipient_user=None, **common)
    member = members.get(row.recipient_id or 0)
    if member is None:
        raise LookupError(f"member {row.recipient_id} is gone")
    if email and row.channel is NotificationChannel.EMAIL and member.email and "@" in member.email:
        return Claimed(target=member.email, recipient_user=member.slack_user_id, by_email=True,
                       timezone=member.timezone, **common)
    # Slack: chosen, or the fallback when mail is not configured or the address is gone.
    return Claimed(target=member.slack_user_id, recipient_user=member.slack_user_id, **common)


async def put_back_paced(*, db: AsyncSession, waits: Mapping[int, float], now: datetime) -> dict[int, Outcome]:
    """Rows whose channel is busy for longer than a post may wait in place: back to the outbox until their
    slot (seconds from now in `waits`). A wait, not a failure: it does not count against the budget."""
    outcomes = {}
    for nid, wait in waits.items():
        row = await db.get(Notification, nid)
        if row is not None:
            at = now + timedelta(seconds=wait)
            await notifications.retry_later(db=db, notification=row, at=at, counts=False,
                                            error=f"paced: channel busy for {wait:.1f}s")
            outcomes[nid] = Outcome("paced", retry_at=at)
    return outcomes


@dataclass(frozen=True)
class Delivered:
    """A row that went out: the Slack message it became (channel, ts), or none (email, a Home); a
    webhook's post: the receiver's HTTP status."""

    item: Claimed
    channel: str | None = None
    ts: str | None = None
    status: int | None = None


async def record_sent(*, db: AsyncSession, delivered: Sequence[Delivered], now: datetime) -> list[int]:
    """Mark the rows sent, and keep each approval request that went out as a Slack message as a copy of
    its stage. Returns the rows to hand out: copy updates this wrote (a stage moved while its request was
    on its way), Homes armed again (a change came while they were out) and the owners' notices of
    hand-offs that went through."""
    copies = [copy for copy in map(_copy_of, delivered) if copy is not None]
    updates = await approval_notices.record_copies(db=db, sent=copies, now=now)
    homes = [home_views.Published(d.item.id, d.item.recipient_id or 0, d.item.unread_shown)
             for d in delivered if d.item.kind == Kind.HOME_VIEW]
    updates += await home_views.record(db=db, published=homes, now=now)
    for done in delivered:
        if done.item.kind == Kind.WEBHOOK:
            await webhooks.record_attempt(db=db, payload=done.item.payload, status=done.status, error=None, now=now)
        elif done.item.kind == Kind.AGENT_HANDOFF:
            notice = await agent_handoff.went_through(db=db, campaign_id=done.item.campaign_id,
                                                      payload=done.item.payload, now=now)
            updates += [notice] if notice is not None else []
    await notifications.mark_sent_many(db=db, sent=[(d.item.id, d.channel, d.ts) for d in delivered
                                                    if d.item.kind != Kind.HOME_VIEW], now=now)
    return updates


def _copy_of(delivered: Delivered) -> approval_notices.SentCopy | None:
    item = delivered.item
    if item.kind != Kind.APPROVAL_REQUEST or item.by_email or item.stage is None:
        return None
    if not delivered.channel or not delivered.ts:
        return None
    return approval_notices.SentCopy(notification_id=item.id, payload=item.payload, channel=delivered.channel,
                                     ts=delivered.ts, shown=item.stage)


# ------------------------------------------------------------------ what a failed attempt means


class Verdict(StrEnum):
    WAIT = "rate_limited"  # the other side asked us to wait: not a failure
    RETRY = "retry"  # maybe next time: counts against the budget, backs off
    FAIL = "failed"  # no retry will fix it


@dataclass(frozen=True)
class Fault:
    verdict: Verdict
    reason: str
    wait: timedelta | None = None  # for WAIT: how long
    status: int | None = None  # the HTTP status of a webhook's answer; None: no answer (or not a webhook)


def slack_fault(*, status: int, error: str | None, retry_after: int | None = None) -> Fault:
    """A Slack Web API call that failed with HTTP `status` and Slack's `error` code (None or "" when the
    body had none); `retry_after`: the Retry-After header in seconds, None when absent or unusable."""
    code = error or ""
    if status == 429 or code == "ratelimited":
        seconds = retry_after if retry_after is not None and retry_after >= 0 else DEFAULT_RETRY_AFTER
        return Fault(Verdict.WAIT, f"ratelimited: retry after {seconds}s", wait=timedelta(seconds=seconds))
    if status >= 500 or code in TRANSIENT_ERRORS:
        return Fault(Verdict.RETRY, f"HTTP {status} {code}".strip())
    if code in PERMANENT_ERRORS:
        return Fault(Verdict.FAIL, code)
    # Anything else (invalid_blocks, an unknown code) counts against the budget: bounded, then failed.
    return Fault(Verdict.RETRY, code or f"HTTP {status}")


def mail_fault(*, codes: Sequence[int], reason: str) -> Fault:
    """A mail the server refused with SMTP reply `codes` (one per refused recipient, or the one reply);
    none: the connection failed or timed out. A 5xx (550 mailbox unavailable, 553 bad address) will not
    change on retry; a 4xx, a dropped connection or a timeout might."""
    if codes and all(code >= 500 for code in codes):
        return Fault(Verdict.FAIL, reason)
    return Fault(Verdict.RETRY, reason)


def network_fault(reason: str) -> Fault:
    """A timeout, a dropped connection, or a bug in one send: the message may go through next time."""
    return Fault(Verdict.RETRY, reason)


def http_fault(*, status: int | None, reason: str, retry_after: int | None = None) -> Fault:
    """A webhook's receiver answered HTTP `status` (None: no answer: a timeout, a refused or dropped
    connection). A 429 waits (Retry-After, or DEFAULT_RETRY_AFTER), a 5xx, a 408 or no answer retries with
    backoff, any other answer (a 4xx, a redirect, which is not followed) fails: the receiver refused it."""
    if status == 429:
        seconds = retry_after if retry_after is not None and retry_after >= 0 else DEFAULT_RETRY_AFTER
        return Fault(Verdict.WAIT, f"HTTP 429: retry after {seconds}s", wait=timedelta(seconds=seconds), status=status)
    if status is None or status >= 500 or status == 408:
        return Fault(Verdict.RETRY, reason, status=status)
    return Fault(Verdict.FAIL, reason, status=status)


def refused(reason: str) -> Fault:
    """The other side understood and said no (an agent's tool answered with an error), or there is nowhere
    to send it: no retry will change that."""
    return Fault(Verdict.FAIL, reason)


def rpc_fault(*, code: int, reason: str) -> Fault:
    """An MCP server's JSON-RPC error. Its internal error may pass (like a 5xx: retried with backoff); any
    other (method not found, invalid params, ...) is a refusal."""
    if code == JSONRPC_INTERNAL_ERROR:
        return Fault(Verdict.RETRY, reason)
    return Fault(Verdict.FAIL, reason)


def backoff(retries: int) -> timedelta:
    """30 s, 1 min, 2 min, ... capped at an hour; `retries` counts the failures before this one."""
    return min(BACKOFF_BASE * 2 ** min(retries, 20), BACKOFF_CAP)


async def after_fault(*, db: AsyncSession, item: Claimed, fault: Fault, now: datetime) -> Outcome:
    """What follows a failed attempt, in the caller's transaction. The caller sends the row's job again at
    `retry_at` (retry, rate_limited) and hands out the owner's notice (`owner_notice_id`) after the commit."""
    row = await db.get(Notification, item.id)
    if row is None:
        return Outcome("skipped")
    if item.kind == Kind.WEBHOOK:
        await webhooks.record_attempt(db=db, payload=item.payload, status=fault.status, error=fault.reason, now=now)
    if fault.verdict is Verdict.WAIT:
        at = now + (fault.wait or timedelta(seconds=DEFAULT_RETRY_AFTER))
        await notifications.retry_later(db=db, notification=row, at=at, counts=False, error=fault.reason)
        return Outcome("rate_limited", error="ratelimited", retry_at=at)
    if fault.verdict is Verdict.RETRY:
        if row.retries + 1 < MAX_ATTEMPTS:
            at = now + backoff(row.retries)
            await notifications.retry_later(db=db, notification=row, at=at, counts=True, error=fault.reason)
            return Outcome("retry", error=fault.reason, retry_at=at)
        row.retries += 1
        await notifications.mark_failed(db=db, notification=row, error=fault.reason)
        log.warning("notification %s failed for good after %s attempts: %s", item.id, row.retries, fault.reason)
        notice_id = await _handoff_failed(db, item, f"{fault.reason} (gave up after {row.retries} attempts)", now)
        return Outcome("failed", error=fault.reason, owner_notice_id=notice_id)
    await notifications.mark_failed(db=db, notification=row, error=fault.reason)
    notice_id = await _handoff_failed(db, item, fault.reason, now)
    if item.kind not in NO_OWNER_NOTICE and item.campaign_id is not None:
        notice_id = await _tell_owner(db, item, fault.reason, now)
    log.warning("notification %s to %s failed: %s", item.id, item.target, fault.reason)
    return Outcome("failed", error=fault.reason, owner_notice_id=notice_id)


async def _handoff_failed(db: AsyncSession, item: Claimed, reason: str, now: datetime) -> int | None:
    """A hand-off that failed for good tells the campaign's owner why (other kinds: nothing here)."""
    if item.kind != Kind.AGENT_HANDOFF:
        return None
    return await agent_handoff.did_not_go_through(db=db, campaign_id=item.campaign_id, payload=item.payload,
                                                  reason=reason, now=now)


# ------------------------------------------------------------------ the owner's notice


@dataclass(frozen=True)
class DeliveryFailed:
    """The payload of a DELIVERY_FAILED row: a message of a campaign could not reach someone (or a channel).

    `kind` is the kind of the message that failed. `recipient_id` (the member's row id, None for a
    channel) is always written: a payload with that key was written by code that knows the "Try again"
    button, one without it predates the button. Reading is lenient: old rows lack fields.
    """

    campaign_id: int | None
    campaign_name: str | None
    kind: str
    reason: str
    recipient_user: str | None = None
    recipient_channel: str | None = None
    recipient_id: int | None = None

    def to_payload(self) -> dict[str, Any]:
        return {"campaign_id": self.campaign_id, "campaign_name": self.campaign_name, "kind": self.kind,
                "recipient_user": self.recipient_user, "recipient_channel": self.recipient_channel,
                "reason": self.reason, "recipient_id": self.recipient_id,
                "summary": self.summary}

    @property
    def summary(self) -> str:
        """One plain line, for the in-app inbox."""
        whom = self.recipient_user or self.recipient_channel or "someone"
        about = f" about {self.campaign_name}" if self.campaign_name else ""
        return f"A {self.kind.replace('_', ' ') or 'message'}{about} could not be delivered to {whom}"

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> DeliveryFailed:
        def text(key: str) -> str | None:
            value = payload.get(key)
            return None if value is None or value == "" else str(value)

        return cls(campaign_id=_int(payload.get("campaign_id")), campaign_name=text("campaign_name"),
                   kind=text("kind") or "message", reason=text("reason") or "unknown",
                   recipient_user=text("recipient_user"), recipient_channel=text("recipient_channel"),
                   recipient_id=_int(payload.get("recipient_id")))


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def _tell_owner(db: AsyncSession, item: Claimed, reason: str, now: datetime) -> int | None:
    """Tell the campaign's owner, once per recipient (the key), in the transaction that failed the row."""
    campaign = await db.get(Campaign, item.campaign_id)
    if campaign is None or campaign.owner_id == item.recipient_id:
        return None  # nobody to tell, or the owner is the one we cannot reach
    notice = DeliveryFailed(campaign_id=campaign.id, campaign_name=campaign.name, kind=item.kind, reason=reason,
                            recipient_user=item.recipient_user, recipient_channel=item.recipient_channel,
                            recipient_id=item.recipient_id)
    return await notifications.notify(
        db=db, dedupe_key=notice_key(campaign.id, slack_user=item.recipient_user, channel=item.recipient_channel,
                                     member_id=item.recipient_id),
        kind=Kind.DELIVERY_FAILED, payload=notice.to_payload(), recipient_id=campaign.owner_id,
        campaign_id=campaign.id, urgency=Urgency.HIGH, now=now,
    )
