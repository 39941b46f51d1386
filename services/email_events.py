"""What the email provider (Mailjet) reports about a campaign's emails: its webhook's bodies checked and
kept, turned into events counted once, and each campaign's results.

The webhook answers at once: `check_body` says whether a body is one event object or an array of them
(nothing about each item yet), and `store_batch` keeps it as it came. `process_batch` then reads it,
stores each event once and counts what happened on the batch row, and empties the stored body (it holds
the addresses). An item that is not an event we
understand (an unknown `event`, a field of the wrong type, text the database cannot hold) is counted
`rejected`; it never fails the batch, because Mailjet would post the same body again and again.

An event names its campaign by the campaign label set when sending (`customcampaign`, failing that
`CustomID`): ours is the campaign's ref, `CM-12`. Only a label with the `CM` prefix counts (a bare `12`
is too likely someone else's label), and only if that campaign exists; otherwise the event is kept with
no campaign and its label, so it can be attributed later. Recipients are kept only as a hash of the
lower-cased address: enough to count people, nothing to leak.

Mailjet retries a post until it gets a 200 and may send one event twice, so an event is identified by
what makes it one (`dedupe_key`: provider, event, MessageID, time, recipient, link) and stored with
ON CONFLICT DO NOTHING: a replay counts once, in `duplicates`.

Results count people, not events: a recipient is anyone an event was about; delivered, anyone with a
`sent`, or with an open, click, spam report or unsubscribe (each proves the email arrived, even when its
`sent` never reached us: tracking switched on mid-send), so the rates never pass 100%.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)
from sqlalchemy import ColumnElement, case, distinct, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Campaign, EmailEvent, EmailEventBatch
from models.db import is_unreachable
from models.email_event import MAX_ERROR, MAX_LABEL
from models.upsert import insert_ignore_many, one_of
from services.dashboard_metrics import Rate
from services.errors import DomainError
from services.refs import RefKind, parse_ref
from services.transactions import is_retryable

PROVIDER = "mailjet"
PENDING, DONE, FAILED = "pending", "done", "failed"
INSERT_CHUNK = 1000  # events per INSERT call: 10,000 events are ten statements (each batched by SQLAlchemy)
PICK_UP_AFTER = timedelta(minutes=1)  # a batch still pending this long lost its job: the sweep hands it out
PICK_UP_LIMIT = 50  # batches the sweep hands out at a time
MAX_URL = 2000  # a click's link as stored; the dedupe key is over all of it
MAX_TIME = 253402300799  # 9999-12-31T23:59:59Z, the last second a datetime can hold


class EventKind(StrEnum):
    SENT = "sent"
    OPEN = "open"
    CLICK = "click"
    BOUNCE = "bounce"
    BLOCKED = "blocked"
    SPAM = "spam"
    UNSUB = "unsub"


DELIVERED_KINDS = (EventKind.SENT, EventKind.OPEN, EventKind.CLICK, EventKind.SPAM, EventKind.UNSUB)


class MalformedBody(DomainError):
    """The body is not a Mailjet event or an array of them; the message is short and names no content."""


def check_body(text: str) -> int:
    """How many items the body holds: one JSON object, or a non-empty array of objects."""
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError; so is an int of 5,000 digits
        raise MalformedBody("the body is not valid JSON") from None
    if isinstance(parsed, dict):
        return 1
    if not isinstance(parsed, list):
        raise MalformedBody("the body must be a JSON object or an array of objects")
    if not parsed:
        raise MalformedBody("the array holds no events")
    if not all(isinstance(item, dict) for item in parsed):
        raise MalformedBody("every item of the array must be a JSON object")
    return len(parsed)


async def store_batch(*, db: AsyncSession, body: str, events: int, now: datetime) -> int:
    """Keep a checked body (`check_body` gave `events`) as a pending batch; its id."""
    batch = EmailEventBatch(provider=PROVIDER, body=body, status=PENDING, events=events, received_at=now)
    db.add(batch)
    await db.flush()
    return batch.id


def _storable(value: str) -> str:
    # PostgreSQL text holds no NUL, and a lone surrogate (`"\ud800"` in JSON) is not UTF-8 at all.
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    value.encode("utf-8")  # UnicodeEncodeError is a ValueError: pydantic reports it as this field's error
    return value


Text = Annotated[StrictStr, AfterValidator(_storable)]


def _message_id(value: object) -> str:
    """Mailjet sends an integer (beyond 64 bits, some day); digits in a string are taken too."""
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not text.isascii() or not text.isdigit() or len(text) > 40:
        raise ValueError("must be a non-negative integer of at most 40 digits")
    return text


class MailjetEvent(BaseModel):
    """One item of Mailjet's event webhook: the fields we use, strictly typed; the rest ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    event: EventKind
    time: StrictInt = Field(ge=0, le=MAX_TIME)  # Unix seconds
    message_id: Annotated[str, BeforeValidator(_message_id)] = Field(alias="MessageID")
    email: Text = Field(min_length=3, max_length=320)
    custom_campaign: Text | None = Field(default=None, alias="customcampaign")
    custom_id: Text | None = Field(default=None, alias="CustomID")
    url: Text | None = None
    hard_bounce: StrictBool | None = None
    error_related_to: Text | None = None
    error: Text | None = None

    def recipient_hash(self) -> str:
        return hashlib.sha256(self.email.strip().lower().encode("utf-8")).hexdigest()

    def dedupe_key(self, recipient: str) -> str:
        parts = [PROVIDER, self.event.value, self.message_id, str(self.time), recipient, self.url or ""]
        return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()

    def campaign_numbers(self) -> list[int]:
        """The campaigns its labels name, `customcampaign` first."""
        numbers = (campaign_number(self.custom_campaign), campaign_number(self.custom_id))
        return [number for number in numbers if number is not None]

    def label(self) -> str | None:
        """The campaign label as sent, `customcampaign` first, cut to what the column holds."""
        for text in (self.custom_campaign, self.custom_id):
            if text and text.strip():
                return text.strip()[:MAX_LABEL]
        return None

    def reason(self) -> str | None:
        """A bounce's or block's error, as `related to: error`."""
        parts = [part for part in (self.error_related_to, self.error) if part]
        return ": ".join(parts)[:MAX_ERROR] if parts else None


def campaign_number(label: str | None) -> int | None:
    """The campaign a label names (`CM-12`, `cm12`), or None: no `CM` prefix, or not a ref at all."""
    if not label or label.strip()[:2].upper() != RefKind.CAMPAIGN.value:
        return None
    try:
        return parse_ref(label, RefKind.CAMPAIGN)
    except DomainError:
        return None


@dataclass(frozen=True)
class BatchOutcome:
    events: int
    stored: int
    duplicates: int
    unmatched: int  # stored without a campaign
    rejected: int


async def process_batch(*, db: AsyncSession, batch_id: int, now: datetime) -> BatchOutcome | None:
    """Store the batch's events, each once, and its counts; None when it is not pending (done already,
    or another worker has it: the claim waits for that one's commit, then finds the batch done).

    The claim is the first statement: a conditional UPDATE from pending, so of two workers only one
    goes on, and the row stays locked until this transaction ends. A transaction that fails leaves the
    batch pending, for a retry or the sweep.
    """
    claimed = await db.execute(
        update(EmailEventBatch).where(EmailEventBatch.id == batch_id, EmailEventBatch.status == PENDING)
        .values(status=DONE, processed_at=now))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    body = await db.scalar(select(EmailEventBatch.body).where(EmailEventBatch.id == batch_id))
    try:
        parsed = json.loads(body or "")
    except (ValueError, RecursionError):  # checked when received; a row changed by hand since
        await _finish(db, batch_id, BatchOutcome(0, 0, 0, 0, 0), error="the stored body is not JSON any more")
        return None
    items = parsed if isinstance(parsed, list) else [parsed]
    events, rejected = _parse(items)
    rows = await _rows(db, events, batch_id, now)
    stored_keys: set[str] = set()
    for start in range(0, len(rows), INSERT_CHUNK):
        stored_keys.update(await insert_ignore_many(db, EmailEvent, rows[start:start + INSERT_CHUNK],
                                                    conflict=["dedupe_key"], returning=EmailEvent.dedupe_key))
    unmatched = sum(1 for row in rows if row["campaign_id"] is None and row["dedupe_key"] in stored_keys)
    outcome = BatchOutcome(events=len(items), stored=len(stored_keys), duplicates=len(events) - len(stored_keys),
                           unmatched=unmatched, rejected=rejected)
    await _finish(db, batch_id, outcome)
    return outcome


def _parse(items: Sequence[Any]) -> tuple[list[MailjetEvent], int]:
    events, rejected = [], 0
    for item in items:
        try:
            events.append(MailjetEvent.model_validate(item))
        except ValidationError:
            rejected += 1
    return events, rejected


async def _rows(db: AsyncSession, events: Sequence[MailjetEvent], batch_id: int,
                now: datetime) -> list[dict[str, Any]]:
    """One row per distinct event (a repeat inside the batch is dropped here, and counted a duplicate)."""
    named = [event.campaign_numbers() for event in events]
    wanted = {number for numbers in named for number in numbers}
    existing = set(await db.scalars(select(Campaign.id).where(one_of(db, Campaign.id, wanted)))) if wanted else set()
    rows: dict[str, dict[str, Any]] = {}
    for event, numbers in zip(events, named, strict=True):
        recipient = event.recipient_hash()
        key = event.dedupe_key(recipient)
        if key in rows:
            continue
        found = [number for number in numbers if number in existing]
        rows[key] = {
            "dedupe_key": key, "provider": PROVIDER, "event": event.event.value,
            "campaign_id": found[0] if found else None, "custom_campaign": event.label(),
            "message_id": event.message_id, "recipient_hash": recipient,
            "occurred_at": datetime.fromtimestamp(event.time, UTC),
            "url": event.url[:MAX_URL] if event.event is EventKind.CLICK and event.url else None,
            "hard_bounce": event.hard_bounce if event.event is EventKind.BOUNCE else None,
            "error": event.reason() if event.event in (EventKind.BOUNCE, EventKind.BLOCKED) else None,
            "batch_id": batch_id, "received_at": now,
        }
    return list(rows.values())


async def _finish(db: AsyncSession, batch_id: int, outcome: BatchOutcome, *, error: str | None = None) -> None:
    """The counts on the batch row. A batch done lets its body go: it holds every recipient's address, and
    its events are stored; a failed one keeps it, to be run again once what failed is mended."""
    kept_body = {} if error else {"body": ""}
    await db.execute(update(EmailEventBatch).where(EmailEventBatch.id == batch_id).values(
        **kept_body, status=FAILED if error else DONE, events=outcome.events, stored=outcome.stored,
        duplicates=outcome.duplicates, unmatched=outcome.unmatched, rejected=outcome.rejected,
        error=error[:MAX_ERROR] if error else None))


def worth_retrying(error: BaseException) -> bool:
    """A failure that another attempt may not meet: the database unreachable, or a lock conflict. Any
    other fails the batch for good (`fail_batch`), or it would come back from the sweep every minute."""
    return is_unreachable(error) or is_retryable(error)


async def fail_batch(*, db: AsyncSession, batch_id: int, error: str, now: datetime) -> None:
    """Mark a pending batch failed, with a short reason (an error's type, never the body)."""
    await db.execute(update(EmailEventBatch)
                     .where(EmailEventBatch.id == batch_id, EmailEventBatch.status == PENDING)
                     .values(status=FAILED, error=error[:MAX_ERROR], processed_at=now))


async def waiting_batches(*, db: AsyncSession, received_before: datetime, limit: int = PICK_UP_LIMIT) -> list[int]:
    """Batches still pending that were received before `received_before`, oldest first."""
    return list(await db.scalars(
        select(EmailEventBatch.id)
        .where(EmailEventBatch.status == PENDING, EmailEventBatch.received_at < received_before)
        .order_by(EmailEventBatch.id).limit(limit)))


async def pending_batches(*, db: AsyncSession) -> int:
    """How many posts wait to be processed (for /metrics); on the status index."""
    return int(await db.scalar(select(func.count()).where(EmailEventBatch.status == PENDING)) or 0)


@dataclass(frozen=True)
class EmailResults:
    """One campaign's (or a sum of campaigns') email results, counted in people."""

    recipients: int
    delivered: Rate  # of recipients
    opened: Rate  # of delivered
    clicked: Rate  # of delivered
    bounced: int
    hard_bounced: int
    blocked: int
    spam_reports: int
    unsubscribed: int

    def to_payload(self) -> dict[str, Any]:
        """Plain numbers for a stored payload (the weekly status) and for the renderers."""
        return {"recipients": self.recipients, "delivered": self.delivered.part,
                "delivered_pct": self.delivered.pct, "opened": self.opened.part, "opened_pct": self.opened.pct,
                "clicked": self.clicked.part, "clicked_pct": self.clicked.pct, "bounced": self.bounced,
                "hard_bounced": self.hard_bounced, "blocked": self.blocked, "spam_reports": self.spam_reports,
                "unsubscribed": self.unsubscribed}


def _people(*kinds: EventKind) -> ColumnElement[int]:
    """How many distinct recipients have an event of one of `kinds`."""
    return func.count(distinct(case((EmailEvent.event.in_([kind.value for kind in kinds]),
                                     EmailEvent.recipient_hash))))


async def results(
    *, db: AsyncSession, campaign_ids: Iterable[int] | None, start: datetime | None = None,
    end: datetime | None = None,
) -> dict[int, EmailResults]:
    """Per campaign with any event: its results. `campaign_ids` None: every campaign; `start`/`end`: only
    events that happened in [start, end). One aggregate query, however many campaigns."""
    statement = (
        select(EmailEvent.campaign_id, _people(*EventKind), _people(*DELIVERED_KINDS), _people(EventKind.OPEN),
               _people(EventKind.CLICK), _people(EventKind.BOUNCE),
               func.count(distinct(case((EmailEvent.hard_bounce.is_(True), EmailEvent.recipient_hash)))),
               _people(EventKind.BLOCKED), _people(EventKind.SPAM), _people(EventKind.UNSUB))
        .where(EmailEvent.campaign_id.is_not(None))
        .group_by(EmailEvent.campaign_id)
    )
    if campaign_ids is not None:
        ids = list(campaign_ids)
        if not ids:
            return {}
        statement = statement.where(one_of(db, EmailEvent.campaign_id, ids))
    if start is not None:
        statement = statement.where(EmailEvent.occurred_at >= start)
    if end is not None:
        statement = statement.where(EmailEvent.occurred_at < end)
    found: dict[int, EmailResults] = {}
    for campaign_id, recipients, delivered, opened, clicked, bounced, hard, blocked, spam, unsub in \
            await db.execute(statement):
        if campaign_id is None:  # the query asked for campaigns; this keeps the type checker sure of it
            continue
        found[campaign_id] = EmailResults(
            recipients=int(recipients), delivered=Rate.of(int(delivered), int(recipients)),
            opened=Rate.of(int(opened), int(delivered)), clicked=Rate.of(int(clicked), int(delivered)),
            bounced=int(bounced), hard_bounced=int(hard), blocked=int(blocked), spam_reports=int(spam),
            unsubscribed=int(unsub))
    return found


def total(each: Iterable[EmailResults]) -> EmailResults | None:
    """Several campaigns' results as one (a person in two campaigns got two emails: counted twice)."""
    listed = list(each)
    if not listed:
        return None
    recipients = sum(r.recipients for r in listed)
    delivered = sum(r.delivered.part for r in listed)
    return EmailResults(
        recipients=recipients, delivered=Rate.of(delivered, recipients),
        opened=Rate.of(sum(r.opened.part for r in listed), delivered),
        clicked=Rate.of(sum(r.clicked.part for r in listed), delivered),
        bounced=sum(r.bounced for r in listed), hard_bounced=sum(r.hard_bounced for r in listed),
        blocked=sum(r.blocked for r in listed), spam_reports=sum(r.spam_reports for r in listed),
        unsubscribed=sum(r.unsubscribed for r in listed))
