"""Outgoing webhooks: admins register a URL for some events; each event becomes a signed POST to it.

A delivery is an outbox row (`Kind.WEBHOOK`), written by `emit` in the transaction of the change that
causes it (a campaign launched, a task done, an approval decided), so a rolled-back change posts nothing
and a receiver that is down gets the post when it is back (the outbox's retries and backoff).

What the receiver gets: the JSON body, `X-CM-Event`, `X-CM-Delivery` (the same on every retry of one
delivery: dedupe on it), `X-CM-Timestamp` (the attempt's, in Unix seconds) and `X-CM-Signature`:
`sha256=` and the hex HMAC-SHA256 of `<timestamp>.<body>` with the webhook's secret. The secret is shown
once, when the webhook is registered.

The HTTP call itself is the delivery job's (`handlers.jobs.delivery`); here are the rows, the body, the
signature and the record of each attempt (`record_attempt`). Register, list and remove: admins only.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Campaign, Notification, TeamMember, Webhook
from models.webhook import MAX_ERROR, MAX_URL
from services import authz, notifications
from services.errors import InvalidInput, NotFound
from services.kinds import Kind
from services.refs import RefKind, format_ref

NOT_ADMIN = "Only an admin can register, list or remove webhooks."
SECRET_BYTES = 32  # token_hex: 64 characters, 256 bits
MAX_ID = 2**31 - 1
LISTED = 40  # a Slack message holds 50 blocks
MAX_WEBHOOKS = 100  # registered at once: each event writes one row per matching webhook


class Event(enum.StrEnum):
    CAMPAIGN_LAUNCHED = "campaign.launched"
    TASK_DONE = "task.done"
    APPROVAL_DECIDED = "approval.decided"


EVENTS_USAGE = ", ".join(event.value for event in Event)


@dataclass(frozen=True)
class RegisteredWebhook:
    webhook_id: int
    url: str
    events: tuple[str, ...]
    secret: str  # shown once, in the reply to the admin who registered it


@dataclass(frozen=True)
class WebhookPost:
    """What one attempt sends: to `url`, the `body` bytes, signed with `secret` at the attempt's time."""

    webhook_id: int
    url: str
    secret: str
    event: str
    delivery_id: str
    body: bytes

    def headers(self, timestamp: int) -> dict[str, str]:
        return {"Content-Type": "application/json", "X-CM-Event": self.event, "X-CM-Delivery": self.delivery_id,
                "X-CM-Timestamp": str(timestamp), "X-CM-Signature": signature(self.secret, timestamp, self.body)}


def require_manager(actor: authz.Actor) -> None:
    authz.require(authz.can_manage_webhooks(actor), NOT_ADMIN)


def clean_url(text: str) -> str:
    """An http(s) URL with a host, no credentials (they would be shown in every list), no spaces, bounded."""
    url = text.strip()
    if not url:
        raise InvalidInput("Say where to post: `/api webhook add https://example.com/hooks events=task.done`.")
    if len(url) > MAX_URL:
        raise InvalidInput(f"A webhook's URL is at most {MAX_URL} characters.")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise InvalidInput("A webhook's URL has no spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number or out of range
    except ValueError:
        raise InvalidInput("That is not a URL a webhook can post to.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput("A webhook's URL starts with `https://` (or `http://`).")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise InvalidInput("A webhook's URL may not carry a user name or password: the signature proves the sender.")
    if not parts.hostname or port == 0:
        raise InvalidInput("A webhook's URL names a host: `https://example.com/hooks`.")
    return url


def parse_events(text: str) -> tuple[str, ...]:
    """`campaign.launched,task.done`: known events, each once, in the order typed."""
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if not names:
        raise InvalidInput(f"Say which events to send: `events=` with some of {EVENTS_USAGE}.")
    unknown = [name for name in names if name not in set(Event)]
    if unknown:
        shown = ", ".join(f"`{name[:40]}`" for name in unknown[:3])
        raise InvalidInput(f"Unknown event {shown}: the events are {EVENTS_USAGE}.")
    return tuple(dict.fromkeys(names))


async def register(*, db: AsyncSession, actor: authz.Actor, url: str, events: Collection[str],
                   now: datetime) -> RegisteredWebhook:
    """A new webhook with a fresh secret (admins only)."""
    require_manager(actor)
    checked_url = clean_url(url)
    checked_events = parse_events(",".join(events))
    active = await db.scalars(select(Webhook.id).where(Webhook.disabled_at.is_(None)).limit(MAX_WEBHOOKS))
    if len(active.all()) >= MAX_WEBHOOKS:
        raise InvalidInput(f"There are {MAX_WEBHOOKS} webhooks already; remove one first.")
    secret = secrets.token_hex(SECRET_BYTES)
    row = Webhook(url=checked_url, events=list(checked_events), secret=secret, created_by_id=actor.member.id,
                  created_at=now)
    db.add(row)
    await db.flush()
    return RegisteredWebhook(webhook_id=row.id, url=checked_url, events=checked_events, secret=secret)


async def webhooks(*, db: AsyncSession, actor: authz.Actor, limit: int = LISTED) -> list[Webhook]:
    """The registered webhooks, newest first (admins only). Removed ones are not listed."""
    require_manager(actor)
    rows = await db.scalars(select(Webhook).where(Webhook.disabled_at.is_(None)).order_by(Webhook.id.desc())
                            .limit(limit))
    return list(rows)


async def remove(*, db: AsyncSession, actor: authz.Actor, webhook_id: int, now: datetime) -> Webhook:
    """Stop webhook `webhook_id` (admins only): nothing more is written for it, and what is still in the
    outbox for it is withdrawn when it comes up. Removing it again changes nothing."""
    require_manager(actor)
    row = await db.get(Webhook, webhook_id, with_for_update=True) if 0 < webhook_id <= MAX_ID else None
    if row is None or row.disabled_at is not None:
        raise NotFound(f"There is no webhook {webhook_id}. `/api webhook list` lists them.")
    row.disabled_at = now
    await db.flush()
    return row


async def people_of(*, db: AsyncSession, rows: Sequence[Webhook]) -> dict[int, str]:
    """Member id -> Slack user id of whoever registered `rows`."""
    ids = sorted({row.created_by_id for row in rows if row.created_by_id is not None})
    if not ids:
        return {}
    found = await db.execute(select(TeamMember.id, TeamMember.slack_user_id).where(TeamMember.id.in_(ids)))
    return {member_id: slack_user_id for member_id, slack_user_id in found.all()}


# ---------------------------------------------------------------- deliveries


async def emit(*, db: AsyncSession, event: Event, campaign: Campaign | None, data: Mapping[str, Any],
               now: datetime) -> list[int]:
    """One outbox row per active webhook that asked for `event`, in the caller's transaction; their ids.

    `data`: the event's own facts (plain JSON values). The body also names the campaign, when there is one.
    """
    hooks = [(hook_id, events) for hook_id, events in await db.execute(
        select(Webhook.id, Webhook.events).where(Webhook.disabled_at.is_(None)))
        if isinstance(events, list) and event.value in events]
    if not hooks:
        return []
    drafts = []
    for hook_id, _ in hooks:
        delivery_id = str(uuid.uuid4())
        body = {"id": delivery_id, "event": event.value, "occurred_at": now.isoformat(),
                "campaign": _campaign(campaign), "data": dict(data)}
        drafts.append(notifications.Draft(
            dedupe_key=f"webhook:{hook_id}:{delivery_id}", kind=Kind.WEBHOOK, recipient_channel=f"webhook:{hook_id}",
            campaign_id=campaign.id if campaign is not None else None,
            payload={"webhook_id": hook_id, "event": event.value, "delivery_id": delivery_id, "body": body}))
    return await notifications.notify_many(db=db, drafts=drafts, now=now)


def _campaign(campaign: Campaign | None) -> dict[str, Any] | None:
    if campaign is None:
        return None
    return {"id": campaign.id, "ref": format_ref(RefKind.CAMPAIGN, campaign.id), "name": campaign.name,
            "status": campaign.status.value}


async def posts_at_claim(*, db: AsyncSession, rows: Sequence[Notification]) -> dict[int, WebhookPost | None]:
    """For the claimed webhook rows (notification id): what to send, read now (the URL may have changed),
    or None when the webhook is gone or removed (the row is withdrawn)."""
    wanted = {row.id: row for row in rows if row.kind == Kind.WEBHOOK}
    if not wanted:
        return {}
    hook_ids = {_hook_id(row.payload) for row in wanted.values()} - {None}
    hooks = ({hook.id: hook for hook in await db.scalars(select(Webhook).where(Webhook.id.in_(hook_ids)))}
             if hook_ids else {})
    posts: dict[int, WebhookPost | None] = {}
    for nid, row in wanted.items():
        hook = hooks.get(_hook_id(row.payload) or 0)
        if hook is None or hook.disabled_at is not None:
            posts[nid] = None
            continue
        payload = row.payload
        posts[nid] = WebhookPost(webhook_id=hook.id, url=hook.url, secret=hook.secret, event=str(payload["event"]),
                                 delivery_id=str(payload["delivery_id"]), body=body_bytes(payload["body"]))
    return posts


def body_bytes(body: Any) -> bytes:
    """The body as sent (and signed): compact JSON, keys sorted, so every retry sends the same bytes."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


async def record_attempt(*, db: AsyncSession, payload: Mapping[str, Any], status: int | None, error: str | None,
                         now: datetime) -> None:
    """Note an attempt's HTTP status (None: no answer) and error on its webhook, for `/api webhook list`."""
    hook_id = _hook_id(payload)
    if hook_id is None:
        return
    await db.execute(update(Webhook).where(Webhook.id == hook_id)
                     .values(last_status=status, last_error=error[:MAX_ERROR] if error else None,
                             last_delivery_at=now)
                     .execution_options(synchronize_session=False))


def _hook_id(payload: Mapping[str, Any]) -> int | None:
    value = payload.get("webhook_id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None
